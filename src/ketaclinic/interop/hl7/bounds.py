"""How much one HL7 message may carry, and when its times are plausible. Pure: no Django, no I/O.

A monitor reports a few vital signs per message (interop.md §3.1: periodic PCD-01 reports, typically
once a minute); a gateway a few dozen. A message far beyond that is an error or an attack — the
December probe sent one message with 10,586 OBX segments, which was acknowledged and then stalled the
web server (issue 15 H4). So a message is refused whole, with an AE that names the limit, when it
carries more than :attr:`FeedLimits.max_obx` OBX segments or more than :attr:`FeedLimits.max_readings`
vital-sign values; nothing of it is stored. Its size in bytes is bounded before it is even read
(mllp.FrameDecoder keeps at most ``max_message_bytes`` of a frame in memory).

Times: every time a message carries into storage (MSH-7, and each observation's OBX-14 / OBR-7 / MSH-7)
lies between :attr:`FeedLimits.earliest` and the receipt time plus :attr:`FeedLimits.clock_skew`. A
year-0001 or year-9999 time broke every page that showed it (issue 15 H2); a time from the future
would sort a reading after everything really measured since. The check takes aware times (the caller
reads a device's local time in its site's zone first) and never does arithmetic on a time it has not
first found to be in a sane year, so that it cannot overflow either.

These numbers are operational limits of the interface, not clinical values: they live in the
``KETACLINIC_HL7_*`` settings (docs/operations.md "Monitor feed limits") with the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from ketaclinic.core import moments
from ketaclinic.core.moments import TimeWindow
from ketaclinic.interop.hl7.errors import AckCode, ErrorLocation, HL7ErrorCode, HL7ParseError
from ketaclinic.interop.hl7.mdc import VitalKind
from ketaclinic.interop.hl7.model import MessageHeader, TimeSource

# Defaults (docs/operations.md "Monitor feed limits"). A PCD-01 message from one monitor is a few kB with
# 10-60 OBX (device, channel and metric headers included); a gateway's up to a few hundred.
DEFAULT_MAX_MESSAGE_BYTES: Final = 256 * 1024
DEFAULT_MAX_OBX: Final = 500
DEFAULT_MAX_READINGS: Final = 200
DEFAULT_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_CLOCK_SKEW: Final = timedelta(minutes=5)

_OBX_START: Final = "\rOBX"


@dataclass(frozen=True)
class FeedLimits:
    """What the listener accepts in one message."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_obx: int = DEFAULT_MAX_OBX
    max_readings: int = DEFAULT_MAX_READINGS
    earliest: datetime = field(default=DEFAULT_EARLIEST)
    clock_skew: timedelta = field(default=DEFAULT_CLOCK_SKEW)

    def __post_init__(self) -> None:
        if min(self.max_message_bytes, self.max_obx, self.max_readings) < 1:
            raise ValueError("message limits must be positive")
        if self.earliest.tzinfo is None:
            raise ValueError("earliest must be an aware time")
        if self.clock_skew < timedelta(0):
            raise ValueError("clock_skew must not be negative")


DEFAULT_LIMITS: Final = FeedLimits()


def too_large(limit: int, header: MessageHeader | None) -> HL7ParseError:
    """The AE for a message of more than ``limit`` bytes (it was not read to its end)."""
    return HL7ParseError(
        HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
        f"The message is larger than {limit} bytes, the most this system accepts in one "
        "message; it was not read or stored. Send fewer values per message.",
        fields={"message": f"more than {limit} bytes; the limit is {limit}"},
        header=header,
        ack_code=AckCode.ERROR,
    )


def count_obx(text: str) -> int:
    """OBX segments in a message whose segments end with CR (prepare.normalise)."""
    return text.count(_OBX_START) + (1 if text.startswith("OBX") else 0)


