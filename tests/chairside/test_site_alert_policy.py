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


def test_a_stored_setting_outside_the_limits_does_not_silence_a_250_over_105(
    esk_session: Any, nurse: Any, t0: Any
) -> None:
    """Before the limits existed, an administrator could store 'SBP alert 400, source x' and switch the SpO2,
    breathing-rate and consciousness alerts off: a 250/105 reading then raised nothing. Such a stored setting
    is now skipped at the chair and the reference default applies."""
    site = esk_session.site
    site.alert_overrides = {
        "sbp_high": {"threshold": 400, "source": "x"},
        "spo2_low": {"enabled": False, "source": "x"},
        "rr_low": {"enabled": False, "source": "x"},
        "loss_of_consciousness": {"enabled": False, "source": "x"},
    }
    site.save()
    services.record_observation(
        user=nurse, session=esk_session, reading=reading(t0, 250, 105, spo2=86, rr=6, moaas=0)
    )
    codes = set(SessionAlert.objects.filter(session=esk_session).values_list("code", flat=True))
    assert {"sbp_high", "spo2_low", "rr_low", "loss_of_consciousness"} <= codes
    sbp = SessionAlert.objects.get(session=esk_session, code="sbp_high")
    assert sbp.severity == "critical" and "Table 6" in sbp.source
