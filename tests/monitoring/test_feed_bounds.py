"""Issue 15 H4 and the feed's bounds, against a real MLLP peer: one 0.9 MB message with 10,586 OBX was
acknowledged and then stalled the server. Now a message past the size, OBX or reading limit is answered
AE naming the limit and nothing of it is stored; a time outside the plausible window is answered AE
naming the field; idle connections are closed, and one address holds a bounded number of connections."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import hl7
import pytest
from django.conf import settings
from django.utils import timezone

from ketaclinic.interop.hl7.simulator import make_vitals_message

from .conftest import ThreadedListener, register_monitor

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
EUI = "0011223344556677"
OBX = "OBX|{n}|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.{n}|120|266016^MDC_DIM_MMHG^MDC|||||R"


def vitals(cid: str, at: datetime | None = None, **values: Any) -> str:
    return make_vitals_message(
        device_eui64=EUI,
        bed="C1",
        patient_id=None,
        at=at or timezone.now(),
        control_id=cid,
        **({"sbp": 122, "dbp": 78, "hr": 70, "spo2": 97, "rr": 15} | values),
    )


def with_obx(cid: str, count: int) -> str:
    """A monitor message (6 OBX, 5 of them values) followed by ``count`` more systolic OBX segments."""
    return vitals(cid) + "\r" + "\r".join(OBX.format(n=100 + i) for i in range(count))


def exchange(sock: socket.socket, message: str | bytes) -> Any:
    data = message.encode() if isinstance(message, str) else message
    sock.sendall(SB + data + EB + CR)
    raw = b""
    while not raw.endswith(EB + CR):
        chunk = sock.recv(65536)
        assert chunk, "the listener closed the connection instead of answering"
        raw += chunk
    return hl7.parse(raw[1:-2].decode())


def msa(ack: Any) -> tuple[str, str]:
    return str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])


@pytest.fixture
def listener(transactional_db: Any, org: Any, site: Any) -> Any:
    """The listener as `ketaclinic mllp` runs it: the size limit from the settings (256 kB by default)."""
    register_monitor(org, EUI)
    lst = ThreadedListener(
        listener_options={"max_frame_bytes": settings.KETACLINIC_HL7_MAX_MESSAGE_BYTES},
        organization=org,
        default_site=site,
    )
    yield lst
    lst.stop()


def stored() -> tuple[int, int]:
    from ketaclinic.monitoring.models import HL7Message, VitalReading

    return HL7Message.objects.count(), VitalReading.objects.count()


def test_the_probes_message_of_10586_obx_is_refused_and_nothing_is_stored(listener: ThreadedListener) -> None:
    big = with_obx("H4", 10_586 - 6)
    assert big.count("\rOBX|") == 10_586 and 850_000 < len(big) < 1_000_000  # the probe's 0.9 MB
    with socket.create_connection((listener.host, listener.port), timeout=30) as sock:
        ack = exchange(sock, big)
        assert msa(ack) == ("AE", "H4")
        assert "larger than 262144 bytes" in str(ack.segment("ERR")[8])
        assert stored() == (0, 0)
        # The same connection goes on: the next message is read and stored.
        assert msa(exchange(sock, vitals("OK1"))) == ("AA", "OK1")
    assert stored() == (1, 5)


def test_more_obx_or_readings_than_the_limits_is_an_ae_naming_the_limit(listener: ThreadedListener) -> None:
    with socket.create_connection((listener.host, listener.port), timeout=30) as sock:
        obx = exchange(sock, with_obx("O1", 600))  # 606 OBX, 50 kB: under the size limit
        assert msa(obx) == ("AE", "O1")
        assert "606 OBX segments; this system accepts at most 500" in str(obx.segment("ERR")[8])
        readings = exchange(sock, with_obx("R1", 250))  # 255 values
        assert msa(readings) == ("AE", "R1")
        assert "255 vital-sign values; this system accepts at most 200" in str(readings.segment("ERR")[8])
        assert msa(exchange(sock, with_obx("R2", 195))) == ("AA", "R2")  # 200: at the limit
    assert stored() == (1, 200)


@pytest.mark.parametrize(
    ("stamp", "field", "why"),
    [
        ("00010101000000+0500", "OBX-14 of OBX 4", "before 2000-01-01"),
        ("99991231235959-1200", "OBX-14 of OBX 4", "later than the time it was received"),
    ],
)
def test_a_time_outside_the_window_is_an_ae_naming_the_field(
    listener: ThreadedListener, stamp: str, field: str, why: str
) -> None:
    """Issue 15 H2: a year-0001 or year-9999 time was accepted from HL7 and broke the pages showing it."""
    from ketaclinic.monitoring.models import HL7Message

    lines = vitals("T1", at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)).split("\r")
    # The heart rate's own time (OBX-14 of OBX 4); MSH-7 and OBR-7 are fine.
    message = "\r".join(
        line.replace("20260102030405+0000", stamp) if line.startswith("OBX|4|") else line for line in lines
    )
    with socket.create_connection((listener.host, listener.port), timeout=30) as sock:
        ack = exchange(sock, message)
    assert msa(ack) == ("AE", "T1")
    text = str(ack.segment("ERR")[8])
    assert field in text and why in text
    row = HL7Message.objects.get()  # kept as received, for whoever looks into the monitor's clock
    assert row.ack_code == "AE" and why in row.ack_error and stored() == (1, 0)


def test_future_times_beyond_the_clock_difference_are_refused_within_it_accepted(
    listener: ThreadedListener,
) -> None:
    now = timezone.now()
    with socket.create_connection((listener.host, listener.port), timeout=30) as sock:
        late = exchange(sock, vitals("F1", at=now + timedelta(minutes=30)))
        assert msa(late) == ("AE", "F1")
        assert "MSH-7" in str(late.segment("ERR")[8]) and "check the monitor's clock" in str(
            late.segment("ERR")[8]
        )
        assert msa(exchange(sock, vitals("F2", at=now + timedelta(minutes=3)))) == ("AA", "F2")
    assert stored() == (2, 5)


def test_idle_and_dribbling_connections_are_closed(transactional_db: Any, org: Any, site: Any) -> None:
    """M2: the listener never closed idle connections. A silent one, one that stops after a message and
    one that dribbles a frame a byte at a time are all closed after the idle timeout; a busy one is not."""
    register_monitor(org, EUI)
    lst = ThreadedListener(listener_options={"idle_timeout": 1.0}, organization=org, default_site=site)
    try:
        silent = socket.create_connection((lst.host, lst.port), timeout=10)
        after_one = socket.create_connection((lst.host, lst.port), timeout=10)
        dribbling = socket.create_connection((lst.host, lst.port), timeout=10)
        busy = socket.create_connection((lst.host, lst.port), timeout=10)
        assert msa(exchange(after_one, vitals("I1"))) == ("AA", "I1")
        started = time.monotonic()
        dribbling.sendall(SB)
        n = 0
        while time.monotonic() - started < 3.0:
            try:
                dribbling.sendall(b"M")  # never a whole frame
            except OSError:
                break
            if n % 3 == 0:
                assert msa(exchange(busy, vitals(f"B{n}"))) == ("AA", f"B{n}")
            n += 1
            time.sleep(0.25)
        for sock in (silent, after_one, dribbling):
            sock.settimeout(5)
            try:
                assert sock.recv(10) == b""  # closed by the listener
            except ConnectionResetError:
                pass
        assert msa(exchange(busy, vitals("B-last"))) == ("AA", "B-last")  # still open
        assert lst.listener.stats.idle_closed >= 3
        for sock in (silent, after_one, dribbling, busy):
            sock.close()
    finally:
        lst.stop()


def test_one_address_holds_a_bounded_number_of_connections(
    transactional_db: Any, org: Any, site: Any
) -> None:
    register_monitor(org, EUI)
    lst = ThreadedListener(
        listener_options={"max_connections_per_address": 2}, organization=org, default_site=site
    )
    try:
        first, second, third = (socket.create_connection((lst.host, lst.port), timeout=10) for _ in range(3))
        try:
            assert third.recv(10) == b""
        except ConnectionResetError:
            pass
        assert msa(exchange(first, vitals("A1"))) == ("AA", "A1")
        assert msa(exchange(second, vitals("A2"))) == ("AA", "A2")
        first.close()
        time.sleep(0.3)  # the listener sees the close
        with socket.create_connection((lst.host, lst.port), timeout=10) as again:  # room again
            assert msa(exchange(again, vitals("A3"))) == ("AA", "A3")
        assert lst.listener.stats.refused_connections == 1
        for sock in (second, third):
            sock.close()
    finally:
        lst.stop()