def obx_problem(text: str, limits: FeedLimits, header: MessageHeader | None) -> HL7ParseError | None:
    """An AE when the message has more OBX segments than :attr:`FeedLimits.max_obx` (checked before it is
    parsed: counting is a fraction of the cost of reading them)."""
    count = count_obx(text)
    if count <= limits.max_obx:
        return None
    return HL7ParseError(
        HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
        f"The message has {count} OBX segments; this system accepts at most {limits.max_obx} in one message. "
        "Nothing of it was stored. Send fewer values per message.",
        location=ErrorLocation("OBX", limits.max_obx + 1),
        fields={"OBX": f"{count} segments; the limit is {limits.max_obx}"},
        header=header,
        ack_code=AckCode.ERROR,
    )


def readings_problem(count: int, limits: FeedLimits, header: MessageHeader | None) -> HL7ParseError | None:
    """An AE when the message carries more vital-sign values than :attr:`FeedLimits.max_readings`."""
    if count <= limits.max_readings:
        return None
    return HL7ParseError(
        HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
        f"The message carries {count} vital-sign values; this system accepts at most {limits.max_readings} "
        "in one message. Nothing of it was stored. Send fewer values per message.",
        location=ErrorLocation("OBX"),
        fields={"OBX-5": f"{count} values; the limit is {limits.max_readings}"},
        header=header,
        ack_code=AckCode.ERROR,
    )


# Where each kind of observation time comes from, as (segment, field) for ERR-2.
_TIME_FIELD: Final = {
    TimeSource.OBX: ("OBX", 14),
    TimeSource.PARENT_OBX: ("OBX", 14),
    TimeSource.OBR: ("OBR", 7),
    TimeSource.MSH: ("MSH", 7),
}


def time_location(source: TimeSource, obx_sequence: int) -> ErrorLocation:
    """Where an observation's time came from (ERR-2): its own OBX-14, OBR-7 or MSH-7."""
    segment, number = _TIME_FIELD.get(source, ("MSH", 7))
    return ErrorLocation(segment, obx_sequence if segment == "OBX" else 1, number)


def implausible_time(moment: datetime, received_at: datetime, limits: FeedLimits) -> str | None:
    """Why ``moment`` (aware) is not plausible — before :attr:`FeedLimits.earliest`, or more than
    :attr:`FeedLimits.clock_skew` after ``received_at`` — or None when it is. The one window of every
    recorded time (core/moments.py), with the feed's own earliest time and clock skew."""
    window = TimeWindow(earliest=limits.earliest, clock_skew=limits.clock_skew)
    why = moments.implausible_time(
        moment, now=received_at, window=window, now_label="the time it was received"
    )
    if why is None or not why.startswith("is later"):
        return why
    return f"{why}; check the monitor's clock"


def time_error(
    moment: datetime, why: str, *, location: ErrorLocation, header: MessageHeader | None
) -> HL7ParseError:
    """The AE for an implausible time, naming its field (``OBX-14 of OBX 4``, ``MSH-7``)."""
    name = f"{location.segment}-{location.field}"
    where = f"{name} of OBX {location.sequence}" if location.segment == "OBX" else name
    shown = moment.isoformat(sep=" ", timespec="seconds")
    return HL7ParseError(
        HL7ErrorCode.DATA_TYPE_ERROR,
        f"The time in {where} ({shown}) {why}. Nothing of the message was stored.",
        location=location,
        fields={name: f"{shown} {why}"},
        header=header,
    )


def time_problem(
    moment: datetime,
    *,
    location: ErrorLocation,
    received_at: datetime,
    limits: FeedLimits,
    header: MessageHeader | None,
) -> HL7ParseError | None:
    """:func:`implausible_time` as the AE naming the field, or None when the time is plausible."""
    why = implausible_time(moment, received_at, limits)
    return None if why is None else time_error(moment, why, location=location, header=header)


# ---------------------------------------------------------------- implausible values (issue 16 point 3)
#
# A value no patient can have (a diastolic pressure of 400 mmHg) is a fault of the cuff, the lead or the
# monitor, not a measurement. It is stored all the same — nothing a monitor sends is silently dropped or
# changed (design.md) — but marked: the reading row carries the reason (VitalReading.implausible_reason),
# FHIR marks the Observation (interpretation + note), the chart shows it struck out instead of plotting
# it, and the ACK is an AA with a warning ERR (severity W) naming the OBX-5 that carried it.
#
# The limits are the chairside data-entry plausibility ranges (clinical/vitals.py DEFAULT_PLAUSIBILITY),
# the same that refuse a typed "SBP 1420": one definition of "cannot be a real value" for the monitor and
# the keyboard. They are configurable defaults, not clinical thresholds, and not in the reference (their
# ``source`` says so); a kind without a range of its own is bounded by what its definition allows.


