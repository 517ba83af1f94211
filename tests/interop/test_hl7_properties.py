"""Property-based tests of the HL7 reader (issue 15, point 5): whatever arrives — arbitrary bytes, or
messages shaped like a monitor's but hostile in every field (delimiters, escapes, control characters,
huge numbers, years 0000-9999, absurd offsets, thousands of segments) — the parser raises nothing but
its own HL7ParseError, the feed's pure step (prepare) never raises, the time check never overflows, and
the listener can always answer with a well-formed ACK (AA, AE or AR) that names the message's control id.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import hl7
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ketaclinic.interop.hl7.bounds import FeedLimits, time_location, time_problem
from ketaclinic.interop.hl7.errors import HL7ParseError
from ketaclinic.interop.hl7.mllp import CR, EB, SB
from ketaclinic.interop.hl7.parse import parse_oru, python_codec
from ketaclinic.monitoring.prepare import Inbound, prepare

RECEIVED = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
# Sized for CI on two cores (issue 15 point 5): a few hundred examples per property, seconds each.
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

CODES = [
    "150021^MDC_PRESS_BLD_NONINV_SYS^MDC",
    "150022^MDC_PRESS_BLD_NONINV_DIA^MDC",
    "147842^MDC_ECG_HEART_RATE^MDC",
    "150456^MDC_PULS_OXIM_SAT_O2^MDC",
    "151562^MDC_RESP_RATE^MDC",
    "150344^MDC_TEMP^MDC",
    "0002-4182^HR^MDIL",
    "8867-4^Heart rate^LN",
    "99999^NOPE^MDC",
    "^^",
]
UNITS = [
    "266016^MDC_DIM_MMHG^MDC",
    "264864^MDC_DIM_BEAT_PER_MIN^MDC",
    "262688^MDC_DIM_PERCENT^MDC",
    "268192^MDC_DIM_DEGC^MDC",
    "mm[Hg]^mm[Hg]^UCUM",
    "[degF]^[degF]^UCUM",
    "kPa^kPa^UCUM",
    "",
]
NASTY = st.sampled_from(
    ["", "|", "^", "~", "\\", "&", "\\F\\", "\\X41\\", "\\X\\", "\\Z99\\", "\\.br\\", "\x00", "\x0b", "\x1c",
     "\n", "\r\n", "é", "\ufeff", "\U0001f600", "MSH", "OBX|1", "NaN", "Infinity", "-0", "1e400", "1e-400",
     "9" * 400, "  ", "%s", "'; DROP TABLE x;--", "<script>"]
)  # fmt: skip
TEXT = st.one_of(NASTY, st.text(max_size=30), st.text(alphabet="|^~\\&0123456789.+-e ", max_size=30))
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    TEXT,
)


def dtm() -> st.SearchStrategy[str]:
    """HL7 times: plausible, absurd (year 0000-9999, month 99), truncated, with and without offsets."""
    digits = st.integers(min_value=0, max_value=9999).map(lambda y: f"{y:04d}")
    rest = st.text(alphabet="0123456789", max_size=10)
    frac = st.one_of(
        st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=5).map(lambda f: "." + f)
    )
    offset = st.one_of(st.just(""), st.from_regex(r"[+-][0-9]{4}", fullmatch=True))
    plausible = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)).map(
        lambda d: d.strftime("%Y%m%d%H%M%S")
    )
    built = st.tuples(st.one_of(digits, plausible), rest, frac, offset).map("".join)
    return st.one_of(built, plausible, TEXT)


@st.composite
def hostile_messages(draw: Any, readable_header: bool = False) -> str:
    """Messages shaped like a monitor's (MSH, PID, PV1, OBR, OBX…) with hostile content everywhere; with
    ``readable_header`` an MSH the reader accepts (but for its time), so that the rest is read."""
    msh_fields = [
        draw(st.one_of(st.just("M^0011223344556677^EUI-64"), TEXT)),  # MSH-3
        draw(TEXT), draw(TEXT), draw(TEXT),  # MSH-4..6
        draw(dtm()),  # MSH-7
        draw(TEXT),
        draw(st.sampled_from(["ORU^R01^ORU_R01", "ORU^R01", "ADT^A01", "ORU", "", "ORU^R99"])),  # MSH-9
        draw(st.one_of(st.just("C1"), TEXT)),  # MSH-10
        draw(st.sampled_from(["P", "T", ""])),
        draw(st.sampled_from(["2.6", "2.4", "3.0", "", "2"])),
        "", "", "NE", "AL", "",
        draw(st.sampled_from(["UNICODE UTF-8", "8859/1", "", "EBCDIC", "ASCII"])),  # MSH-18
    ]  # fmt: skip
    if readable_header:
        msh_fields[:4] = ["M^0011223344556677^EUI-64", "", "", ""]
        msh_fields[5:10] = ["", "ORU^R01^ORU_R01", "C1", "P", "2.6"]
    delimiters = (
        "^~\\&" if readable_header else draw(st.sampled_from(["^~\\&", "^~\\&", "^~\\", "", "#$%!", "|||"]))
    )
    segments = ["MSH|" + delimiters + "|" + "|".join(msh_fields)]
    segments.append(f"PID|||{draw(TEXT)}^^^{draw(TEXT)}^MR||{draw(TEXT)}^{draw(TEXT)}")
    segments.append(f"PV1||O|{draw(TEXT)}^^{draw(TEXT)}")
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        segments.append(f"OBR|{n + 1}|{draw(TEXT)}|{draw(TEXT)}|{draw(TEXT)}|||{draw(dtm())}")
        for i in range(draw(st.integers(min_value=0, max_value=8))):
            fields = [
                draw(st.one_of(st.just(str(i + 1)), TEXT)),
                draw(st.sampled_from(["NM", "SN", "ST", "CWE", "NA", "", "nm", "TX"])),
                draw(st.one_of(st.sampled_from(CODES), TEXT)),
                draw(st.one_of(st.just(f"1.0.{i}"), TEXT)),
                draw(NUMBERS) if draw(st.booleans()) else f"={draw(NUMBERS)}^{draw(NUMBERS)}",
                draw(st.one_of(st.sampled_from(UNITS), TEXT)),
                "", "", "", "",
                draw(st.sampled_from(["R", "F", "X", "D", "W", "", "?"])),
                "", "",
                draw(dtm()),
                "", "", "",
                draw(st.one_of(st.just("0011223344556677^EUI-64"), TEXT)),
            ]  # fmt: skip
            segments.append("OBX|" + "|".join(fields))
    for _ in range(0 if readable_header else draw(st.integers(min_value=0, max_value=2))):
        segments.insert(draw(st.integers(min_value=1, max_value=len(segments))), draw(TEXT))
    if readable_header:  # every segment one line, so that the message is read to its end
        segments = [segment.replace("\r", " ").replace("\n", " ") for segment in segments]
    sep = draw(st.sampled_from(["\r", "\r\n", "\n", "\r\r"]))
    return sep.join(segments)


# --------------------------------------------------------------------------- helpers


def parse_only_raises_its_own_error(data: str | bytes) -> None:
    try:
        parse_oru(data)
    except HL7ParseError:
        pass


def answers(data: bytes, limits: FeedLimits | None = None) -> None:
    """prepare() never raises, and the ACK the listener would send is one well-formed frame: MSA-1 is
    AA, AE or AR, MSA-2 is the control id that could be read, an AE/AR names its error."""
    from ketaclinic.monitoring.feed import FeedStore

    p = prepare(Inbound(data, received_at=RECEIVED), limits or FeedLimits())
    store = FeedStore(organization=None, limits=limits, review_queue_max=100)  # type: ignore[arg-type]
    outcome = store._outcome(p)
    frame = outcome.ack
    assert frame.startswith(SB) and frame.endswith(EB + CR) and frame.count(SB) == 1 and frame.count(EB) == 1
    codec = python_codec(p.header.charset if p.header else "")
    ack = hl7.parse(frame[1:-2].decode(codec))  # written in the sender's character set (MSH-18)
    msa = ack.segment("MSA")
    assert str(msa[1]) in {"AA", "AE", "AR"} and str(msa[1]) == outcome.code.value
    if p.error is not None:
        err = ack.segment("ERR")
        if len(err) > 3:  # v2.5+: ERR-3 is the table 0357 code
            code = str(err[3]).split("^")[0]
        else:  # before v2.5 the ACK has only ERR-1, ``segment^sequence^field^code&text&table`` (ack.py)
            code = str(err[1]).split("~")[0].split("^")[3].split("&")[0]
        assert str(msa[1]) != "AA" and code.isdigit()
    control_id = p.header.control_id if p.header else ""
    if control_id.isprintable() and not set(control_id) & set("|^~\\&") and control_id.strip() == control_id:
        try:
            control_id.encode(codec)
        except UnicodeEncodeError:
            return  # a control id that the sender's own character set cannot hold
        assert str(msa[2]) == control_id  # echoed byte for byte: the monitor matches its ACK by it


# --------------------------------------------------------------------------- properties


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    parse_only_raises_its_own_error(data)
    answers(data)


@FAST
@given(st.binary(max_size=512).map(lambda tail: b"MSH|^~\\&|" + tail))
def test_bytes_after_a_valid_start(data: bytes) -> None:
    parse_only_raises_its_own_error(data)
    answers(data)


@FAST
@given(hostile_messages())
def test_structured_hostile_messages(text: str) -> None:
    try:
        # No value that is not a number gets through: 1E+400 mmHg is a finite decimal but an infinite float.
        assert all(math.isfinite(o.value) for o in parse_oru(text).observations)
    except HL7ParseError:
        pass
    parse_only_raises_its_own_error(text.encode("utf-8", "surrogatepass"))
    answers(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None)
@given(hostile_messages())
def test_tight_limits_answer_too(text: str) -> None:
    """With limits smaller than the message, the answer is an AE naming the limit, never a crash."""
    answers(
        text.encode("utf-8", "surrogatepass"), FeedLimits(max_message_bytes=64, max_obx=1, max_readings=1)
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=501, max_value=3000))
def test_thousands_of_obx_are_refused_before_reading(count: int) -> None:
    obx = "OBX|{}|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.1|97|262688^MDC_DIM_PERCENT^MDC|||||R"
    text = "\r".join(
        ["MSH|^~\\&|M^0011223344556677^EUI-64||||20261207150000||ORU^R01|C9|P|2.6"]
        + [obx.format(i) for i in range(count)]
    )
    p = prepare(Inbound(text.encode(), received_at=RECEIVED))
    assert p.refused and p.parsed is None and p.error is not None and p.error.ack_code.value == "AE"
    assert f"{count} OBX segments" in p.error.message and p.header is not None and p.header.control_id == "C9"


OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m))
)


@FAST
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), OFFSETS, st.integers(0, 1440)
)
def test_the_time_window_never_overflows(naive: datetime, offset: timezone, skew: int) -> None:
    """Any time in any offset — year 1 at +23:59 cannot even be converted to UTC — is judged, not crashed
    on; a time is refused exactly when it is before the earliest or beyond receipt plus the skew."""
    moment = naive.replace(tzinfo=offset)
    limits = FeedLimits(clock_skew=timedelta(minutes=skew))
    error = time_problem(
        moment, location=time_location(_source(), 1), received_at=RECEIVED, limits=limits, header=None
    )
    if 1999 <= moment.year <= RECEIVED.year + 1:
        expected = moment < limits.earliest or moment > RECEIVED + limits.clock_skew
        assert (error is not None) == expected
    else:
        assert error is not None


def _source() -> Any:
    from ketaclinic.interop.hl7.model import TimeSource

    return TimeSource.OBX


@FAST
@given(hostile_messages(readable_header=True))
def test_the_feed_time_check_never_raises(text: str) -> None:
    """The feed's check of every time in a parsed message (with a site zone for times without offset)."""
    from zoneinfo import ZoneInfo

    from ketaclinic.monitoring.feed import FeedStore

    p = prepare(Inbound(text.encode("utf-8", "surrogatepass"), received_at=RECEIVED))
    assume(p.parsed is not None)  # nearly always: the header is readable
    store = FeedStore(organization=None, review_queue_max=100)  # type: ignore[arg-type]
    for zone in (ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago"), UTC):
        error = store._time_error(p, p.parsed, zone)  # type: ignore[arg-type]
        assert error is None or error.ack_code.value == "AE"


@pytest.mark.parametrize("year", ["0001", "0000", "9999"])
def test_year_0001_and_9999_are_answered_ae(year: str) -> None:
    """Issue 15 H2: a year-0001 or year-9999 observation time was stored and broke every page showing it."""
    from ketaclinic.monitoring.feed import FeedStore

    text = (
        "MSH|^~\\&|M^0011223344556677^EUI-64||||20261207150000+0000||ORU^R01|T1|P|2.6\rPID|||\r"
        f"OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.1|97|262688^MDC_DIM_PERCENT^MDC|||||R|||{year}0101000000+0500"
    )
    p = prepare(Inbound(text.encode(), received_at=RECEIVED))
    store = FeedStore(organization=None, review_queue_max=100)  # type: ignore[arg-type]
    assert p.parsed is not None
    error = store._time_error(p, p.parsed, UTC)
    if year == "0000":  # not a date at all: the reader skips the time with an issue and uses MSH-7
        assert error is None and any("OBX-14" in i for i in p.issues)
    else:
        assert error is not None and "OBX-14 of OBX 1" in error.message and error.fields.keys() == {"OBX-14"}
