"""Staff pages: unmatched readings attached to a patient (audited), monitors placed on chairs (admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from ketaclinic.accounts.models import Chair
from ketaclinic.audit.models import AuditEntry
from ketaclinic.interop.hl7.simulator import make_vitals_message
from ketaclinic.monitoring.feed import FeedStore, Inbound
from ketaclinic.monitoring.models import MonitorDevice, MonitoringAlert, VitalReading

AT = datetime(2026, 2, 3, 15, 0, tzinfo=UTC)


def feed(
    org: Any, site: Any, *, cid: str, eui: str = "0011223344556677", mrn: str | None = None, **vitals: Any
) -> Any:
    values = {"sbp": 122, "dbp": 78, "hr": 70, "spo2": 97, "rr": 15} | vitals
    # A registered monitor (an unregistered one's readings wait for review: test_feed_trust.py).
    MonitorDevice.objects.get_or_create(organization=org, identifier=eui)
    text = make_vitals_message(device_eui64=eui, bed="C1", patient_id=mrn, at=AT, control_id=cid, **values)
    [outcome] = FeedStore(organization=org, default_site=site).process([Inbound(text.encode())])
    return outcome


def test_unmatched_readings_listed_and_attached_with_audit(
    org: Any, site: Any, nurse: Any, sign_in: Any, make_patient: Any
) -> None:
    patient = make_patient(nurse)
    assert feed(org, site, cid="U1", spo2=85).code.value == "AA"
    msg_id = VitalReading.objects.values_list("message_id", flat=True).first()
    client = sign_in(Client(), nurse)
    page = client.get("/monitoring/unbound/")
    assert page.status_code == 200
    assert b"SBP 122 mm[Hg]" in page.content and b"0011223344556677" in page.content

    wrong = client.post("/monitoring/unbound/", {"message": msg_id, "mrn": "NOPE1"})
    assert wrong.status_code == 422 and b"No patient with MRN NOPE1 at your sites." in wrong.content
    assert not VitalReading.objects.filter(bound=True).exists()

    done = client.post("/monitoring/unbound/", {"message": msg_id, "mrn": patient.mrn, "note": "chair 1"})
    assert done.status_code == 302
    rows = VitalReading.objects.filter(message_id=msg_id)
    assert rows.count() == 5 and all(
        r.bound and r.patient_id == patient.pk and r.attached_by == nurse for r in rows
    )
    entry = AuditEntry.objects.filter(category="monitoring", action="change").get()
    assert (entry.patient_id, entry.user_id, entry.object_type) == (patient.pk, nurse.pk, "VitalReading")
    # The alert engine runs on readings once attached: SpO2 85 < 92 (unconfirmed default) -> critical
    assert MonitoringAlert.objects.get().code == "spo2_low"
    # Attached readings leave the list; a second attach is refused, naming why.
    again = client.post("/monitoring/unbound/", {"message": msg_id, "mrn": patient.mrn})
    assert again.status_code == 422 and b"no longer waiting" in again.content


def test_attach_refuses_another_organizations_patient_and_empty_mrn(
    org: Any, site: Any, nurse: Any, sign_in: Any, outsider_patient: Any
) -> None:
    feed(org, site, cid="U2")
    msg_id = VitalReading.objects.values_list("message_id", flat=True).first()
    client = sign_in(Client(), nurse)
    other = client.post("/monitoring/unbound/", {"message": msg_id, "mrn": outsider_patient.mrn})
    assert other.status_code == 422
    assert f"No patient with MRN {outsider_patient.mrn} at your sites.".encode() in other.content
    empty = client.post("/monitoring/unbound/", {"message": msg_id, "mrn": " "})
    assert empty.status_code == 422 and b"Enter the patient&#x27;s MRN." in empty.content
    assert not VitalReading.objects.filter(bound=True).exists()
    assert not AuditEntry.objects.filter(category="monitoring", action="change").exists()


def test_outsider_does_not_see_our_unmatched_readings(
    org: Any, site: Any, outsider: Any, sign_in: Any
) -> None:
    feed(org, site, cid="U3")
    msg_id = VitalReading.objects.values_list("message_id", flat=True).first()
    client = sign_in(Client(), outsider)
    assert b"0011223344556677" not in client.get("/monitoring/unbound/").content
    refused = client.post("/monitoring/unbound/", {"message": msg_id, "mrn": "X"})
    assert refused.status_code == 422 and b"no longer waiting" in refused.content


@pytest.mark.parametrize("who", ["front_desk", "admin"])
def test_unbound_page_is_for_clinicians(who: str, request: Any, sign_in: Any) -> None:
    client = sign_in(Client(), request.getfixturevalue(who))
    assert client.get("/monitoring/unbound/").status_code == 403


def test_admin_places_a_monitor_on_a_chair_and_readings_follow(
    org: Any, site: Any, admin: Any, nurse: Any, sign_in: Any
) -> None:
    chair = Chair.objects.create(organization=org, site=site, label="C7")
    feed(org, site, cid="D1")  # a registered monitor, not on a chair yet
    device = MonitorDevice.objects.get()
    assert device.chair is None and VitalReading.objects.filter(chair__isnull=True).count() == 5

    client = sign_in(Client(), admin)
    assert b"0011223344556677" in client.get("/monitoring/devices/").content
    saved = client.post(
        "/monitoring/devices/",
        {"device": str(device.pk), "label": "Bay 7", "chair": chair.pk, "active": "on"},
    )
    assert saved.status_code == 302
    device.refresh_from_db()
    assert (device.chair_id, device.site_id, device.label) == (chair.pk, site.pk, "Bay 7")
    entry = AuditEntry.objects.filter(category="monitoring", object_type="MonitorDevice").get()
    assert entry.user_id == admin.pk and '"chair":' in entry.after

    feed(org, site, cid="D2")
    assert VitalReading.objects.filter(message__control_id="D2", chair=chair).count() == 5
    # Nurses do not move monitors.
    assert sign_in(Client(), nurse).get("/monitoring/devices/").status_code == 403


def test_register_monitor_checks_every_field(org: Any, site: Any, admin: Any, sign_in: Any) -> None:
    chair = Chair.objects.create(organization=org, site=site, label="C1")
    client = sign_in(Client(), admin)
    ok = client.post(
        "/monitoring/devices/",
        {"identifier": "00a0c0ffee000001", "label": "Bay 1", "chair": chair.pk, "active": "on"},
    )
    assert ok.status_code == 302
    assert MonitorDevice.objects.get().identifier == "00A0C0FFEE000001"  # EUI-64 in upper case
    clash = client.post(
        "/monitoring/devices/",
        {"identifier": "00A0C0FFEE000001", "label": "x" * 81, "chair": chair.pk, "active": "on"},
    )
    assert clash.status_code == 422
    assert b"already registered" in clash.content
    assert b"Keep the label under 80 characters." in clash.content
    taken = client.post(
        "/monitoring/devices/", {"identifier": "3 WEST^3001^1", "chair": chair.pk, "active": "on"}
    )
    assert taken.status_code == 422 and b"already has a monitor" in taken.content
    assert MonitorDevice.objects.count() == 1


def test_readings_bind_by_mrn_and_the_feed_is_audited(
    org: Any, site: Any, nurse: Any, make_patient: Any
) -> None:
    patient = make_patient(nurse)
    feed(org, site, cid="B1", mrn=patient.mrn, sbp=184, dbp=96)
    rows = VitalReading.objects.all()
    assert rows.count() == 5 and all(r.bound and r.patient_id == patient.pk for r in rows)
    alert = MonitoringAlert.objects.get()
    # SBP 184 >= 180 (label Table 6 category, confirmed) -> critical; DBP 96 < 110 raises nothing.
    assert (alert.code, alert.severity, alert.message) == ("sbp_high", "critical", "BP 184/96: systolic ≥180")
    entry = AuditEntry.objects.filter(category="monitoring", client="hl7").get()
    assert entry.object_type == "HL7Message" and "messages 1.." in entry.detail


def test_chart_shows_monitor_readings_and_alerts_to_clinicians(
    org: Any, site: Any, nurse: Any, front_desk: Any, sign_in: Any, make_patient: Any
) -> None:
    patient = make_patient(nurse)
    feed(org, site, cid="C1", mrn=patient.mrn, sbp=186, dbp=112)
    chart = sign_in(Client(), nurse).get(f"/patients/{patient.pk}/")
    assert chart.status_code == 200
    assert b"SBP 186 mm[Hg], DBP 112 mm[Hg], HR 70 /min" in chart.content
    assert "BP 186/112: diastolic ≥110".encode() in chart.content
    desk = sign_in(Client(), front_desk).get(f"/patients/{patient.pk}/")
    assert desk.status_code == 200 and b"Monitor readings" not in desk.content
