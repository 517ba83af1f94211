"""A clinic's per-protocol session settings change the reading cadence and the alert rules of its sessions.
They are safety settings: prescribers change them, within limits, and each change is shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client

from ketaclinic.accounts.models import SafetySettingChange
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services
from ketaclinic.chairside.models import SessionAlert
from ketaclinic.treatment.models import ProtocolSessionSettings

from .conftest import reading

URL = "/protocols/iv-trd-elektd/session-settings/"


def _csrf_client(user: Any, sign_in: Any) -> tuple[Any, str]:
    client = sign_in(Client(enforce_csrf_checks=True), user)
    page = client.get("/protocols/iv-trd-elektd/")
    token = page.content.decode().split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return client, token


def test_prescriber_sets_cadence_and_alerts_for_a_protocol(prescriber: Any, sign_in: Any) -> None:
    client, token = _csrf_client(prescriber, sign_in)
    refused = client.post(URL, {"reading_every_min": "5", "csrfmiddlewaretoken": token}, follow=True)
    assert "name the clinic policy" in refused.content.decode()
    assert not ProtocolSessionSettings.objects.exists()
    client.post(
        URL,
        {
            "reading_every_min": "5",
            "after_every_min": "10",
            "alerts": "sbp_high 170\nhr_low off",
            "source": "Clinic IV policy v3",
            "csrfmiddlewaretoken": token,
        },
    )
    row = ProtocolSessionSettings.objects.get(protocol_key="iv-trd-elektd")
    assert (row.reading_every_min, row.after_every_min) == (5, 10)
    assert row.alert_overrides == {"sbp_high": {"threshold": 170}, "hr_low": {"enabled": False}}
    assert AuditEntry.objects.filter(category="protocol-settings", user=prescriber).exists()
    changes = {c.setting: c for c in SafetySettingChange.objects.filter(protocol_key="iv-trd-elektd")}
    assert set(changes) == {"reading_every_min", "after_every_min", "sbp_high", "hr_low"}
    assert changes["sbp_high"].after == {"threshold": 170} and changes["sbp_high"].changed_by == prescriber
    # Shown on the protocol page: the rule as its sessions use it and who changed it.
    page = client.get("/protocols/iv-trd-elektd/").content.decode()
    assert "SBP ≥ 170 mmHg · critical" in page and "Prescriber1" in page and "Heart rate low" in page


def test_limits_are_refused_with_the_bound_named(prescriber: Any, sign_in: Any) -> None:
    client, token = _csrf_client(prescriber, sign_in)
    response = client.post(
        URL,
        {
            "reading_every_min": "60",
            "alerts": "sbp_high 400\nspo2_low off",
            "source": "Clinic IV policy v3",
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )
    text = response.content.decode()
    assert "every 60 min is longer than the longest allowed, 15 min" in text
    assert not ProtocolSessionSettings.objects.exists()
    response = client.post(
        URL,
        {
            "alerts": "sbp_high 400\nspo2_low off",
            "source": "Clinic IV policy v3",
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )
    text = response.content.decode()
    assert "400 mmHg is above the ceiling of 180 mmHg" in text and "cannot be switched off" in text
    assert not ProtocolSessionSettings.objects.exists()


def test_only_prescribers_change_protocol_settings(nurse: Any, admin: Any, sign_in: Any) -> None:
    for user in (nurse, admin):
        client, token = _csrf_client(user, sign_in)
        page = client.get("/protocols/iv-trd-elektd/").content.decode()
        assert "Only a prescriber may change these settings" in page
        response = client.post(
            URL, {"reading_every_min": "5", "source": "Clinic IV policy v3", "csrfmiddlewaretoken": token}
        )
        assert response.status_code == 403 and "Not available to your role" in response.content.decode()
    assert not ProtocolSessionSettings.objects.exists()


def test_protocol_settings_drive_cadence_and_alerts(
    consented: Any, nurse: Any, prescriber: Any, t0: Any
) -> None:
    ProtocolSessionSettings.objects.create(
        organization_id=consented.organization_id,
        protocol_key="iv-trd-elektd",
        reading_every_min=5,
        after_every_min=10,
        alert_overrides={"sbp_high": {"threshold": 170}},
        source="Clinic IV policy v3",
        updated_by=prescriber,
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


def test_the_protocol_page_shows_the_cadence_its_sessions_use(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    html = client.get("/protocols/im-clinic-template/").content.decode()
    cadence = html.split('id="cadence-in-use"', 1)[1].split("</p>", 1)[0]
    assert "every 10 min for the first 60 min after the dose, then every 15 min until discharge" in cadence
    assert "unconfirmed" in cadence
    html = client.get("/protocols/sl-clinic-template/").content.decode()
    assert "every 15 min until discharge" in html.split('id="cadence-in-use"', 1)[1].split("</p>", 1)[0]
