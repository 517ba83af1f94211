"""The pure first step of storing a monitor message: decode, parse, key. No Django, no I/O.

Kept apart from feed.py so that the listener can run it in worker processes (``--parse-workers``, off by
default: on two cores pickling cost more than it saved; since the plain parse path the parse is about
0.05 ms of a message's 0.3 ms, bench/README.md "## mllp"). Everything here pickles; the parse error travels as its
parts (``_Prep.error_state``) because exceptions with keyword-only arguments do not unpickle.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ketaclinic.interop.hl7.bounds import DEFAULT_LIMITS, FeedLimits, obx_problem, readings_problem, too_large
from ketaclinic.interop.hl7.errors import AckCode, HL7ErrorCode, HL7ParseError
from ketaclinic.interop.hl7.model import MessageHeader, ParsedMessage
from ketaclinic.interop.hl7.parse import decode_message, parse_oru, read_header_only

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Inbound:
    """One frame from a connection. ``oversized`` frames carry only their head (for the ACK).

    ``address`` is the sender's IP address as the listener saw it (compared with the monitor's allowed
    addresses, feed.py); None for a message handed over in-process (tests, imports), which skips that
    check but not the others. ``certificate`` names the client certificate of a TLS connection."""

    payload: bytes
    peer: str = ""
    received_at: datetime = field(default_factory=_now)
    oversized: bool = False
    limit: int = 0
    address: str | None = None
    certificate: str = ""


@dataclass
class Outcome:
    ack: bytes  # the framed ACK
    code: AckCode
    control_id: str
    stored: bool
    duplicate: bool
    readings: int


@dataclass
class Prepared:
    item: Inbound
    text: str = ""
    digest: str = ""
    sender: str = ""
    header: MessageHeader | None = None
    parsed: ParsedMessage | None = None
    error: HL7ParseError | None = None
    error_state: tuple[Any, ...] | None = None
    internal_error: str = ""
    # Over a limit of bounds.FeedLimits: answered AE, and nothing of it stored (issue 15 H4).
    refused: bool = False
    issues: list[str] = field(default_factory=list)
    duplicate: bool = False
    stored: bool = False
    readings: int = 0

    @property
    def control_id(self) -> str:
        return self.header.control_id if self.header else ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.sender, self.control_id, self.digest)

    def pack(self) -> None:
        """Replace the exception by its parts (to cross a process boundary)."""
        if self.error is not None:
            e = self.error
            ack = e.ack_code
            self.error_state = (e.code, e.message, e.location, dict(e.fields), e.header, ack)
            self.error = None

    def unpack(self) -> None:
        if self.error_state is not None:
            code, message, location, fields, header, ack = self.error_state
            self.error = HL7ParseError(
                code, message, location=location, fields=fields, header=header, ack_code=ack
            )
            self.error_state = None


def normalise(text: str) -> str:
    """CR line ends (interop.md §3.5: files and some senders use CRLF or LF), no trailing blanks."""
    return text.replace("\r\n", "\r").replace("\n", "\r").strip("\r \t\x00")


def sender_of(header: MessageHeader | None) -> str:
    if header is None:
        return ""
    app = str(header.sending_application)
    fac = str(header.sending_facility)
    return f"{app}@{fac}" if fac else app


def prepare(item: Inbound, limits: FeedLimits = DEFAULT_LIMITS) -> Prepared:
    """Pure part: decode, check the limits, parse, key. Runs before the transaction."""
    p = Prepared(item)
    if item.oversized:
        p.header = read_header_only(item.payload.split(b"\r", 1)[0])
        p.error = too_large(item.limit or limits.max_message_bytes, p.header)
        p.refused = True
        return p
    if len(item.payload) > limits.max_message_bytes:  # handed over in-process, not through the framing
        p.header = read_header_only(item.payload.split(b"\r", 1)[0])
        p.error = too_large(limits.max_message_bytes, p.header)
        p.refused = True
        return p
    text, decode_issues = decode_message(item.payload)
    p.text = normalise(text)
    p.issues = [i.message for i in decode_issues]
    p.digest = hashlib.sha256(p.text.encode("utf-8", "surrogatepass")).hexdigest()
    too_many = obx_problem(p.text, limits, None)
    if too_many is not None:
        # Counted before parsing: the header alone is read, for the ACK.
        p.header = too_many.header = read_header_only(p.text.split("\r", 1)[0])
        p.error, p.refused = too_many, True
        p.sender = sender_of(p.header)
        return p
    try:
        p.parsed = parse_oru(p.text)
        p.header = p.parsed.header
        p.issues += [i.message for i in p.parsed.issues]
        p.error = readings_problem(len(p.parsed.observations), limits, p.header)
        if p.error is not None:
            p.parsed, p.refused = None, True
    except HL7ParseError as exc:
        p.error = exc
        p.header = exc.header if exc.header is not None else read_header_only(p.text)
    except Exception as exc:  # a parser bug must not take the listener down
        log.exception("HL7 parser failed")
        p.error = HL7ParseError(
            HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
            "The message could not be read because of an error in this system; please send it again later.",
            fields={"parser": type(exc).__name__},
            header=read_header_only(p.text),
        )
        p.header = p.error.header
    p.sender = sender_of(p.header)
    return p


def prepare_many(items: Sequence[Inbound], limits: FeedLimits = DEFAULT_LIMITS) -> list[Prepared]:
    """:func:`prepare` for a worker process: the results with their errors in picklable form."""
    out = [prepare(item, limits) for item in items]
    for p in out:
        p.pack()
    return out
