"""Issue 15 M2: the MLLP port accepted anyone's vitals, and a forged BP 190/100 landed in a patient's
active session. Now only a registered monitor sending from one of its allowed addresses is charted;
anything else waits under Unknown senders, unread, until an administrator accepts (its readings then go
to Unmatched readings, never into a session) or discards it, audited."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from typing import Any

import hl7
import pytest
from django.test import Client
from django.utils import timezone

from ketaclinic.accounts.models import Chair
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside.models import Observation
from ketaclinic.interop.hl7.simulator import make_vitals_message
from ketaclinic.monitoring.models import HL7Message, MonitorDevice, VitalReading

from .conftest import ThreadedListener, register_monitor
from .test_session_feed import _dosing_session

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
CHAIR_MONITOR = "0123456789ABCDEF"
FORGER = "00DEADBEEF000001"


def forged(eui: str, cid: str, *, mrn: str = "", sbp: int = 190, dbp: int = 100) -> str:
    return make_vitals_message(
        device_eui64=eui,
        bed="Chair 4",
        patient_id=mrn,
        at=timezone.now() - timedelta(minutes=1),
        sbp=sbp,
        dbp=dbp,
        hr=80,
        spo2=97,
        rr=14,
        control_id=cid,
    )


def send(lst: ThreadedListener, *messages: str) -> list[tuple[str, str]]:
    out = []
    with socket.create_connection((lst.host, lst.port), timeout=30) as sock:
        for message in messages:
            sock.sendall(SB + message.encode() + EB + CR)
            raw = b""
            while not raw.endswith(EB + CR):
                chunk = sock.recv(65536)
                assert chunk
                raw += chunk
            ack = hl7.parse(raw[1:-2].decode())
            out.append((str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])))
    return out


@pytest.fixture
def session_in_chair(
    transactional_db: Any, org: Any, site: Any, nurse: Any, prescriber: Any, patient: Any
) -> Any:
    chair = Chair.objects.create(organization=org, site=site, label="Chair 4")
    return _dosing_session(nurse, prescriber, patient, chair)


def test_a_forged_reading_never_reaches_the_patients_session(
    session_in_chair: Any, org: Any, site: Any, patient: Any
) -> None:
    session = session_in_chair
    monitor = register_monitor(
        org, CHAIR_MONITOR, sources=("10.20.30.40/32",), site=site, chair=session.chair
    )
    before = Observation.objects.filter(session=session).count()
    lst = ThreadedListener(organization=org, default_site=site)
    try:
        acks = send(
            lst,
            # an unregistered monitor naming the patient's MRN (the probe's forgery)
            forged(FORGER, "X1", mrn=patient.mrn),
            # the chair's own monitor id, but from this computer instead of the monitor's address
            forged(CHAIR_MONITOR, "X2"),
        )
        # Acknowledged (kept safely for review), but nothing charted, no reading, no alert.
        assert acks == [("AA", "X1"), ("AA", "X2")]
        assert Observation.objects.filter(session=session).count() == before
        assert not VitalReading.objects.exists()
        held = {m.control_id: m for m in HL7Message.objects.all()}
        assert {m.review_status for m in held.values()} == {"held"}
        assert held["X1"].held_reason.startswith(f"Unknown monitor ({FORGER}) from 127.0.0.1")
        assert "not one of its allowed addresses" in held["X2"].held_reason
        assert held["X2"].device_id == monitor.pk and held["X1"].device_id is None
        assert held["X1"].source_address == "127.0.0.1"

        # The monitor really is on this computer: once its address is allowed, it is charted as usual.
        monitor.allowed_sources = ["127.0.0.1/32"]
        monitor.save()
        lst.listener.writer.store.cache.clear()  # (else within the 5 s lookup cache)
        assert send(lst, forged(CHAIR_MONITOR, "X3", sbp=128, dbp=82)) == [("AA", "X3")]
    finally:
        lst.stop()
    latest = Observation.objects.filter(session=session).order_by("-observed_at").first()
    assert Observation.objects.filter(session=session).count() == before + 1
    assert (latest.sbp_mmhg, latest.dbp_mmhg, latest.source) == (128, 82, "hl7")


def test_the_review_queue_is_bounded(transactional_db: Any, org: Any, site: Any) -> None:
    lst = ThreadedListener(organization=org, default_site=site, review_queue_max=2)
    try:
        acks = send(lst, *(forged(FORGER, f"Q{i}") for i in range(3)))
    finally:
        lst.stop()
    assert acks == [("AA", "Q0"), ("AA", "Q1"), ("AR", "Q2")]  # the third: send again later
    assert HL7Message.objects.count() == 2


def csrf(client: Client, url: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(url).content.decode())
    assert found
    return found.group(1)


def test_an_administrator_accepts_or_discards_unknown_senders_audited(
    session_in_chair: Any,
    org: Any,
    site: Any,
    admin: Any,
    nurse: Any,
    patient: Any,
    sign_in: Any,
    make_user: Any,
    other_org: Any,
) -> None:
    session = session_in_chair
    lst = ThreadedListener(organization=org, default_site=site)
    try:
        send(
            lst, forged(FORGER, "R1", mrn=patient.mrn), forged(FORGER, "R2"), forged("00BADBADBAD00002", "R3")
        )
    finally:
        lst.stop()
    url = "/monitoring/senders/"
    client = sign_in(Client(enforce_csrf_checks=True), admin)
    page = client.get(url).content.decode()
    assert "3 messages waiting" in page and FORGER in page and "00BADBADBAD00002" in page
    assert "127.0.0.1" in page and "SBP 190 mm[Hg]" in page
    assert patient.mrn not in page  # no patient identifiers on the page

    # Without a CSRF token: refused. Nurses and other organizations' administrators: no.
    assert (
        client.post(url, {"decision": "discard", "identifier": FORGER, "address": "127.0.0.1"}).status_code
        == 403
    )
    assert sign_in(Client(), nurse).get(url).status_code == 403
    stranger = sign_in(Client(enforce_csrf_checks=True), make_user("admin9", other_org, "admin", []))
    assert FORGER not in stranger.get(url).content.decode()
    refused = stranger.post(
        url,
        {
            "decision": "accept",
            "identifier": FORGER,
            "address": "127.0.0.1",
            "csrfmiddlewaretoken": csrf(stranger, url),
        },
    )
    assert refused.status_code == 422 and "no longer waiting" in refused.content.decode()
    assert HL7Message.objects.filter(review_status="held").count() == 3

    accepted = client.post(
        url,
        {
            "decision": "accept",
            "identifier": FORGER,
            "address": "127.0.0.1",
            "label": "Bay 9 spare",
            "csrfmiddlewaretoken": csrf(client, url),
        },
    )
    assert accepted.status_code == 302
    device = MonitorDevice.objects.get(identifier=FORGER)
    assert (device.label, device.allowed_sources, device.chair_id) == ("Bay 9 spare", ["127.0.0.1/32"], None)
    released = HL7Message.objects.filter(control_id__in=["R1", "R2"])
    assert {(m.review_status, m.reviewed_by_id, m.device_id) for m in released} == {
        ("released", admin.pk, device.pk)
    }
    # Read into unmatched readings: not bound, not in the session, no alert; a nurse attaches them.
    rows = VitalReading.objects.filter(message__in=released)
    assert rows.count() == 10 and not rows.filter(bound=True).exists()
    assert not Observation.objects.filter(session=session, source="hl7").exists()
    unmatched = sign_in(Client(), nurse).get("/monitoring/unbound/").content.decode()
    assert "SBP 190 mm[Hg]" in unmatched and "Bay 9 spare" in unmatched

    discarded = client.post(
        url,
        {
            "decision": "discard",
            "identifier": "00BADBADBAD00002",
            "address": "127.0.0.1",
            "csrfmiddlewaretoken": csrf(client, url),
        },
    )
    assert discarded.status_code == 302
    gone = HL7Message.objects.get(control_id="R3")
    assert gone.review_status == "discarded" and not gone.readings.exists() and gone.raw  # kept as received
    assert not MonitorDevice.objects.filter(identifier="00BADBADBAD00002").exists()

    entries = AuditEntry.objects.filter(category="monitoring", user=admin).order_by("seq")
    details = [(e.object_type, e.action, e.detail) for e in entries]
    assert details[0][:2] == ("MonitorDevice", "add") and "Unknown senders" in details[0][2]
    assert details[1][:2] == ("HL7Message", "change") and "2 held message(s)" in details[1][2]
    assert "10 reading(s)" in details[1][2]
    assert details[2][:2] == ("HL7Message", "change") and "discarded unread" in details[2][2]
    again = client.post(
        url,
        {
            "decision": "discard",
            "identifier": FORGER,
            "address": "127.0.0.1",
            "csrfmiddlewaretoken": csrf(client, url),
        },
    )
    assert again.status_code == 422 and "no longer waiting" in again.content.decode()
    assert "No messages from unknown senders." in client.get(url).content.decode()


def test_allowed_addresses_are_edited_with_the_monitor_and_every_bad_entry_named(
    db: Any, org: Any, site: Any, admin: Any, sign_in: Any
) -> None:
    device = register_monitor(org, CHAIR_MONITOR)
    client = sign_in(Client(enforce_csrf_checks=True), admin)
    url = "/monitoring/devices/"

    def save(sources: str) -> Any:
        return client.post(
            url,
            {
                "device": str(device.pk),
                "label": "Bay 4",
                "active": "on",
                "allowed_sources": sources,
                "csrfmiddlewaretoken": csrf(client, url),
            },
        )

    for typed, reason in [
        ("10.0.4.300", "&#x27;10.0.4.300&#x27; is not an IP address or network"),
        ("10.0.4.17/24", "has host bits set; write the network&#x27;s first address (10.0.4.0/24)"),
        ("0.0.0.0/0", "would allow every address"),
    ]:
        refused = save(typed)
        assert refused.status_code == 422 and reason in refused.content.decode(), typed
        assert f'value="{typed}"' in refused.content.decode()  # what was typed is kept
    device.refresh_from_db()
    assert device.allowed_sources == ["127.0.0.1/32", "::1/128"]  # unchanged

    assert save("10.0.4.17, 10.1.0.0/16 fd00::5").status_code == 302
    device.refresh_from_db()
    assert device.allowed_sources == ["10.0.4.17/32", "10.1.0.0/16", "fd00::5/128"]
    entry = AuditEntry.objects.filter(object_type="MonitorDevice").latest("seq")
    assert '"10.0.4.17/32"' in entry.after and '"127.0.0.1/32"' in entry.before
    page = client.get(url).content.decode()
    assert "<code>10.1.0.0/16</code>" in page
