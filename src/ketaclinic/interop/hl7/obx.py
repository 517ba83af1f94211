"""One OBX of an ORU^R01 → a :class:`VitalObservation` (or issues saying why not).

:func:`read_obx` is the full tolerant reader (interop.md §3.5). :func:`read_obx_fast` reads the common
well-formed shape (numeric ``NM`` value, known MDC/MDIL code and unit, no escapes, valid time) from the
fields split once, without the per-component helpers, and returns :data:`NOT_FAST` for anything else so
that the caller falls back to :func:`read_obx`. Both give the same result on what the fast one accepts
(tests/interop/test_hl7_fast.py checks this on every sample and on fuzzed variants). The fast reader is
there because the parser was two thirds of the listener's CPU per message (bench/README.md "## mllp").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

from ketaclinic.interop.hl7.er7 import Encoding, Segment, parse_dtm
from ketaclinic.interop.hl7.mdc import (
    KINDS,
    TERMS_BY_CODE,
    TERMS_BY_REFID,
    MdcTerm,
    UnitDef,
    code_number,
    lookup_unit,
)
from ketaclinic.interop.hl7.model import Issue, IssueKind, MessageHeader, TimeSource, VitalObservation

NUMERIC_TYPES: Final = frozenset({"NM", "SN", "ST", ""})
# OBX-11 results that are not valid values: X "invalid" (interop.md §3.2; HL7 table 0085 "results
# cannot be obtained"), D "deleted", W "wrong, replaced" (table 0085).
INVALID_STATUS: Final = frozenset({"X", "D", "W"})


@dataclass
class Group:
    """State within one OBR: times and devices of OBX by containment (OBX-4)."""

    obr_time: datetime | None
    times: dict[str, datetime] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def ancestors(containment: str) -> list[str]:
        parts = containment.split(".")
        return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _resolve_term(seg: Segment) -> tuple[MdcTerm | None, str, str]:
    """Term for OBX-3 (primary triple, then alternate), with the REFID text and system used."""
    return _term_of(seg.field(3), seg.encoding)


@lru_cache(maxsize=2048)
def _term_of(raw: str, encoding: Encoding) -> tuple[MdcTerm | None, str, str]:
    """:func:`_resolve_term` of a raw OBX-3 (a feed sends the same few codes over and over)."""
    seg = Segment("OBX", ("OBX", "", "", raw), encoding)
    for base in (1, 4):
        code, text, system = (seg.component(3, base + i) for i in range(3))
        if not (code or text):
            continue
        number = code_number(code, system)
        if number is not None:
            return TERMS_BY_CODE.get(number), text, system
        if text in TERMS_BY_REFID:
            return TERMS_BY_REFID[text], text, system
    return None, seg.component(3, 2), seg.component(3, 3)


def _resolve_unit(seg: Segment) -> UnitDef | None:
    return _unit_of(seg.field(6), seg.encoding)


@lru_cache(maxsize=2048)
def _unit_of(raw: str, encoding: Encoding) -> UnitDef | None:
    """:func:`_resolve_unit` of a raw OBX-6."""
    seg = Segment("OBX", ("OBX", "", "", "", "", "", raw), encoding)
    for base in (1, 4):
        code, text, system = (seg.component(6, base + i) for i in range(3))
        if code or text:
            unit = lookup_unit(code, text, system)
            if unit is not None:
                return unit
    return None


def _number(seg: Segment, value_type: str) -> Decimal | None:
    if value_type == "SN":  # comparator^num1^separator^num2: only a plain "=" number is a value
        comparator, num1, sep, num2 = (seg.component(5, c) for c in range(1, 5))
        if comparator not in ("", "=") or sep or num2:
            return None
        text = num1
    else:
        text = seg.text(5)
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def read_obx(
    seg: Segment, seq: int, group: Group, header: MessageHeader, message_device: str | None
) -> tuple[VitalObservation | None, list[Issue]]:
    issues: list[Issue] = []
    code_text = seg.text(3)

    def issue(kind: IssueKind, message: str) -> None:
        issues.append(Issue(kind, f"OBX {seq} ({code_text or 'no code'}): {message}", "OBX", seq, code_text))

    value_type = seg.component(2, 1).upper()
    containment = seg.text(4)
    own_time_text = seg.component(14, 1)
    own_time = parse_dtm(own_time_text) if own_time_text else None
    if own_time_text and own_time is None:
        issue(IssueKind.BAD_TIME, f"OBX-14 {own_time_text!r} is not a valid time; using a fallback.")
    own_device = seg.component(18, 1)
    if containment:
        if own_time is not None:
            group.times[containment] = own_time
        if own_device:
            group.devices[containment] = own_device

    term, refid_text, _ = _resolve_term(seg)
    raw_value = seg.field(5)
    numeric_type = value_type in NUMERIC_TYPES
    if not raw_value.strip(seg.encoding.component + " "):
        if value_type:  # a typed OBX without value = not measured; untyped = header (§3.1)
            issue(IssueKind.EMPTY_VALUE, "no value (not measured); skipped.")
        return None, issues
    if term is None:
        if numeric_type:
            issue(IssueKind.UNKNOWN_CODE, "unknown observation code; value not stored.")
        return None, issues
    if term.kind is None:
        if numeric_type:
            issue(IssueKind.NOT_TRACKED, f"{term.refid} is not a vital sign we store; skipped.")
        return None, issues
    if refid_text.upper().startswith("MDC_") and refid_text not in (term.refid, *term.aliases):
        issue(
            IssueKind.REFID_MISMATCH,
            f"code {term.code} is {term.refid} but is labelled {refid_text}; keyed on the code.",
        )
    status = seg.text(11).upper()
    if status in INVALID_STATUS:
        issue(IssueKind.INVALID_STATUS, f"result status {status} (not a valid result); skipped.")
        return None, issues
    if not numeric_type:
        issue(IssueKind.NOT_NUMERIC, f"value type {value_type} is not numeric; skipped.")
        return None, issues
    number = _number(seg, value_type)
    if number is None:
        issue(IssueKind.BAD_VALUE, f"value {seg.text(5)!r} is not a number; skipped.")
        return None, issues
    spec = KINDS[term.kind]
    unit = _resolve_unit(seg)
    if unit is None:
        shown = seg.text(6) or "no unit"
        issue(IssueKind.UNKNOWN_UNIT, f"unit {shown!r} is not known; value {number} not stored.")
        return None, issues
    if unit.quantity is not spec.quantity:
        issue(IssueKind.UNIT_MISMATCH, f"unit {unit.ucum} does not measure {term.kind.value}; skipped.")
        return None, issues

    value = float(unit.to_canonical(number))
    if not math.isfinite(value):  # 1E+400: a finite decimal, but no measurement (and no float)
        issue(IssueKind.BAD_VALUE, f"value {seg.text(5)!r} is out of any measurable range; skipped.")
        return None, issues

    ancestors = Group.ancestors(containment) if containment else []
    observed_at, source = own_time, TimeSource.OBX
    if observed_at is None:
        observed_at = next((group.times[a] for a in ancestors if a in group.times), None)
        source = TimeSource.PARENT_OBX
    if observed_at is None:
        observed_at, source = group.obr_time, TimeSource.OBR
    if observed_at is None:
        observed_at, source = header.timestamp, TimeSource.MSH
    if observed_at is None:
        source = TimeSource.NONE
    device = own_device or next((group.devices[a] for a in ancestors if a in group.devices), None)

    return VitalObservation(
        kind=term.kind,
        value=value,
        unit=spec.unit,
        observed_at=observed_at,
        time_source=source,
        mdc_code=term.code,
        refid=term.refid,
        site=term.site,
        confirmed=term.confirmed,
        source_code=code_text,
        source_unit=seg.text(6),
        raw_value=seg.text(5),
        device_id=device or message_device,
        obx_sequence=seq,
        containment=containment,
        status=status,
    ), issues


class _NotFast:
    """Returned by :func:`read_obx_fast` when the OBX needs the full reader."""


NOT_FAST: Final = _NotFast()


def _first(fields: Sequence[str], n: int) -> str:
    """Field n, first repetition, not stripped (no escapes: the caller checked)."""
    text = fields[n] if n < len(fields) else ""
    cut = text.find("~")
    return text if cut < 0 else text[:cut]


def read_obx_fast(
    seg: Segment, seq: int, group: Group, header: MessageHeader, message_device: str | None
) -> VitalObservation | _NotFast | None:
    """:func:`read_obx` for the common shape; :data:`NOT_FAST` (nothing changed) for anything else.

    Only for a segment in the default encoding without escape characters (the caller checks): then a
    component is a plain split of the first repetition, stripped, as :meth:`Segment.component` gives.
    Accepted: a header OBX (no type, no value) and an ``NM`` value with a known vital code, a unit of
    the right quantity, a valid status and valid or absent OBX-14. Anything that would raise an issue
    goes to :func:`read_obx`, which reports it.
    """
    return read_obx_fields(seg.fields, seg.encoding, seq, group, header, message_device)


@dataclass(frozen=True)
class _Shape:
    """What an OBX's type, code, containment, unit, status and device fields (everything but its value
    and time) decide, worked out once per distinct text (a feed repeats the same few every second)."""

    value_type: str
    term: MdcTerm | None
    readable: bool  # a value with this shape can be read fast (known code, unit, valid status)
    unit: UnitDef | None
    spec_unit: str
    containment: str
    ancestors: tuple[str, ...]
    own_device: str
    source_code: str
    source_unit: str
    status: str


_SHAPES: dict[tuple[str, ...], _Shape] = {}
_VALUES: dict[tuple[int, str], float | None] = {}  # by id() of the unit: the units are module constants
_CACHE_LIMIT: Final = 8192


def _shape(f: Sequence[str], encoding: Encoding) -> _Shape:
    n = len(f)
    key = tuple([f[i] if i < n else "" for i in (2, 3, 4, 6, 11, 18)])
    found = _SHAPES.get(key)
    if found is not None:
        return found
    value_type = _first(f, 2).split("^", 1)[0].strip().upper()
    term, refid_text, _ = _term_of(key[1], encoding)
    unit = _unit_of(key[3], encoding)
    readable = (
        value_type == "NM"
        and term is not None
        and term.kind is not None
        and not (refid_text.upper().startswith("MDC_") and refid_text not in (term.refid, *term.aliases))
        and _first(f, 11).strip().upper() not in INVALID_STATUS
        and unit is not None
        and unit.quantity is KINDS[term.kind].quantity
    )
    containment = _first(f, 4).strip()
    found = _Shape(
        value_type=value_type,
        term=term,
        readable=readable,
        unit=unit,
        spec_unit=KINDS[term.kind].unit if term is not None and term.kind is not None else "",
        containment=containment,
        ancestors=tuple(Group.ancestors(containment)) if containment else (),
        own_device=_first(f, 18).split("^", 1)[0].strip(),
        source_code=_first(f, 3).strip(),
        source_unit=_first(f, 6).strip(),
        status=_first(f, 11).strip().upper(),
    )
    if len(_SHAPES) >= _CACHE_LIMIT:
        _SHAPES.clear()
    _SHAPES[key] = found
    return found


def _canonical(unit: UnitDef, value_text: str) -> float | None:
    """The value in the kind's canonical unit, or None when it is not a finite decimal number."""
    key = (id(unit), value_text)
    if key in _VALUES:
        return _VALUES[key]
    try:
        number: Decimal | None = Decimal(value_text)
    except InvalidOperation:
        number = None
    found = float(unit.to_canonical(number)) if number is not None and number.is_finite() else None
    if found is not None and not math.isfinite(found):
        found = None  # the full reader reports it
    if len(_VALUES) >= _CACHE_LIMIT:
        _VALUES.clear()
    _VALUES[key] = found
    return found


