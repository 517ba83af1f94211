"""HL7 v2 from bedside monitors (IHE PCD-01 ORU^R01): parse, acknowledge, frame, simulate.

Pure: no Django, no database, no sockets (``mllp`` has asyncio stream helpers that take a
reader/writer the caller opened). Reference: /work/shared/reference/interop.md §3–§4.

Typical listener loop (the app's)::

    async for payload in read_frames(reader, on_problem=log_problem):
        try:
            msg = parse_oru(payload)
        except HL7ParseError as exc:
            await write_frame(writer, ack_for_error(exc, control_id=new_control_id(), now=now()))
            continue
        ...  # store msg.observations if is_device_feed(msg), log msg.issues
        await write_frame(writer, ack_for_message(msg, control_id=new_control_id(), now=now()))
"""

from ketaclinic.interop.hl7.ack import (
    AckError,
    ack_for_error,
    ack_for_message,
    build_ack,
    errors_from,
    new_control_id,
)
from ketaclinic.interop.hl7.errors import (
    AckCode,
    ErrorLocation,
    HL7ErrorCode,
    HL7ParseError,
    Severity,
    default_ack_code,
)
from ketaclinic.interop.hl7.mdc import VitalKind
from ketaclinic.interop.hl7.mllp import (
    Frame,
    FrameDecoder,
    Junk,
    Oversized,
    encode_frame,
    read_events,
    read_frames,
    write_frame,
)
from ketaclinic.interop.hl7.model import (
    HierarchicDesignator,
    Issue,
    IssueKind,
    Location,
    MessageHeader,
    MessageType,
    ParsedMessage,
    PatientIdentifier,
    PersonName,
    TimeSource,
    VitalObservation,
    device_feed_evidence,
    is_device_feed,
)
from ketaclinic.interop.hl7.parse import decode_message, parse_oru, python_codec, read_header_only

__all__ = [
    "AckCode",
    "AckError",
    "ErrorLocation",
    "Frame",
    "FrameDecoder",
    "HL7ErrorCode",
    "HL7ParseError",
    "HierarchicDesignator",
    "Issue",
    "IssueKind",
    "Junk",
    "Location",
    "MessageHeader",
    "MessageType",
    "Oversized",
    "ParsedMessage",
    "PatientIdentifier",
    "PersonName",
    "Severity",
    "TimeSource",
    "VitalKind",
    "VitalObservation",
    "ack_for_error",
    "ack_for_message",
    "build_ack",
    "decode_message",
    "default_ack_code",
    "device_feed_evidence",
    "encode_frame",
    "errors_from",
    "is_device_feed",
    "new_control_id",
    "parse_oru",
    "python_codec",
    "read_events",
    "read_frames",
    "read_header_only",
    "write_frame",
]
