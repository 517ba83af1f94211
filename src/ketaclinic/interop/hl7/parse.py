"""Read an ORU^R01 from a bedside monitor or gateway (IHE PCD-01) into a :class:`ParsedMessage`.

Tolerant by design (interop.md §3.5): CR, CRLF or LF terminators; MDC numeric, UCUM or Philips MDIL
hex codes; NIBP 15002x and cuff 15030x aliases; empty patient ids; times with or without offsets;
empty values and header OBXs. What is doubtful is reported in ``issues`` (never guessed, never an
error for the sender). Only a message we cannot use at all raises :class:`HL7ParseError`, which carries
the HL7 error code for the ACK.

Time of an observation: its OBX-14, else OBX-14 of its containing OBX (the OBX-4 parent, where PCD-01
puts the NIBP measurement time), else OBR-7, else MSH-7 (interop.md §1.5, §3.2).
"""

from __future__ import annotations

import re
from typing import Any, Final

from ketaclinic.interop.hl7.er7 import (
    DEFAULT_ENCODING,
    Encoding,
    Segment,
    parse_dtm,
    parse_segment,
    split_segments,
    unescape,
)
from ketaclinic.interop.hl7.errors import ErrorLocation, HL7ErrorCode, HL7ParseError
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
    VitalObservation,
)
from ketaclinic.interop.hl7.obx import NOT_FAST, Group, read_obx, read_obx_fast, read_obx_fields

_SEGMENT_NAME: Final = re.compile(r"^[A-Z][A-Z0-9]{2}$")
# MSH-18 values seen (interop.md §3.2: "UNICODE UTF-8", "8859/1") → Python codecs.
_CHARSETS: Final = {
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
}


# ---------------------------------------------------------------- decoding and header


def _peek_charset(data: bytes) -> str:
    first = (
        data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").lstrip(b"\xef\xbb\xbf\x0b \t\r").split(b"\r", 1)
    )
    head = first[0].decode("latin-1")
    if not head.startswith("MSH") or len(head) < 4:
        return ""
    fields = head.split(head[3])
    return fields[17].split("~")[0].strip().upper() if len(fields) > 17 else ""


def python_codec(charset: str) -> str:
    """Python codec for an MSH-18 value (UTF-8 when absent or unknown); use it to encode the ACK."""
    return _CHARSETS.get(charset.split("~")[0].strip().upper(), "utf-8")


def decode_message(data: bytes) -> tuple[str, tuple[Issue, ...]]:
    """Bytes → text using MSH-18 (UTF-8 when absent); undecodable bytes fall back to Latin-1, reported."""
    charset = _peek_charset(data)
    codec = python_codec(charset)
    try:
        return data.decode(codec), ()
    except UnicodeDecodeError:
        issue = Issue(
            IssueKind.CHARSET_FALLBACK,
            f"Message bytes are not valid {codec} (MSH-18 {charset or 'absent'}); read as Latin-1.",
            segment="MSH",
        )
        return data.decode("latin-1"), (issue,)


def _hd(seg: Segment, n: int) -> HierarchicDesignator:
    return HierarchicDesignator(seg.component(n, 1), seg.component(n, 2), seg.component(n, 3))


def _plain_components(fields: tuple[str, ...], n: int, repetition: int = 0) -> list[str]:
    """Components of field n (one repetition), stripped: :meth:`Segment.component` for a segment in the
    default encoding without escapes (then unescaping changes nothing)."""
    text = fields[n] if n < len(fields) else ""
    reps = text.split("~") if text else []
    return [c.strip() for c in reps[repetition].split("^")] if repetition < len(reps) else []


def _plain_hd(fields: tuple[str, ...], n: int) -> HierarchicDesignator:
    comps = [*_plain_components(fields, n), "", "", ""]
    return HierarchicDesignator(comps[0], comps[1], comps[2])


