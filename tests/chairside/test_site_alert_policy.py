"""A site's alert policy (with its named source) replaces the default threshold for its sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ketaclinic.chairside import services
from ketaclinic.chairside.models import SessionAlert

from .conftest import reading


def test_site_threshold_replaces_the_default(esk_session: Any, nurse: Any, t0: Any) -> None:
    site = esk_session.site
    site.alert_overrides = {"sbp_high": {"threshold": 170, "source": "Clinic BP policy 2026-03"}}
    site.save()
    services.record_observation(user=nurse, session=esk_session, reading=reading(t0, 172, 88))
    alert = SessionAlert.objects.get(session=esk_session, code="sbp_high")
    assert alert.source == "Clinic BP policy 2026-03" and "172" in alert.message
    # the default (≥180) would not have fired at 172
    site.alert_overrides = {}
    site.save()
    services.record_observation(
        user=nurse, session=esk_session, reading=reading(t0 + timedelta(minutes=1), 175, 88)
    )
    assert SessionAlert.objects.filter(session=esk_session, code="sbp_high").count() == 1
