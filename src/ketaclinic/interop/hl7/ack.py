"""Original-mode acknowledgements (ACK^R01^ACK) for messages from monitors (interop.md §3.4).

``MSH`` with sender and receiver swapped, ``MSA|AA|<MSH-10 of the request>``; for AE/AR one ``ERR``
segment per problem: ERR-2 where, ERR-3 the HL7 table 0357 code, ERR-4 severity, ERR-8 a message for
whoever reads the monitor's log. An AA may carry warnings (ERR-4 ``W``): the message was stored, but a
value in it was implausible (bounds.implausible_value; the warning names the OBX-5).

The ACK is written in the request's own version (issue 16 point 6). Before v2.5 (Philips Efficia sends
2.4, §3.2; 2.3.1 is still seen) the ACK structure is ``MSH MSA [ERR]`` and ERR has one field, ERR-1
"error code and location" (ELD: ``segment^sequence^field^code&text&HL70357``, repeating, one repetition
per problem); ERR-2..12 and repeating ERR segments were added in v2.5. So a 2.3.1/2.4 ACK has exactly one
ERR with only ERR-1, and the first problem's text in MSA-3; a 2.5+ ACK has one ERR per problem with
ERR-2..8 and ERR-1 left empty (deprecated since 2.5). hl7apy's strict parser accepts both
(tests/interop/test_hl7_ack_versions.py), and rejected the earlier 2.4 ACKs that carried ERR-2..8.

The shape follows IPF's PCD-01 response fixture (reference/hl7/pcd01_ack_for_nibp.hl7): MSH-15/16
``NE``/``AL``, MSH-11/12 and MSH-21 echoed from the request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

from ketaclinic.interop.hl7.er7 import DEFAULT_ENCODING, escape, format_dtm
from ketaclinic.interop.hl7.errors import (
    AckCode,
    ErrorLocation,
    HL7ErrorCode,
    HL7ParseError,
    Severity,
)
from ketaclinic.interop.hl7.model import HierarchicDesignator, MessageHeader, MessageType, ParsedMessage

DEFAULT_APPLICATION: Final = HierarchicDesignator("KETACLINIC")
NO_FACILITY: Final = HierarchicDesignator()
DEFAULT_VERSION: Final = "2.6"  # PCD-01 is HL7 v2.6 (interop.md §3.1)
ERROR_TABLE: Final = "HL70357"


@dataclass(frozen=True)
class AckError:
    """One ERR segment."""

    code: HL7ErrorCode
    message: str
    location: ErrorLocation | None = None
    severity: Severity = Severity.ERROR
    diagnostic: str = ""  # ERR-7, technical detail


def errors_from(exc: HL7ParseError) -> list[AckError]:
    """ERR segments for a parse error: the error itself, with every bad field in ERR-7."""
    detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    return [AckError(exc.code, exc.message, exc.location, Severity.ERROR, detail)]


def new_control_id() -> str:
    """A fresh MSH-10 for an ACK: 20 hex characters (fits the v2.5 length of 20)."""
    return uuid.uuid4().hex[:20]


def _hd(value: HierarchicDesignator) -> str:
    e = DEFAULT_ENCODING
    parts = [escape(p, e) for p in (value.namespace, value.universal_id, value.universal_id_type)]
    return e.component.join(parts).rstrip(e.component)


def _legacy(version: str) -> bool:
    """True for versions before 2.5, which had ERR-1 and MSA-3 instead of ERR-2..8."""
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) < (2, 5)


def _erl(error: AckError) -> str:
    e = DEFAULT_ENCODING
    loc = error.location
    if loc is None:
        return ""
    return e.component.join((loc.segment, str(loc.sequence), str(loc.field or ""))).rstrip(e.component)


def _legacy_err(errors: Sequence[AckError]) -> str:
    """The one ERR of a v2.3.1/v2.4 ACK: ERR-1 (ELD) repeated once per problem, nothing else."""
    e = DEFAULT_ENCODING
    sub = e.subcomponent
    reps = []
    for error in errors:
        code = f"{int(error.code)}{sub}{escape(error.code.display, e)}{sub}{ERROR_TABLE}"
        where = [*_erl(error).split(e.component), "", "", ""][:3]
        reps.append(e.component.join((*where, code)))
    return e.field.join(("ERR", e.repetition.join(reps)))


def _err(error: AckError) -> str:
    """One ERR of a v2.5+ ACK: ERR-2 location, ERR-3 code, ERR-4 severity, ERR-7 detail, ERR-8 text."""
    e = DEFAULT_ENCODING
    code = f"{int(error.code)}{e.component}{escape(error.code.display, e)}{e.component}{ERROR_TABLE}"
    fields = [
        "ERR",
        "",
        _erl(error),
        code,
        error.severity.value,
        "",
        "",
        escape(error.diagnostic, e),
        escape(error.message, e),
    ]
    return e.field.join(fields).rstrip(e.field)


def build_ack(
    request: MessageHeader | None,
    *,
    code: AckCode = AckCode.ACCEPT,
    errors: Sequence[AckError] = (),
    control_id: str,
    now: datetime,
    application: HierarchicDesignator = DEFAULT_APPLICATION,
    facility: HierarchicDesignator = NO_FACILITY,
    accept_ack_type: str = "NE",
    application_ack_type: str = "AL",
) -> str:
    """The ACK text (segments joined by CR, no trailing CR; frame it with mllp.encode_frame).

    ``request`` may be None when not even MSH could be read: the ACK then has empty receiver and
    empty MSA-2. ``now`` is the ACK time (aware → written with its offset).
    """
    if code is AckCode.ACCEPT and any(err.severity is Severity.ERROR for err in errors):
        raise ValueError("an AA acknowledgement carries no ERR segments of severity E (only warnings)")
    if code is not AckCode.ACCEPT and not errors:
        raise ValueError(f"an {code.value} acknowledgement needs at least one AckError")
    e = DEFAULT_ENCODING
    version = (request.version if request else "") or DEFAULT_VERSION
    trigger = (request.message_type.trigger if request else "") or "R01"
    profiles = request.profiles if request else ()
    msh = [
        "MSH",
        e.msh2,
        _hd(application),
        _hd(facility),
        _hd(request.sending_application) if request else "",
        _hd(request.sending_facility) if request else "",
        format_dtm(now),
        "",
        e.component.join(("ACK", escape(trigger, e), "ACK")),
        escape(control_id, e),
        escape((request.processing_id if request else "") or "P", e),
        escape(version, e),
        "",
        "",
        accept_ack_type,
        application_ack_type,
        "",
        "",
        "",
        "",
        e.repetition.join(e.component.join(escape(c, e) for c in p).rstrip(e.component) for p in profiles),
    ]
    legacy = _legacy(version)
    msa = ["MSA", code.value, escape(request.control_id if request else "", e)]
    if legacy and errors:
        msa.append(escape(errors[0].message, e))
    segments = [e.field.join(msh).rstrip(e.field), e.field.join(msa)]
    if legacy:
        segments += [_legacy_err(errors)] if errors else []
    else:
        segments += [_err(err) for err in errors]
    return "\r".join(segments)


@lru_cache(maxsize=4096)
def _aa_template(
    sending_application: HierarchicDesignator,
    sending_facility: HierarchicDesignator,
    processing_id: str,
    version: str,
    trigger: str,
    profiles: tuple[tuple[str, ...], ...],
) -> tuple[str, str, str]:
    """The MSH of an AA around its two varying parts (time, control id), built once per sender shape."""
    e = DEFAULT_ENCODING
    request = MessageHeader(
        encoding=e,
        sending_application=sending_application,
        sending_facility=sending_facility,
        receiving_application=NO_FACILITY,
        receiving_facility=NO_FACILITY,
        timestamp=None,
        message_type=MessageType("ORU", trigger),
        control_id="",
        processing_id=processing_id,
        version=version,
        accept_ack_type="",
        application_ack_type="",
        charset="",
        profiles=profiles,
    )
    # Cut by field position, not by searching for marker values: every value is escaped, so a field
    # separator only ever separates fields, whereas a sender's MSH-3 could equal any marker text (an
    # earlier version searched for the marker time and could be misled into a broken template).
    text = build_ack(request, control_id="0", now=_MARK_TIME, application=DEFAULT_APPLICATION)
    msh = text.split("\r", 1)[0].split("|")  # msh[n - 1] is MSH-n (MSH-1 is the separator itself)
    return "|".join(msh[:6]) + "|", "|" + "|".join(msh[7:9]) + "|", "|" + "|".join(msh[10:]) + "\rMSA|AA|"


_MARK_TIME: Final = datetime(1901, 1, 1, 1, 1, 1)


def build_aa(request: MessageHeader, *, control_id: str, now: datetime) -> str:
    """:func:`build_ack` for an AA with the default application: the same text, from a cached template
    (the listener acknowledges thousands of messages a second from the same few monitors)."""
    before, middle, after = _aa_template(
        request.sending_application,
        request.sending_facility,
        request.processing_id,
        request.version,
        request.message_type.trigger,
        request.profiles,
    )
    return f"{before}{_stamp(now)}{middle}{_escaped(control_id)}{after}{_escaped(request.control_id)}"


_PLAIN_TEXT: Final = re.compile(r"[^|^~\\&\x00-\x1f\x7f]*")
_STAMPS: dict[datetime, str] = {}


def _escaped(text: str) -> str:
    """:func:`escape` in the default encoding; the text itself when there is nothing to escape."""
    return text if _PLAIN_TEXT.fullmatch(text) else escape(text, DEFAULT_ENCODING)


def _stamp(now: datetime) -> str:
    """:func:`format_dtm` (seconds precision), remembered for the current second."""
    key = now.replace(microsecond=0)
    found = _STAMPS.get(key)
    if found is None:
        if len(_STAMPS) > 64:
            _STAMPS.clear()
        found = _STAMPS[key] = format_dtm(now)
    return found


def ack_for_message(
    msg: ParsedMessage,
    *,
    control_id: str,
    now: datetime,
    application: HierarchicDesignator = DEFAULT_APPLICATION,
) -> str:
    """AA for a parsed message (issues inside it are logged by the app, not returned to the device)."""
    return build_ack(msg.header, control_id=control_id, now=now, application=application)


def ack_for_error(
    exc: HL7ParseError,
    *,
    control_id: str,
    now: datetime,
    application: HierarchicDesignator = DEFAULT_APPLICATION,
) -> str:
    """AE or AR (by the error code, see errors.default_ack_code) with one ERR segment."""
    return build_ack(
        exc.header,
        code=exc.ack_code,
        errors=errors_from(exc),
        control_id=control_id,
        now=now,
        application=application,
    )