def _read_header_plain(msh: Segment) -> MessageHeader:
    """:func:`read_header` without the per-component helpers (same result; the common case)."""
    f = msh.fields

    def first(n: int) -> str:
        text = f[n] if n < len(f) else ""
        return text.split("~", 1)[0].strip()

    def comp(n: int, c: int) -> str:
        comps = _plain_components(f, n)
        return comps[c - 1] if c - 1 < len(comps) else ""

    reps = len(f[21].split("~")) if len(f) > 21 and f[21] else 0
    profiles = []
    for r in range(reps):
        profile = tuple([*_plain_components(f, 21, r), "", "", "", ""][:4])
        if any(profile):
            profiles.append(profile)
    return MessageHeader(
        encoding=msh.encoding,
        sending_application=_plain_hd(f, 3),
        sending_facility=_plain_hd(f, 4),
        receiving_application=_plain_hd(f, 5),
        receiving_facility=_plain_hd(f, 6),
        timestamp=parse_dtm(comp(7, 1)),
        message_type=MessageType(comp(9, 1), comp(9, 2), comp(9, 3)),
        control_id=first(10),
        processing_id=comp(11, 1),
        version=comp(12, 1),
        accept_ack_type=first(15),
        application_ack_type=first(16),
        charset=first(18),
        profiles=tuple(profiles),
    )


def read_header(msh: Segment) -> MessageHeader:
    """Everything MSH says; never raises (validation is separate so an ACK can still be built)."""
    if msh.encoding == DEFAULT_ENCODING and not any("\\" in f for f in msh.fields[3:]):
        return _read_header_plain(msh)
    return _read_header_full(msh)


def _read_header_full(msh: Segment) -> MessageHeader:
    profiles = tuple(
        tuple(msh.component(21, c, r) for c in range(1, 5)) for r in range(len(msh.repetitions(21)))
    )
    return MessageHeader(
        encoding=msh.encoding,
        sending_application=_hd(msh, 3),
        sending_facility=_hd(msh, 4),
        receiving_application=_hd(msh, 5),
        receiving_facility=_hd(msh, 6),
        timestamp=parse_dtm(msh.component(7, 1)),
        message_type=MessageType(msh.component(9, 1), msh.component(9, 2), msh.component(9, 3)),
        control_id=msh.text(10),
        processing_id=msh.component(11, 1),
        version=msh.component(12, 1),
        accept_ack_type=msh.text(15),
        application_ack_type=msh.text(16),
        charset=msh.text(18),
        profiles=tuple(p for p in profiles if any(p)),
    )


def _snippet(text: str) -> str:
    return repr(text[:24]) + ("…" if len(text) > 24 else "")


def split_message(data: str | bytes) -> tuple[MessageHeader, list[Segment], tuple[Issue, ...]]:
    """Decode, normalise and split; raise HL7ParseError when this is not an HL7 v2 message."""
    issues: tuple[Issue, ...] = ()
    if isinstance(data, bytes):
        text, issues = decode_message(data)
    else:
        text = data
    text = text.lstrip("\ufeff\x0b\x00 \t\r\n").rstrip("\x1c\x00 \t\r\n")
    raws = split_segments(text)
    if not raws or not raws[0].startswith("MSH") or len(raws[0]) < 8 or raws[0][3].isalnum():
        raise HL7ParseError(
            HL7ErrorCode.SEGMENT_SEQUENCE_ERROR,
            "This is not an HL7 v2 message: it does not start with an MSH header "
            f"(it starts with {_snippet(text)}).",
            location=ErrorLocation("MSH"),
            fields={"MSH": "missing or damaged"},
        )
    sep = raws[0][3]
    encoding = Encoding.from_msh(sep, raws[0][4:].split(sep, 1)[0])
    segments = [parse_segment(raw, encoding) for raw in raws]
    header = read_header(segments[0])
    bad = {
        f"segment {i + 1}": f"not a segment: starts with {_snippet(raw)}"
        for i, raw in enumerate(raws)
        if not _SEGMENT_NAME.match(raw.split(sep, 1)[0].strip())
    }
    if bad:
        raise HL7ParseError(
            HL7ErrorCode.SEGMENT_SEQUENCE_ERROR,
            f"The message is damaged: {'; '.join(f'{k} is {v}' for k, v in bad.items())}.",
            location=ErrorLocation(segments[0].name),
            fields=bad,
            header=header,
        )
    return header, segments, issues


