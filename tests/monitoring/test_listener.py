"""The running listener against a real peer: python-hl7's MLLP client sends the reference messages."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import hl7
import pytest
from hl7.client import MLLPClient
from tests.monitoring.conftest import ThreadedListener, device_of, register_monitor, sample

from ketaclinic.interop.hl7.mllp import Frame, FrameDecoder

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
VITALS_SAMPLES = (
    "pcd01_nibp.hl7",
    "pcd01_gateway_hr_arterial.hl7",
    "continua_bp.hl7",
    "continua_oximeter.hl7",
    "continua_thermometer_fahrenheit.hl7",
)


@pytest.fixture(autouse=True)
def _sample_monitors(transactional_db: Any, org: Any) -> None:
    """The reference samples' monitors, registered and allowed from this computer (where the test peers
    connect from): an unregistered monitor's readings wait for review instead (test_feed_trust.py)."""
    for identifier in {device_of(sample(name)) for name in VITALS_SAMPLES}:
        register_monitor(org, identifier)


def send(lst: ThreadedListener, message: str) -> Any:
    with MLLPClient(lst.host, lst.port) as client:
        raw = client.send_message(message)
    return parse_ack(raw)


def parse_ack(raw: bytes) -> Any:
    assert raw.startswith(SB) and raw.endswith(EB + CR), raw
    return hl7.parse(raw[1:-2].decode())


