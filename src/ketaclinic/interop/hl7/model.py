"""What an ORU^R01 from a monitor turns into: typed, frozen, free of HL7 syntax.

``ParsedMessage`` is the result of :func:`ketaclinic.interop.hl7.parse.parse_oru`. Times without a UTC
offset stay naive (the device's local time) with ``time_has_offset=False``; the app applies the site's
zone with :meth:`VitalObservation.observed_at_in` (design.md: aware UTC in storage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Final

from ketaclinic.interop.hl7.er7 import Encoding
from ketaclinic.interop.hl7.mdc import VitalKind


@dataclass(frozen=True)
class HierarchicDesignator:
    """HD: ``namespace^universal id^universal id type`` (MSH-3/4/5/6)."""

    namespace: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    @property
    def eui64(self) -> str | None:
        """The device EUI-64 when the id type says so (``EUI-64``, also ``EUI64`` as in IPF's ACK)."""
        kind = self.universal_id_type.upper().replace("-", "")
        return self.universal_id.upper() if kind == "EUI64" and self.universal_id else None

    @property
    def is_empty(self) -> bool:
        return not (self.namespace or self.universal_id or self.universal_id_type)

    def __str__(self) -> str:
        return "^".join((self.namespace, self.universal_id, self.universal_id_type)).rstrip("^")


@dataclass(frozen=True)
class MessageType:
    code: str = ""
    trigger: str = ""
    structure: str = ""

    def __str__(self) -> str:
        return "^".join((self.code, self.trigger, self.structure)).rstrip("^")


@dataclass(frozen=True)
class MessageHeader:
    """MSH as far as it could be read. ``timestamp`` naive when MSH-7 has no offset."""

    encoding: Encoding
    sending_application: HierarchicDesignator
    sending_facility: HierarchicDesignator
    receiving_application: HierarchicDesignator
    receiving_facility: HierarchicDesignator
    timestamp: datetime | None
    message_type: MessageType
    control_id: str
    processing_id: str
    version: str
    accept_ack_type: str
    application_ack_type: str
    charset: str
    profiles: tuple[tuple[str, ...], ...]  # MSH-21 repetitions, components of each


@dataclass(frozen=True)
class PatientIdentifier:
    """One PID-3 repetition (CX): ``id^^^authority^type``."""

    id: str
    assigning_authority: str = ""
    type_code: str = ""


@dataclass(frozen=True)
class PersonName:
    family: str
    given: str


@dataclass(frozen=True)
class Location:
    """PV1-3 (PL): ``point of care^room^bed^facility…``; ``text`` is the field as sent (unescaped
    per component, trailing empty components removed), the key for device→chair binding."""

    point_of_care: str
    room: str
    bed: str
    facility: str
    text: str


class TimeSource(StrEnum):
    """Where an observation's time came from (interop.md §1.5/§3.2: OBX-14 overrides OBR-7)."""

    OBX = "OBX-14"
    PARENT_OBX = "OBX-14 of the containing OBX"  # PCD-01 group headers carry the NIBP time
    OBR = "OBR-7"
    MSH = "MSH-7"
    NONE = "none"


class IssueKind(StrEnum):
    UNKNOWN_CODE = "unknown_code"
    NOT_TRACKED = "not_tracked"  # known code, not a vital we store (e.g. pulmonary pressures)
    UNKNOWN_UNIT = "unknown_unit"
    UNIT_MISMATCH = "unit_mismatch"  # a known unit that does not measure this vital
    EMPTY_VALUE = "empty_value"
    BAD_VALUE = "bad_value"
    NOT_NUMERIC = "not_numeric"
    REFID_MISMATCH = "refid_mismatch"
    INVALID_STATUS = "invalid_status"  # OBX-11 X/D/W
    BAD_TIME = "bad_time"
    CHARSET_FALLBACK = "charset_fallback"


@dataclass(frozen=True)
class Issue:
    """Something in the message we skipped or doubted; logged, never an error for the sender."""

    kind: IssueKind
    message: str
    segment: str = "OBX"
    sequence: int = 0  # 1-based among segments of that name; 0 = message level
    code: str = ""  # OBX-3 as sent


@dataclass(frozen=True)
class VitalObservation:
    kind: VitalKind
    value: float  # in ``unit``
    unit: str  # canonical UCUM unit of ``kind``
    observed_at: datetime | None
    time_source: TimeSource
    mdc_code: int
    refid: str
    site: str | None  # nibp, arterial, ecg, oximeter, oral …
    confirmed: bool  # False when the code mapping is marked ⚠ in the reference
    source_code: str  # OBX-3 as sent, e.g. "0002-4182^HR^MDIL"
    source_unit: str  # OBX-6 as sent
    raw_value: str  # OBX-5 as sent
    device_id: str | None  # OBX-18 (own or containing OBX) or the message's device
    obx_sequence: int  # 1-based position among the message's OBX segments
    containment: str  # OBX-4
    status: str  # OBX-11

    @property
    def time_has_offset(self) -> bool:
        return self.observed_at is not None and self.observed_at.tzinfo is not None

    def observed_at_in(self, zone: tzinfo) -> datetime | None:
        """Aware time: a naive device time is read as the site's local time ``zone``."""
        if self.observed_at is None or self.observed_at.tzinfo is not None:
            return self.observed_at
        return self.observed_at.replace(tzinfo=zone)


@dataclass(frozen=True)
class ParsedMessage:
    header: MessageHeader
    patient_ids: tuple[PatientIdentifier, ...]
    patient_name: PersonName | None
    location: Location | None
    device_id: str | None
    device_id_source: str  # "OBX-18", "MSH-3" or ""
    observations: tuple[VitalObservation, ...]
    issues: tuple[Issue, ...]
    coding_systems: frozenset[str]  # OBX-3 coding systems seen, upper case
    obx_count: int

    @property
    def sender(self) -> HierarchicDesignator:
        return self.header.sending_application

    @property
    def control_id(self) -> str:
        return self.header.control_id

    @property
    def message_type(self) -> MessageType:
        return self.header.message_type

    @property
    def is_device_feed(self) -> bool:
        return is_device_feed(self)


# IHE PCD profile ids in MSH-21 (interop.md §3.2): "PCD_DEC_001^IHE PCD^1.3.6.1.4.1.19376.1.6…" or the
# legacy "IHE PCD ORU-R01 2006^HL7^…".
PCD_OID_ROOT: Final = "1.3.6.1.4.1.19376.1.6"


def device_feed_evidence(msg: ParsedMessage) -> tuple[str, ...]:
    """Why ``msg`` looks like a device (vitals) feed; empty for e.g. a lab result."""
    found: list[str] = []
    for profile in msg.header.profiles:
        joined = "^".join(profile).upper()
        if "PCD" in joined or any(c.startswith(PCD_OID_ROOT) for c in profile):
            found.append(f"MSH-21 profile {'^'.join(profile).rstrip('^')}")
            break
    if msg.sender.eui64:
        found.append(f"MSH-3 EUI-64 {msg.sender.eui64}")
    mdc = sorted(msg.coding_systems & {"MDC", "MDIL"})
    if mdc:
        found.append(f"OBX-3 coded in {', '.join(mdc)}")
    if msg.observations:
        found.append(f"{len(msg.observations)} vital sign value(s)")
    return tuple(found)


def is_device_feed(msg: ParsedMessage) -> bool:
    """A device/vitals feed: PCD profile in MSH-21, an EUI-64 sender, MDC/MDIL codes or mapped vitals.

    A lab ORU (LOINC/local codes, no EUI-64, no PCD profile — reference/hl7/lab_glucose_not_vitals.hl7)
    is acknowledged but its results are not vitals.
    """
    # The same answer as bool(device_feed_evidence(msg)), cheapest test first (called per message).
    if msg.observations or msg.sender.eui64 or msg.coding_systems & {"MDC", "MDIL"}:
        return True
    return bool(device_feed_evidence(msg))