def _validate_oru(header: MessageHeader) -> None:
    missing: dict[str, str] = {}
    if not header.message_type.code:
        missing["MSH-9"] = "message type is missing"
    if not header.control_id:
        missing["MSH-10"] = "message control id is missing"
    if missing:
        raise HL7ParseError(
            HL7ErrorCode.REQUIRED_FIELD_MISSING,
            "The message header is incomplete: " + "; ".join(missing.values()) + ".",
            location=ErrorLocation("MSH", 1, 9 if "MSH-9" in missing else 10),
            fields=missing,
            header=header,
        )
    mtype = header.message_type
    if mtype.code.upper() != "ORU":
        raise HL7ParseError(
            HL7ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"Only observation results (ORU^R01) are accepted here; this message is {mtype}.",
            location=ErrorLocation("MSH", 1, 9),
            fields={"MSH-9": f"{mtype} is not supported"},
            header=header,
        )
    if mtype.trigger.upper() != "R01":
        raise HL7ParseError(
            HL7ErrorCode.UNSUPPORTED_EVENT_CODE,
            f"Only the R01 event of ORU is accepted; this message is {mtype}.",
            location=ErrorLocation("MSH", 1, 9),
            fields={"MSH-9": f"event {mtype.trigger or '(missing)'} is not supported"},
            header=header,
        )
    if header.version and not header.version.startswith("2"):
        raise HL7ParseError(
            HL7ErrorCode.UNSUPPORTED_VERSION_ID,
            f"Only HL7 version 2 messages are accepted; MSH-12 says {header.version}.",
            location=ErrorLocation("MSH", 1, 12),
            fields={"MSH-12": f"version {header.version} is not supported"},
            header=header,
        )


# ---------------------------------------------------------------- patient, location


def _patient_ids(pid: Segment | None) -> tuple[PatientIdentifier, ...]:
    if pid is None:
        return ()
    enc = pid.encoding
    ids = []
    for r in range(len(pid.repetitions(3))):
        value = pid.component(3, 1, r)
        if value:
            comps = pid.components(3, r)
            authority = comps[3].split(enc.subcomponent) if len(comps) > 3 else []
            name = ""
            for a in authority:
                if a.strip():
                    name = unescape(a, enc).strip()
                    break
            ids.append(PatientIdentifier(value, name, pid.component(3, 5, r)))
    return tuple(ids)


def _patient_name(pid: Segment | None) -> PersonName | None:
    if pid is None or not (pid.component(5, 1) or pid.component(5, 2)):
        return None
    family = pid.component(5, 1).split(pid.encoding.subcomponent)[0]
    return PersonName(family, pid.component(5, 2))


def _location(pv1: Segment | None) -> Location | None:
    if pv1 is None:
        return None
    enc = pv1.encoding
    # Split sub-components before unescaping so an escaped "&" stays text (Comen puts
    # sub-components in PV1-3, interop.md §4.2).
    comps = [[unescape(s, enc).strip() for s in c.split(enc.subcomponent)] for c in pv1.components(3)]
    while comps and not any(comps[-1]):
        comps.pop()
    if not comps:
        return None

    def first(i: int) -> str:
        return next((s for s in comps[i] if s), "") if i < len(comps) else ""

    return Location(
        point_of_care=first(0),
        room=first(1),
        bed=first(2),
        facility=first(3),
        text=enc.component.join(enc.subcomponent.join(c).rstrip(enc.subcomponent) for c in comps),
    )


# ---------------------------------------------------------------- entry point