def read_obx_fields(
    f: Sequence[str],
    encoding: Encoding,
    seq: int,
    group: Group,
    header: MessageHeader,
    message_device: str | None,
) -> VitalObservation | _NotFast | None:
    """:func:`read_obx_fast` on the segment's fields (``f[0]`` is the name), without a Segment object.
    What the code, unit and status fields decide is cached per distinct text (``_shape``), the value
    conversion per unit and value text (``_canonical``)."""
    shape = _shape(f, encoding)
    own_time_text = _first(f, 14).split("^", 1)[0].strip()
    own_time = parse_dtm(own_time_text) if own_time_text else None
    if own_time_text and own_time is None:
        return NOT_FAST
    raw_value = f[5] if len(f) > 5 else ""
    containment = shape.containment
    own_device = shape.own_device
    result: VitalObservation | _NotFast | None = None  # a header OBX (§3.1)
    if not raw_value.strip("^ "):
        if shape.value_type:
            return NOT_FAST  # "not measured" issue
    else:
        if not shape.readable:
            return NOT_FAST
        term, unit = shape.term, shape.unit
        assert term is not None and term.kind is not None and unit is not None
        value_text = _first(f, 5).strip()
        value = _canonical(unit, value_text)
        if value is None:
            return NOT_FAST
        ancestors = shape.ancestors
        observed_at, source = own_time, TimeSource.OBX
        if observed_at is None:
            observed_at = next((group.times[a] for a in ancestors if a in group.times), None)
            source = TimeSource.PARENT_OBX
        if observed_at is None:
            observed_at, source = group.obr_time, TimeSource.OBR
        if observed_at is None:
            observed_at, source = header.timestamp, TimeSource.MSH
        if observed_at is None:
            source = TimeSource.NONE
        device = own_device or next((group.devices[a] for a in ancestors if a in group.devices), None)
        result = VitalObservation(
            kind=term.kind,
            value=value,
            unit=shape.spec_unit,
            observed_at=observed_at,
            time_source=source,
            mdc_code=term.code,
            refid=term.refid,
            site=term.site,
            confirmed=term.confirmed,
            source_code=shape.source_code,
            source_unit=shape.source_unit,
            raw_value=value_text,
            device_id=device or message_device,
            obx_sequence=seq,
            containment=containment,
            status=shape.status,
        )
    if containment:
        if own_time is not None:
            group.times[containment] = own_time
        if own_device:
            group.devices[containment] = own_device
    return result
