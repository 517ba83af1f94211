"""Original-mode ACKs: compared with IPF's PCD-01 response fixture and read back with python-hl7."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import hl7
import pytest
from tests.samples import HL7_SAMPLES

from ketaclinic.interop.hl7 import (
    AckCode,
    AckError,
    ErrorLocation,
    HierarchicDesignator,
    HL7ErrorCode,
    HL7ParseError,
    ack_for_error,
    ack_for_message,
    build_ack,
    default_ack_code,
    new_control_id,
    parse_oru,
)
from ketaclinic.interop.hl7.er7 import Segment, parse_segment, split_segments
from ketaclinic.interop.hl7.errors import Severity
from ketaclinic.interop.hl7.parse import split_message

SAMPLES = HL7_SAMPLES
NOW = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
ORU = (
    "MSH|^~\\&|MON^0011223344556677^EUI-64|WARD||KETA|20260301101500+0100||ORU^R01^ORU_R01|C42|P|2.6"
    "|||NE|AL\rPID|||1\rOBR|1\rOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||70|/min^/min^UCUM|||||R"
)


def segments(text: str) -> dict[str, Segment]:
    _, segs, _ = split_message(text)
    return {s.name: s for s in segs}


def err_segments(text: str) -> list[Segment]:
    _, segs, _ = split_message(text)
    return [s for s in segs if s.name == "ERR"]


def test_aa_matches_ipf_fixture() -> None:
    request = parse_oru((SAMPLES / "pcd01_nibp.hl7").read_bytes())
    ours = segments(
        build_ack(
            request.header,
            control_id="AMSGID1234",
            now=NOW,
            application=HierarchicDesignator("Stepstone"),
        )
    )
    raw = (SAMPLES / "pcd01_ack_for_nibp.hl7").read_text()
    theirs = {s.name: s for s in (parse_segment(r, ours["MSH"].encoding) for r in split_segments(raw))}
    assert list(ours) == list(theirs) == ["MSH", "MSA"]
    # Same: delimiters, sender, empty facility, message type, processing id, version, MSH-15/16.
    for n in (1, 2, 3, 4, 9, 11, 12, 15, 16):
        assert ours["MSH"].field(n) == theirs["MSH"].field(n), f"MSH-{n}"
    # MSH-5 is the request's MSH-3: same device, the fixture writes its id type "EUI64".
    assert ours["MSH"].field(5) == "AcmeInc^ACDE48234567ABCD^EUI-64"
    assert theirs["MSH"].field(5).replace("EUI64", "EUI-64") == ours["MSH"].field(5)
    assert ours["MSH"].field(10) == theirs["MSH"].field(10) == "AMSGID1234"
    # MSH-21: ours echoes the request's profile (its OID differs from the fixture's legacy one).
    assert ours["MSH"].component(21, 1) == theirs["MSH"].component(21, 1) == "IHE PCD ORU-R01 2006"
    for n in (1, 2, 3):
        assert ours["MSA"].field(n) == theirs["MSA"].field(n), f"MSA-{n}"
    assert ours["MSH"].field(7) == "20260301120005+0000"  # the fixture's time differs: not compared


def test_aa_read_back_with_python_hl7() -> None:
    msg = parse_oru(ORU)
    text = ack_for_message(msg, control_id="K1", now=NOW)
    parsed = hl7.parse(text)
    assert str(parsed.segment("MSH")[9]) == "ACK^R01^ACK"
    assert str(parsed.segment("MSH")[3]) == "KETACLINIC"
    assert str(parsed.segment("MSH")[5]) == "MON^0011223344556677^EUI-64"
    assert str(parsed.segment("MSH")[6]) == "WARD"
    assert str(parsed.segment("MSA")[1]) == "AA"
    assert str(parsed.segment("MSA")[2]) == "C42"
    assert not text.endswith("\r")
    with pytest.raises(KeyError):
        parsed.segment("ERR")


def test_ae_with_err_segment() -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(ORU.replace("ORU^R01^ORU_R01|C42", "|C42"))  # MSH-9 missing
    exc = info.value
    text = ack_for_error(exc, control_id="K2", now=NOW)
    segs = segments(text)
    assert segs["MSA"].field(1) == "AE"  # 101 is a content error → AE
    assert segs["MSA"].field(2) == "C42"
    assert segs["MSA"].field(3) == ""  # v2.6: no MSA-3
    (err,) = err_segments(text)
    assert err.field(1) == ""  # v2.6: no ERR-1
    assert err.field(2) == "MSH^1^9"
    assert err.field(3) == "101^Required field missing^HL70357"
    assert err.field(4) == "E"
    assert err.text(7) == "MSH-9: message type is missing"
    assert err.text(8) == "The message header is incomplete: message type is missing."


def test_ar_for_unsupported_type_in_v24_fills_legacy_fields() -> None:
    adt = "MSH|^~\\&|HIS|H|||20260301||ADT^A01|Z9|P|2.4\rPID|||1"
    with pytest.raises(HL7ParseError) as info:
        parse_oru(adt)
    text = ack_for_error(info.value, control_id="K3", now=NOW)
    segs = segments(text)
    assert segs["MSH"].field(9) == "ACK^A01^ACK"
    assert segs["MSH"].field(12) == "2.4"
    assert segs["MSA"].field(1) == "AR"
    assert segs["MSA"].text(3).startswith("Only observation results (ORU^R01)")  # unescaped \S\
    assert "\\S\\" in segs["MSA"].field(3)  # escaped on the wire
    (err,) = err_segments(text)
    assert err.field(1) == "MSH^1^9^200&Unsupported message type&HL70357"
    # v2.4 ERR has ERR-1 only: ERR-2..12 came with v2.5 (issue 16 point 6; test_hl7_ack_versions.py).
    assert len(err.fields) == 2  # "ERR" and ERR-1, nothing after
    assert str(hl7.parse(text).segment("MSA")[1]) == "AR"


def test_ack_for_garbage_has_no_receiver_and_empty_msa2() -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(b"\x00\x01garbage")
    text = ack_for_error(info.value, control_id="K4", now=NOW)
    segs = segments(text)
    assert segs["MSH"].field(5) == ""
    assert segs["MSH"].field(12) == "2.6"
    assert (segs["MSA"].field(1), segs["MSA"].field(2)) == ("AE", "")
    assert err_segments(text)[0].field(3).startswith("100^Segment sequence error")


def test_several_errors_and_escaping() -> None:
    header = parse_oru(ORU).header
    errors = [
        AckError(HL7ErrorCode.DATA_TYPE_ERROR, "OBX-5 'a|b' is not a number", ErrorLocation("OBX", 2, 5)),
        AckError(
            HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
            "database busy",
            severity=Severity.WARNING,
        ),
    ]
    text = build_ack(header, code=AckCode.ERROR, errors=errors, control_id="K5", now=NOW)
    first, second = err_segments(text)
    assert first.field(2) == "OBX^2^5"
    assert first.field(8) == "OBX-5 'a\\F\\b' is not a number"
    assert first.text(8) == "OBX-5 'a|b' is not a number"
    assert second.field(2) == "" and second.field(4) == "W"
    assert len(hl7.parse(text).segments("ERR")) == 2


def test_build_ack_checks_code_against_errors() -> None:
    header = parse_oru(ORU).header
    err = AckError(HL7ErrorCode.DATA_TYPE_ERROR, "x")
    with pytest.raises(ValueError, match="no ERR"):
        build_ack(header, errors=[err], control_id="K", now=NOW)
    with pytest.raises(ValueError, match="needs at least one"):
        build_ack(header, code=AckCode.REJECT, control_id="K", now=NOW)


def test_time_without_offset_and_non_utc_offset() -> None:
    header = parse_oru(ORU).header
    naive = segments(build_ack(header, control_id="K", now=datetime(2026, 3, 1, 8, 30)))
    assert naive["MSH"].field(7) == "20260301083000"
    india = timezone(timedelta(hours=5, minutes=30))
    aware = segments(build_ack(header, control_id="K", now=datetime(2026, 3, 1, 8, 30, tzinfo=india)))
    assert aware["MSH"].field(7) == "20260301083000+0530"


def test_default_ack_codes() -> None:
    assert default_ack_code(HL7ErrorCode.MESSAGE_ACCEPTED) is AckCode.ACCEPT
    assert default_ack_code(HL7ErrorCode.SEGMENT_SEQUENCE_ERROR) is AckCode.ERROR
    assert default_ack_code(HL7ErrorCode.UNSUPPORTED_VERSION_ID) is AckCode.REJECT
    assert default_ack_code(HL7ErrorCode.APPLICATION_INTERNAL_ERROR) is AckCode.REJECT


def test_new_control_id_is_20_hex_and_unique() -> None:
    ids = {new_control_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 20 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.hl7")), ids=lambda p: p.name)
def test_build_aa_is_build_ack_from_a_template(path: Path) -> None:
    """The listener's cached AA (ack.build_aa) is character for character what build_ack writes."""
    from ketaclinic.interop.hl7.ack import build_aa

    try:
        header = parse_oru(path.read_bytes()).header
    except HL7ParseError as exc:
        if exc.header is None:
            pytest.skip("no header")
        header = exc.header
    from dataclasses import replace

    from ketaclinic.interop.hl7.model import MessageType

    bare = replace(
        header, version="", message_type=MessageType("ORU"), profiles=(), control_id="", processing_id=""
    )
    est = timezone(timedelta(hours=-5))
    for h in (header, bare):
        for now in (datetime(2026, 3, 1, 9, 40, 5, tzinfo=UTC), datetime(2026, 3, 1, 9, 40, 5, tzinfo=est)):
            for cid in ("0123456789abcdef0123", "A|B^C"):
                assert build_aa(h, control_id=cid, now=now) == build_ack(h, control_id=cid, now=now)