def parse_oru(data: str | bytes, *, fast: bool = True) -> ParsedMessage:
    """Parse one ORU^R01 (text or bytes from an MLLP frame). Raises HL7ParseError if unusable.

    ``fast`` (the default) reads well-formed OBX segments with :func:`obx.read_obx_fast` and the rest
    with the full reader; ``fast=False`` uses the full reader for every OBX (the result is the same,
    tests/interop/test_hl7_fast.py).
    """
    if fast and isinstance(data, str):
        plain = _parse_plain(data)
        if plain is not None:
            return plain
    header, segments, first_issues = split_message(data)
    _validate_oru(header)
    issues = list(first_issues)
    pid = next((s for s in segments if s.name == "PID"), None)
    pv1 = next((s for s in segments if s.name == "PV1"), None)
    obxs = [s for s in segments if s.name == "OBX"]

    obx_device = next((s.component(18, 1) for s in obxs if s.component(18, 1)), "")
    if obx_device:
        device_id, device_source = obx_device, "OBX-18"
    elif header.sending_application.eui64:
        device_id, device_source = header.sending_application.eui64, "MSH-3"
    else:
        device_id, device_source = None, ""

    times = [("MSH", 1, segments[0].component(7, 1))]
    times += [("OBR", i + 1, s.component(7, 1)) for i, s in enumerate(x for x in segments if x.name == "OBR")]
    for name, seq, text in times:
        if text and parse_dtm(text) is None:
            issues.append(Issue(IssueKind.BAD_TIME, f"{name}-7 {text!r} is not a valid time.", name, seq))

    # The fast OBX reader needs plain splits: default delimiters and no escape sequence in the segment.
    # In a str with default delimiters, one backslash (MSH-2's) means no escape anywhere: every OBX can
    # try the fast reader without looking for escapes segment by segment.
    fast = fast and header.encoding == DEFAULT_ENCODING
    no_escapes = fast and isinstance(data, str) and data.count("\\") == 1
    group = Group(obr_time=None)
    observations: list[VitalObservation] = []
    systems: set[str] = set()
    obx_seq = 0
    for seg in segments[1:]:
        if seg.name == "OBR":
            group = Group(obr_time=parse_dtm(seg.component(7, 1)))
        elif seg.name == "OBX":
            obx_seq += 1
            system = seg.component(3, 3)
            if system:
                systems.add(system.upper())
            obs: VitalObservation | object | None = NOT_FAST
            if no_escapes or (fast and not any("\\" in f for f in seg.fields)):
                obs = read_obx_fast(seg, obx_seq, group, header, device_id)
            if obs is NOT_FAST:
                obs, obx_issues = read_obx(seg, obx_seq, group, header, device_id)
                issues.extend(obx_issues)
            if isinstance(obs, VitalObservation):
                observations.append(obs)

    return ParsedMessage(
        header=header,
        patient_ids=_patient_ids(pid),
        patient_name=_patient_name(pid),
        location=_location(pv1),
        device_id=device_id,
        device_id_source=device_source,
        observations=tuple(observations),
        issues=tuple(issues),
        coding_systems=frozenset(systems),
        obx_count=len(obxs),
    )


# ---------------------------------------------------------------- the plain path

# A feed sends the same PID, PV1 and (but for MSH-7 and MSH-10) MSH segments every second: what they
# parse to is kept here, bounded (cleared when full).
_CACHE_LIMIT: Final = 8192
_HEADERS: dict[tuple[str, ...], MessageHeader] = {}
_PATIENTS: dict[str, tuple[tuple[PatientIdentifier, ...], PersonName | None]] = {}
_LOCATIONS: dict[str, Location | None] = {}
_LEAD: Final = "\ufeff\x0b\x00 \t\r\n"
_TRAIL: Final = "\x1c\x00 \t\r\n"


def _put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _first_component(fields: list[str], n: int, c: int = 0) -> str:
    """Component c (0-based) of field n's first repetition, stripped: :meth:`Segment.component` for a
    segment with default delimiters and no escapes."""
    text = fields[n] if n < len(fields) else ""
    if not text:
        return ""
    comps = text.split("~", 1)[0].split("^")
    return comps[c].strip() if c < len(comps) else ""


def _plain_header(fields: list[str]) -> MessageHeader:
    key = tuple(fields[:7] + fields[8:10] + fields[11:])
    cached = _HEADERS.get(key)
    if cached is None:
        cached = _read_header_plain(Segment("MSH", tuple(fields), DEFAULT_ENCODING))
        _put(_HEADERS, key, cached)
    h = cached
    return MessageHeader(
        h.encoding,
        h.sending_application,
        h.sending_facility,
        h.receiving_application,
        h.receiving_facility,
        parse_dtm(_first_component(fields, 7)),
        h.message_type,
        (fields[10] if len(fields) > 10 else "").split("~", 1)[0].strip(),
        h.processing_id,
        h.version,
        h.accept_ack_type,
        h.application_ack_type,
        h.charset,
        h.profiles,
    )