def _plausible_ranges() -> dict[VitalKind, tuple[float, float, str, str]]:
    """(low, high, unit, source) per monitored kind, from clinical/vitals.py DEFAULT_PLAUSIBILITY."""
    from ketaclinic.clinical.vitals import DEFAULT_PLAUSIBILITY, VitalField

    def of(field: VitalField, unit: str) -> tuple[float, float, str, str]:
        r = DEFAULT_PLAUSIBILITY[field]
        return (r.low, r.high, unit, f"clinical/vitals.py DEFAULT_PLAUSIBILITY[{field.value}]: {r.source}")

    sbp, dbp = DEFAULT_PLAUSIBILITY[VitalField.SBP], DEFAULT_PLAUSIBILITY[VitalField.DBP]
    return {
        VitalKind.SBP: of(VitalField.SBP, "mmHg"),
        VitalKind.DBP: of(VitalField.DBP, "mmHg"),
        # A mean pressure lies between the diastolic and the systolic pressure (its definition): bounded by
        # the diastolic range's low end and the systolic range's high end.
        VitalKind.MAP: (
            dbp.low,
            sbp.high,
            "mmHg",
            "between DEFAULT_PLAUSIBILITY[dbp].low and [sbp].high (a mean lies between its extremes)",
        ),
        VitalKind.HR: of(VitalField.HR, "/min"),
        # A pulse rate counts the same beats as the heart rate: the heart-rate range.
        VitalKind.PULSE: of(VitalField.HR, "/min"),
        VitalKind.SPO2: of(VitalField.SPO2, "%"),
        VitalKind.RR: of(VitalField.RR, "/min"),
        VitalKind.TEMP_C: of(VitalField.TEMP, "°C"),
        # A percentage lies between 0 and 100 (definition; the reference gives no perfusion-index range).
        VitalKind.PERFUSION_INDEX: (0.0, 100.0, "%", "a percentage (definition), interop.md §3.3"),
    }


_RANGES: dict[VitalKind, tuple[float, float, str, str]] = {}


def implausible_value(kind: VitalKind, value: float) -> str | None:
    """Why ``value`` (in the kind's canonical unit, mdc.KINDS) cannot be a real measurement, or None.

    Kinds without a range (etCO2, weight, height, BMI) are only refused below zero: none of them can be
    negative."""
    if not _RANGES:
        _RANGES.update(_plausible_ranges())
    found = _RANGES.get(kind)
    label = _KIND_LABEL.get(kind, kind.value)
    if found is None:
        return f"{label} {value:g} is below zero, which it cannot be" if value < 0 else None
    low, high, unit, _source = found
    if low <= value <= high:
        return None
    return f"{label} {value:g} {unit} is outside the plausible range {low:g}–{high:g} {unit}"


def plausible_range_source(kind: VitalKind) -> str:
    """Where the range of ``kind`` comes from (for documentation and tests)."""
    if not _RANGES:
        _RANGES.update(_plausible_ranges())
    found = _RANGES.get(kind)
    return found[3] if found else "not negative (definition)"


_KIND_LABEL: Final = {
    VitalKind.SBP: "SBP",
    VitalKind.DBP: "DBP",
    VitalKind.MAP: "MAP",
    VitalKind.HR: "HR",
    VitalKind.PULSE: "Pulse",
    VitalKind.SPO2: "SpO2",
    VitalKind.RR: "RR",
    VitalKind.ETCO2: "etCO2",
    VitalKind.TEMP_C: "Temperature",
    VitalKind.WEIGHT_KG: "Weight",
    VitalKind.HEIGHT_CM: "Height",
    VitalKind.BMI: "BMI",
    VitalKind.PERFUSION_INDEX: "Perfusion index",
}
