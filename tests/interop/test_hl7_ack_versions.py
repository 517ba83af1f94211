"""ACKs in the request's own HL7 version, checked by a third-party parser in strict mode (issue 16 point 6).

hl7apy (crs4/hl7apy, interop.md §4.2) validates a message against the HL7 structures of the version in its
MSH-12: in v2.3.1 and v2.4 the ACK is ``MSH MSA [ERR]`` and ERR has only ERR-1 (error code and location,
repeating); v2.5 added ERR-2..12 and made ERR repeat. An ACK to a v2.4 message that carries ERR-2..8 is
rejected by the strict parser ("Cannot instantiate an unknown Element"); these tests parse every kind of
ACK we send (AA, AA with a warning, AE, AR) for each version a monitor may send.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import OperationNotAllowed
from hl7apy.parser import parse_message

from ketaclinic.interop.hl7 import (
    AckCode,
    AckError,
    ErrorLocation,
    HL7ErrorCode,
    HL7ParseError,
    Severity,
    ack_for_error,
    build_ack,
    parse_oru,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VERSIONS = ("2.3.1", "2.4", "2.5", "2.6")
WARNING = AckError(
    HL7ErrorCode.MESSAGE_ACCEPTED,
    "OBX-5 of OBX 2 (MDC_PRESS_BLD_NONINV_DIA): DBP 400 mmHg is outside the plausible range 20–200 mmHg",
    ErrorLocation("OBX", 2, 5),
    Severity.WARNING,
)
ERRORS = (
    AckError(HL7ErrorCode.DATA_TYPE_ERROR, "OBX-14 'x' is not a time", ErrorLocation("OBX", 1, 14)),
    AckError(HL7ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10 is missing", ErrorLocation("MSH", 1, 10)),
)


def oru(version: str) -> str:
    return "\r".join(
        (
            f"MSH|^~\\&|MON^0123456789ABCDEF^EUI-64||||20260301115900||ORU^R01^ORU_R01|C{version}|P|{version}"
            "|||NE|AL",
            "PID|||M1^^^^MR",
            "OBR|1|||182777000^monitoring of patient^SCT|||20260301115900",
            "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|121|266016^MDC_DIM_MMHG^MDC|||||R",
            "OBX|2|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.0.1.2|400|266016^MDC_DIM_MMHG^MDC|||||R",
        )
    )


def strict(text: str) -> object:
    """hl7apy's strict parse and validation; raises on any element the version does not have."""
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
    assert message.validate() is True
    return message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "code,errors",
    [
        (AckCode.ACCEPT, ()),
        (AckCode.ACCEPT, (WARNING,)),
        (AckCode.ERROR, ERRORS),
        (AckCode.REJECT, ERRORS[:1]),
    ],
    ids=["AA", "AA-warning", "AE-two-errors", "AR"],
)
def test_every_ack_passes_hl7apy_strict_in_the_request_version(
    version: str, code: AckCode, errors: tuple[AckError, ...]
) -> None:
    header = parse_oru(oru(version)).header
    text = build_ack(header, code=code, errors=errors, control_id="K1", now=NOW)
    message = strict(text)
    assert message.msh.msh_12.to_er7() == version  # type: ignore[attr-defined]
    assert message.msa.msa_1.to_er7() == code.value  # type: ignore[attr-defined]
    assert message.msa.msa_2.to_er7() == f"C{version}"  # type: ignore[attr-defined]
    err_lines = [s for s in text.split("\r") if s.startswith("ERR")]
    if version in ("2.3.1", "2.4"):
        # One ERR with ERR-1 only, one repetition per problem; the first problem's text in MSA-3.
        assert len(err_lines) == (1 if errors else 0)
        if errors:
            (err,) = err_lines
            assert err.count("|") == 1
            assert err.split("|")[1].split("~")[0] == (
                f"{errors[0].location.segment}^{errors[0].location.sequence}^{errors[0].location.field}"  # type: ignore[union-attr]
                f"^{int(errors[0].code)}&{errors[0].code.display}&HL70357"
            )
            assert len(err.split("|")[1].split("~")) == len(errors)
            assert text.split("\r")[1].split("|")[3].startswith(errors[0].message[:20])
    else:
        # One ERR per problem with ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 text; ERR-1 empty.
        assert len(err_lines) == len(errors)
        for line, error in zip(err_lines, errors, strict=True):
            fields = line.split("|")
            assert fields[1] == ""
            assert fields[4] == error.severity.value
            assert fields[3].startswith(f"{int(error.code)}^")


@pytest.mark.parametrize("version", VERSIONS)
def test_acks_for_unusable_messages_pass_strict(version: str) -> None:
    adt = f"MSH|^~\\&|HIS|H|||20260301||ADT^A01|Z9|P|{version}\rPID|||1"
    with pytest.raises(HL7ParseError) as info:
        parse_oru(adt)
    text = ack_for_error(info.value, control_id="K3", now=NOW)
    strict(text)
    assert "|AR|Z9" in text


def test_a_v24_ack_with_v25_err_fields_is_what_strict_refuses() -> None:
    """The check has teeth: the shape sent before this fix (ERR-1 and ERR-2..8 in a 2.4 ACK) is refused."""
    header = parse_oru(oru("2.4")).header
    text = build_ack(header, code=AckCode.ERROR, errors=ERRORS[:1], control_id="K1", now=NOW)
    msh, msa, err = text.split("\r")
    old = f"{err}|MSH^1^10|101^Required field missing^HL70357|E||||MSH-10 is missing"
    with pytest.raises(OperationNotAllowed, match=r"unknown Element"):
        strict("\r".join((msh, msa, old)))