def _plain_patient(raw: str) -> tuple[tuple[PatientIdentifier, ...], PersonName | None]:
    found = _PATIENTS.get(raw)
    if found is None:
        seg = parse_segment(raw, DEFAULT_ENCODING)
        found = (_patient_ids(seg), _patient_name(seg))
        _put(_PATIENTS, raw, found)
    return found


def _plain_location(raw: str) -> Location | None:
    if raw in _LOCATIONS:
        return _LOCATIONS[raw]
    found = _location(parse_segment(raw, DEFAULT_ENCODING))
    _put(_LOCATIONS, raw, found)
    return found


def _parse_plain(data: str) -> ParsedMessage | None:
    """:func:`parse_oru` for the common clean message, or None when the full reader must read it.

    Clean: default delimiters, no escape anywhere (the only backslash is MSH-2's), CR terminators,
    well-formed segment names, valid MSH-7/OBR-7 times and every OBX readable by
    :func:`obx.read_obx_fast` — so no issue at all. The result is the full reader's, field for field
    (tests/interop/test_hl7_fast.py compares them on every sample and on fuzzed variants); it only
    skips the Segment objects and reuses what the same PID/PV1/MSH parsed to before.
    """
    text = data.lstrip(_LEAD).rstrip(_TRAIL)
    if not text.startswith("MSH|^~\\&|") or "\n" in text or text.count("\\") != 1:
        return None
    raws = [r for r in text.split("\r") if r.strip()]
    for raw in raws:
        if len(raw) < 3 or not (len(raw) == 3 or raw[3] == "|") or not _SEGMENT_NAME.match(raw[:3]):
            return None
    msh = ["MSH", *raws[0].split("|")]
    msh[1] = "|"  # fields numbered as HL7 does: MSH-1 is the separator, MSH-2 the encoding characters
    header = _plain_header(msh)
    _validate_oru(header)
    msh_time = _first_component(msh, 7)
    if msh_time and parse_dtm(msh_time) is None:
        return None
    pid = next((r for r in raws if r.startswith("PID")), None)
    pv1 = next((r for r in raws if r.startswith("PV1")), None)
    segments = [r.split("|") for r in raws[1:]]
    obx_device = next(
        (d for f in segments if f[0] == "OBX" for d in (_first_component(f, 18),) if d),
        "",
    )
    device_id: str | None
    if obx_device:
        device_id, device_source = obx_device, "OBX-18"
    elif header.sending_application.eui64:
        device_id, device_source = header.sending_application.eui64, "MSH-3"
    else:
        device_id, device_source = None, ""
    group = Group(obr_time=None)
    observations: list[VitalObservation] = []
    systems: set[str] = set()
    obx_seq = 0
    for f in segments:
        name = f[0]
        if name == "OBR":
            obr_time = _first_component(f, 7)
            parsed_time = parse_dtm(obr_time) if obr_time else None
            if obr_time and parsed_time is None:
                return None
            group = Group(obr_time=parsed_time)
        elif name == "OBX":
            obx_seq += 1
            system = _first_component(f, 3, 2)
            if system:
                systems.add(system.upper())
            obs = read_obx_fields(f, DEFAULT_ENCODING, obx_seq, group, header, device_id)
            if obs is NOT_FAST:
                return None
            if isinstance(obs, VitalObservation):
                observations.append(obs)
    patient_ids, patient_name = _plain_patient(pid) if pid is not None else ((), None)
    return ParsedMessage(
        header=header,
        patient_ids=patient_ids,
        patient_name=patient_name,
        location=_plain_location(pv1) if pv1 is not None else None,
        device_id=device_id,
        device_id_source=device_source,
        observations=tuple(observations),
        issues=(),
        coding_systems=frozenset(systems),
        obx_count=obx_seq,
    )


def read_header_only(data: str | bytes) -> MessageHeader | None:
    """Best-effort MSH of a message that may be broken (for an AE/AR ACK); None if there is none."""
    try:
        header, _, _ = split_message(data)
    except HL7ParseError as exc:
        return exc.header
    return header
