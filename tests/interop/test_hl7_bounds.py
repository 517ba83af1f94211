"""What one HL7 message may carry (interop/hl7/bounds.py, issue 15 H4/H2): OBX and reading limits, the
plausible time window, and a framing that never buffers past the size limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ketaclinic.interop.hl7.bounds import (
    FeedLimits,
    count_obx,
    obx_problem,
    readings_problem,
    time_location,
    time_problem,
    too_large,
)
from ketaclinic.interop.hl7.errors import AckCode, ErrorLocation, HL7ErrorCode
from ketaclinic.interop.hl7.mllp import FrameDecoder, Oversized, encode_frame
from ketaclinic.interop.hl7.model import TimeSource

RECEIVED = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
LIMITS = FeedLimits(max_obx=3, max_readings=2)
OBX14 = ErrorLocation("OBX", 4, 14)


def message(obx: int) -> str:
    segments = ["MSH|^~\\&|M^0011223344556677^EUI-64||||20261207150000||ORU^R01|C1|P|2.6", "PID|||"]
    segments += [
        f"OBX|{i}|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.{i}|97|262688^MDC_DIM_PERCENT^MDC"
        for i in range(obx)
    ]
    return "\r".join(segments)


def test_obx_are_counted_and_more_than_the_limit_is_an_ae_naming_it() -> None:
    assert count_obx(message(3)) == 3 and count_obx("OBX|1\rOBX|2") == 2
    assert obx_problem(message(3), LIMITS, None) is None
    error = obx_problem(message(4), LIMITS, None)
    assert error is not None and error.ack_code is AckCode.ERROR
    assert "4 OBX segments" in error.message and "at most 3" in error.message
    assert error.fields == {"OBX": "4 segments; the limit is 3"}
    assert str(error.location) == "OBX"


def test_readings_over_the_limit_and_size_are_ae_not_ar() -> None:
    assert readings_problem(2, LIMITS, None) is None
    error = readings_problem(3, LIMITS, None)
    assert error is not None and error.ack_code is AckCode.ERROR and "at most 2" in error.message
    big = too_large(65536, None)
    # Table 0357 has nothing closer than 207, which alone would mean AR ("send it again"): it would not help.
    assert big.code is HL7ErrorCode.APPLICATION_INTERNAL_ERROR and big.ack_code is AckCode.ERROR
    assert "larger than 65536 bytes" in big.message


@pytest.mark.parametrize(
    ("moment", "why"),
    [
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "before 2000-01-01"),
        (datetime(1899, 12, 31, tzinfo=UTC), "before 2000-01-01"),
        (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "before 2000-01-01"),
        (
            datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))),
            "later than the time it was received",
        ),
        (RECEIVED + timedelta(minutes=5, seconds=1), "plus 5 minute(s) of clock difference"),
    ],
)
def test_times_outside_the_window_are_refused_naming_the_field(moment: datetime, why: str) -> None:
    error = time_problem(moment, location=OBX14, received_at=RECEIVED, limits=FeedLimits(), header=None)
    assert (
        error is not None and error.ack_code is AckCode.ERROR and error.code is HL7ErrorCode.DATA_TYPE_ERROR
    )
    assert why in error.message and "OBX-14 of OBX 4" in error.message
    assert list(error.fields) == ["OBX-14"] and error.location == OBX14


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2000, 1, 1, tzinfo=UTC),
        RECEIVED,
        RECEIVED + timedelta(minutes=5),  # within the allowed clock difference
        RECEIVED - timedelta(days=3650),
        datetime(2026, 12, 7, 20, 4, tzinfo=timezone(timedelta(hours=5))),  # 15:04 UTC
    ],
)
def test_plausible_times_pass(moment: datetime) -> None:
    assert (
        time_problem(moment, location=OBX14, received_at=RECEIVED, limits=FeedLimits(), header=None) is None
    )


def test_time_field_names() -> None:
    assert str(time_location(TimeSource.OBX, 3)) == "OBX-14"
    assert time_location(TimeSource.PARENT_OBX, 3) == ErrorLocation("OBX", 3, 14)
    assert time_location(TimeSource.OBR, 3) == ErrorLocation("OBR", 1, 7)
    assert time_location(TimeSource.MSH, 3) == ErrorLocation("MSH", 1, 7)
    with pytest.raises(ValueError):
        time_problem(
            datetime(2026, 1, 1), location=OBX14, received_at=RECEIVED, limits=FeedLimits(), header=None
        )
    with pytest.raises(ValueError):
        FeedLimits(max_obx=0)


def test_the_framing_never_holds_more_than_the_limit() -> None:
    """A 0.9 MB frame against a 64 kB limit, in reads of 64 kB, one of 300 kB and byte by byte: the buffer
    never passes the limit, the frame is reported once with its head, and the next frame is read."""
    limit = 64 * 1024
    big = b"MSH|^~\\&|BIG||||20261207||ORU^R01|B1|P|2.6\r" + b"OBX|1|NM|x||1\r" * 65_000
    stream = encode_frame(big) + encode_frame(b"MSH|^~\\&|OK")
    for size in (65536, 300_000, 1):
        decoder = FrameDecoder(limit)
        events = []
        largest = 0
        for start in range(0, len(stream) if size > 1 else 200_000, size):
            events += decoder.feed(stream[start : start + size])
            largest = max(largest, len(decoder._buf))
        if size == 1:
            events += decoder.feed(stream[200_000:])
        assert largest <= limit
        over = [e for e in events if isinstance(e, Oversized)]
        assert len(over) == 1 and over[0].head.startswith(b"MSH|^~\\&|BIG") and over[0].size > limit
        assert events[-1].payload == b"MSH|^~\\&|OK"  # type: ignore[union-attr]