def recv_frame(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(EB + CR):
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an ACK arrived"
        data += chunk
    return data


def readings(**filters: Any) -> dict[str, float]:
    from ketaclinic.monitoring.models import VitalReading

    return {r.kind: r.value for r in VitalReading.objects.filter(**filters)}


def test_nibp_sample_gets_the_reference_ack_and_readings_bound_by_mrn(
    running_listener: ThreadedListener, nurse: Any, make_patient: Any
) -> None:
    from ketaclinic.monitoring.models import HL7Message, MonitoringAlert, VitalReading

    patient = make_patient(nurse, mrn="789567")  # PID-3 of pcd01_nibp.hl7
    ack = send(running_listener, sample("pcd01_nibp.hl7"))
    expected = hl7.parse(sample("pcd01_ack_for_nibp.hl7"))
    assert str(ack.segment("MSA")[1]) == str(expected.segment("MSA")[1]) == "AA"
    assert str(ack.segment("MSA")[2]) == str(expected.segment("MSA")[2]) == "MSGID1234"
    msh = ack.segment("MSH")
    assert str(msh[9]) == "ACK^R01^ACK"
    assert str(msh[5]) == "AcmeInc^ACDE48234567ABCD^EUI-64"  # the sender, swapped into the receiver
    assert (str(msh[12]), str(msh[15]), str(msh[16])) == ("2.6", "NE", "AL")

    rows = list(VitalReading.objects.order_by("kind"))
    assert {r.kind: r.value for r in rows} == {"sbp": 120.0, "dbp": 80.0, "map": 100.0}
    # OBX-14 of the 150020 group header, 20090813095715+0500 = 04:57:15 UTC
    assert {r.observed_at for r in rows} == {datetime(2009, 8, 13, 4, 57, 15, tzinfo=UTC)}
    assert all(r.bound and r.patient_id == patient.pk and r.unit == "mm[Hg]" for r in rows)
    assert HL7Message.objects.get().device.identifier == "0123456789ABCDEF"  # OBX-18 EUI-64
    assert not MonitoringAlert.objects.exists()  # 120/80 raises nothing


def test_fahrenheit_thermometer_is_stored_in_celsius(running_listener: ThreadedListener) -> None:
    ack = send(running_listener, sample("continua_thermometer_fahrenheit.hl7"))
    assert str(ack.segment("MSA")[1]) == "AA"
    # (98.6 - 32) * 5 / 9 = 37.0
    assert readings() == {"temp_c": pytest.approx(37.0)}
    assert readings(unit="Cel", bound=False)  # PID 789567 matches no patient: kept, unbound


def test_gateway_sample_ucum_units_and_local_time(running_listener: ThreadedListener) -> None:
    from ketaclinic.monitoring.models import VitalReading

    ack = send(running_listener, sample("pcd01_gateway_hr_arterial.hl7"))
    assert str(ack.segment("MSA")[1]) == "AA"
    assert str(ack.segment("MSA")[2]) == "12d15a9:11df9e61347:-7fee:30456965"
    # Pulmonary pressures and the PVC count are not vitals we store; HR, arterial 120/80/92, pulse 60 are.
    assert readings() == {"hr": 60.0, "sbp": 120.0, "dbp": 80.0, "map": 92.0, "pulse": 60.0}
    # OBR-7 20081211144500 has no offset: read in the site's zone, New York (EST, UTC-5) -> 19:45 UTC.
    times = set(VitalReading.objects.values_list("observed_at", flat=True))
    assert times == {datetime(2008, 12, 11, 19, 45, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("continua_bp.hl7", {"sbp": 120.0, "dbp": 80.0, "map": 100.0}),
        ("continua_oximeter.hl7", {"spo2": 80.5}),
    ],
)
def test_other_samples(running_listener: ThreadedListener, name: str, expected: dict[str, float]) -> None:
    ack = send(running_listener, sample(name))
    assert str(ack.segment("MSA")[1]) == "AA"
    assert readings() == expected


def test_lab_result_is_acknowledged_not_taken_for_vitals(running_listener: ThreadedListener) -> None:
    from ketaclinic.monitoring.models import HL7Message, VitalReading

    ack = send(running_listener, sample("lab_glucose_not_vitals.hl7"))
    assert str(ack.segment("MSA")[1]) == "AA"
    assert str(ack.segment("MSA")[2]) == "CNTRL-3456"
    msg = HL7Message.objects.get()
    assert (msg.device_feed, msg.ack_code) == (False, "AA")
    assert not VitalReading.objects.exists()


def test_repeat_is_acknowledged_again_and_stored_once(running_listener: ThreadedListener) -> None:
    from ketaclinic.monitoring.models import HL7Message, VitalReading

    message = sample("continua_bp.hl7")
    with MLLPClient(running_listener.host, running_listener.port) as client:
        first = parse_ack(client.send_message(message))
        second = parse_ack(client.send_message(message))
    assert [str(a.segment("MSA")[1]) for a in (first, second)] == ["AA", "AA"]
    assert HL7Message.objects.count() == 1
    assert VitalReading.objects.count() == 3
    # Same MSH-10 and sender, different content (the thermometer sample reuses MSGID1234): stored, flagged.
    third = send(running_listener, sample("continua_thermometer_fahrenheit.hl7"))
    assert str(third.segment("MSA")[1]) == "AA"
    assert HL7Message.objects.count() == 2
    flagged = HL7Message.objects.order_by("-id").first()
    assert flagged is not None and any("used before" in i for i in flagged.issues)
    assert VitalReading.objects.count() == 4


def test_alert_engine_runs_on_bound_readings(
    running_listener: ThreadedListener, nurse: Any, make_patient: Any
) -> None:
    from ketaclinic.monitoring.models import MonitoringAlert

    make_patient(nurse, mrn="789567")
    send(running_listener, sample("continua_oximeter.hl7"))
    alert = MonitoringAlert.objects.get()
    # SpO2 80.5 % rounds to 80 < 92 (SPO2_LOW default, unconfirmed) -> critical
    assert (alert.code, alert.severity, alert.rule_confirmed) == ("spo2_low", "critical", False)
    assert alert.reading.kind == "spo2"
    assert "before dosing" not in alert.message


def test_garbage_and_oversized_frames_do_not_stall_the_connection(running_listener: ThreadedListener) -> None:
    from ketaclinic.monitoring.models import VitalReading

    good = sample("continua_bp.hl7").encode()
    with socket.create_connection((running_listener.host, running_listener.port), timeout=10) as sock:
        sock.sendall(b"noise outside any frame\r\n")  # skipped, no answer
        sock.sendall(SB + b"this is not HL7" + EB + CR)
        not_hl7 = parse_ack(recv_frame(sock))
        assert str(not_hl7.segment("MSA")[1]) == "AE"
        assert str(not_hl7.segment("ERR")[3]).startswith("100")  # segment sequence error
        sock.sendall(SB + b"MSH|^~\\&|X||||20240101||ADT^A01|C1|P|2.6" + EB + CR)
        adt = parse_ack(recv_frame(sock))
        assert (str(adt.segment("MSA")[1]), str(adt.segment("MSA")[2])) == ("AR", "C1")
        big = b"MSH|^~\\&|BIG||||20240101||ORU^R01|BIG1|P|2.6\rOBX|1|ST|x||" + b"A" * 70_000
        sock.sendall(SB + big + EB + CR)
        oversized = parse_ack(recv_frame(sock))
        # AE: sending it again would not help (issue 15 H4); the limit is named.
        assert (str(oversized.segment("MSA")[1]), str(oversized.segment("MSA")[2])) == ("AE", "BIG1")
        assert "larger than 65536 bytes" in str(oversized.segment("ERR")[8])
        sock.sendall(SB + b"MSH|^~\\&|half a frame, then a new start block" + SB + good + EB + CR)
        ok = parse_ack(recv_frame(sock))
        assert str(ok.segment("MSA")[1]) == "AA"
    assert VitalReading.objects.count() == 3


def test_many_connections_and_reconnects(running_listener: ThreadedListener, org: Any) -> None:
    from ketaclinic.interop.hl7.simulator import make_vitals_message
    from ketaclinic.monitoring.models import HL7Message, MonitorDevice, VitalReading

    for i in range(20):
        register_monitor(org, f"00000000000000{i:02X}")
    at = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    socks = [
        socket.create_connection((running_listener.host, running_listener.port), timeout=10)
        for _ in range(20)
    ]
    try:
        for round_ in range(3):
            for i, sock in enumerate(socks):
                msg = make_vitals_message(
                    device_eui64=f"00000000000000{i:02X}",
                    bed=f"C{i}",
                    patient_id=None,
                    at=at,
                    sbp=120,
                    dbp=80,
                    hr=60,
                    spo2=98,
                    rr=14,
                    control_id=f"R{round_}-{i}",
                )
                sock.sendall(SB + msg.encode() + EB + CR)
            for sock in socks:
                assert str(parse_ack(recv_frame(sock)).segment("MSA")[1]) == "AA"
            socks[0].close()  # a monitor reconnects
            socks[0] = socket.create_connection((running_listener.host, running_listener.port), timeout=10)
    finally:
        for sock in socks:
            sock.close()
    assert HL7Message.objects.count() == 60
    assert VitalReading.objects.count() == 60 * 5  # sbp, dbp, hr, spo2, rr
    assert MonitorDevice.objects.count() == 20 + 2  # and the samples'
    assert not VitalReading.objects.filter(bound=True).exists()  # none is on a chair yet


def test_parse_workers_give_the_same_answers(transactional_db: Any, org: Any, site: Any) -> None:
    """--parse-workers 1: parsing in a worker process, storing in the listener, same ACKs and rows."""
    from ketaclinic.monitoring.models import HL7Message, VitalReading

    lst = ThreadedListener(parse_workers=1, organization=org, default_site=site)
    try:
        with socket.create_connection((lst.host, lst.port), timeout=30) as sock:
            sock.sendall(SB + sample("continua_thermometer_fahrenheit.hl7").encode() + EB + CR)
            sock.sendall(SB + b"this is not HL7" + EB + CR)  # pipelined: answered in order
            sock.sendall(SB + sample("lab_glucose_not_vitals.hl7").encode() + EB + CR)
            frames: list[bytes] = []
            decoder = FrameDecoder()
            while len(frames) < 3:
                frames += [e.payload for e in decoder.feed(sock.recv(65536)) if isinstance(e, Frame)]
            acks = [hl7.parse(f.decode()) for f in frames]
            codes = [(str(a.segment("MSA")[1]), str(a.segment("MSA")[2])) for a in acks]
    finally:
        lst.stop()
    assert codes == [("AA", "MSGID1234"), ("AE", ""), ("AA", "CNTRL-3456")]
    assert readings() == {"temp_c": pytest.approx(37.0)}  # (98.6 - 32) * 5 / 9
    assert HL7Message.objects.count() == 3 and VitalReading.objects.count() == 1
