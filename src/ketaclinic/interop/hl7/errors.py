"""Errors raised while reading an HL7 v2 message, with what the ACK needs to explain them.

Every error carries an HL7 error code from table 0357 (for ERR-3), where in the message it was found
(for ERR-2), a message for the person reading the monitor log (for ERR-8), and the header fields that
could still be read so that the listener can answer with an AE/AR ACK naming the right control id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ketaclinic.interop.hl7.model import MessageHeader


class HL7ErrorCode(IntEnum):
    """HL7 table 0357 "Message error condition codes" (terminology.hl7.org/CodeSystem/v2-0357;
    codes added in v2.3.1). Used in ERR-3. Not in interop.md, which only names the table (§3.4 cites
    MSA codes); the codes are the HL7 standard's, not clinical numbers."""

    MESSAGE_ACCEPTED = 0
    SEGMENT_SEQUENCE_ERROR = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT_CODE = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION_ID = 203
    UNKNOWN_KEY_IDENTIFIER = 204
    DUPLICATE_KEY_IDENTIFIER = 205
    APPLICATION_RECORD_LOCKED = 206
    APPLICATION_INTERNAL_ERROR = 207

    @property
    def display(self) -> str:
        return ERROR_CODE_DISPLAY[self]


ERROR_CODE_DISPLAY: Final[Mapping[HL7ErrorCode, str]] = {
    HL7ErrorCode.MESSAGE_ACCEPTED: "Message accepted",
    HL7ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    HL7ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    HL7ErrorCode.DATA_TYPE_ERROR: "Data type error",
    HL7ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    HL7ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    HL7ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    HL7ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    HL7ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    HL7ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    HL7ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    HL7ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    HL7ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


class AckCode(StrEnum):
    """MSA-1 in original acknowledgement mode (interop.md §3.4)."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


class Severity(StrEnum):
    """ERR-4, HL7 table 0516 (E error, W warning, I information)."""

    ERROR = "E"
    WARNING = "W"
    INFORMATION = "I"


# Original mode: AR when message type, event, processing id or version are not acceptable, or when the
# receiver fails for reasons unrelated to the content (system down, internal error); AE for errors in
# the content (HL7 v2 ch. 2 acknowledgment rules; HL7 v3 AcknowledgementType definitions of AE/AR).
_REJECT_CODES: Final[frozenset[HL7ErrorCode]] = frozenset(
    {
        HL7ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        HL7ErrorCode.UNSUPPORTED_EVENT_CODE,
        HL7ErrorCode.UNSUPPORTED_PROCESSING_ID,
        HL7ErrorCode.UNSUPPORTED_VERSION_ID,
        HL7ErrorCode.APPLICATION_RECORD_LOCKED,
        HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
    }
)


def default_ack_code(code: HL7ErrorCode) -> AckCode:
    """The MSA-1 code that goes with an error code: AR for reject reasons, AE otherwise."""
    if code is HL7ErrorCode.MESSAGE_ACCEPTED:
        return AckCode.ACCEPT
    return AckCode.REJECT if code in _REJECT_CODES else AckCode.ERROR


@dataclass(frozen=True)
class ErrorLocation:
    """ERR-2 (ERL): segment id, its sequence among segments of that id (1-based), field position."""

    segment: str
    sequence: int = 1
    field: int | None = None

    def __str__(self) -> str:
        return f"{self.segment}-{self.field}" if self.field is not None else self.segment


class HL7ParseError(Exception):
    """The message cannot be used. ``message`` is written for whoever reads the monitor log.

    ``fields`` names every bad field at once (e.g. ``{"MSH-9": "missing", "MSH-10": "missing"}``);
    ``header`` is whatever of MSH could be read, so the ACK can name the sender and control id.
    ``ack_code`` overrides the MSA-1 code the error code implies (:func:`default_ack_code`): a message over
    a size limit is answered AE (do not send it again as it is) although table 0357 has no code for it
    but 207.
    """

    def __init__(
        self,
        code: HL7ErrorCode,
        message: str,
        *,
        location: ErrorLocation | None = None,
        fields: Mapping[str, str] | None = None,
        header: MessageHeader | None = None,
        ack_code: AckCode | None = None,
    ) -> None:
        super().__init__(message)
        self._ack_code = ack_code
        self.code: HL7ErrorCode = code
        self.message: str = message
        self.location: ErrorLocation | None = location
        self.fields: Mapping[str, str] = dict(fields or {})
        self.header: MessageHeader | None = header

    @property
    def ack_code(self) -> AckCode:
        return self._ack_code if self._ack_code is not None else default_ack_code(self.code)

    def __str__(self) -> str:
        return f"{self.message} (HL7 error {int(self.code)} {self.code.display})"
