"""A clinic's per-protocol session settings change the reading cadence and the alert rules of its sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client

from ketaclinic.chairside import services
from ketaclinic.chairside.models import SessionAlert
from ketaclinic.treatment.models import ProtocolSessionSettings

from .conftest import reading


def test_admin_sets_cadence_and_alerts_for_a_protocol(admin: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    refused = client.post(
        "/protocols/iv-trd-elektd/session-settings/", {"reading_every_min": "5"}, follow=True
    )
    assert "name the clinic policy" in refused.content.decode()
    assert not ProtocolSessionSettings.objects.exists()
    client.post(
        "/protocols/iv-trd-elektd/session-settings/",
        {
            "reading_every_min": "5",
            "after_every_min": "10",
            "alerts": "sbp_high 170\nhr_low off",
            "source": "Clinic IV policy v3",
        },
    )
    row = ProtocolSessionSettings.objects.get(protocol_key="iv-trd-elektd")
    assert (row.reading_every_min, row.after_every_min) == (5, 10)
    assert row.alert_overrides == {"sbp_high": {"threshold": 170}, "hr_low": {"enabled": False}}


def test_nurses_cannot_change_protocol_settings(nurse: Any, sign_in: Any) -> None:
    response = sign_in(Client(), nurse).post(
        "/protocols/iv-trd-elektd/session-settings/", {"reading_every_min": "5", "source": "x"}
    )
    assert response.status_code == 403


def test_protocol_settings_drive_cadence_and_alerts(consented: Any, nurse: Any, admin: Any, t0: Any) -> None:
    ProtocolSessionSettings.objects.create(
        organization_id=consented.organization_id,
        protocol_key="iv-trd-elektd",
        reading_every_min=5,
        after_every_min=10,
        alert_overrides={"sbp_high": {"threshold": 170}},
        source="Clinic IV policy v3",
        updated_by=admin,
    )
    session = services.schedule_session(
        user=nurse, patient=consented, protocol_id="iv-trd-elektd", scheduled_at=t0, planned_dose_mg=35
    )
    session.status, session.dose_started_at = "dosing", t0
    session.save()
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 + timedelta(minutes=1), 172, 84)
    )
    due = services.next_due(session, now=t0 + timedelta(minutes=2))
    assert due is not None and due.due_at == t0 + timedelta(minutes=6)  # every 5 min instead of 10
    alert = SessionAlert.objects.get(session=session, code="sbp_high")  # 172 ≥ the protocol's 170
    assert alert.source == "Clinic IV policy v3"
