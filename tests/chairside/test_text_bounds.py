"""Issue 15: a 1 MB note is refused with its length and the limit, not cut; nothing is acknowledged."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.utils import timezone
from tests.chairside.journey import Api


def test_a_long_acknowledgement_note_is_refused_whole_not_cut(
    open_gate: Any, nurse: Any, sign_in: Any
) -> None:
    from ketaclinic.chairside.models import SessionAlert

    alert = SessionAlert.objects.create(
        organization_id=open_gate.organization_id,
        session=open_gate,
        code="sbp_high",
        severity="warning",
        message="BP 182/95 is above the limit",
        source="test",
        dedup_key="sbp_high-1",
        raised_at=timezone.now(),
    )
    note = "x" * 1_000_000
    client = Api(nurse, sign_in).client
    response = client.post(
        f"/api/sessions/{open_gate.pk}/alerts/{alert.pk}/acknowledge",
        data=json.dumps({"note": note}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value,
    )
    assert response.status_code == 422
    assert "1,000,000 characters" in response.json()["detail"][0]["msg"]
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
