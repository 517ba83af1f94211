"""Vital-sign readings: validation, the chairside one-line parser, and reading cadence.

Pure: no Django, no I/O. The alert rules that judge a valid reading live in ``alerts.py``.

Two kinds of numbers live here and must not be confused:

* Plausibility ranges (``DEFAULT_PLAUSIBILITY``) catch typing errors ("SBP 1420"). They are NOT clinical
  thresholds and are not in the reference; they are configurable defaults marked ``confirmed=False``.
  The MOAA/S range 0–5 is the scale's own range (clinical.md §8).
* Reading cadence defaults come from the reference: IV every 10 min during the infusion and every 15 min
  after (Riva-Posse 2018, clinical.md §7.1); esketamine before dosing, at ~40 min and before discharge
  (label/REMS, clinical.md §2.3, §7.1). Overdue grace and the "~40 min" window are unconfirmed defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final


class Treatment(StrEnum):
    """What the session gives; selects defaults for cadence, gate and discharge."""

    KETAMINE_IV = "ketamine_iv"
    ESKETAMINE_NASAL = "esketamine_nasal"
    KETAMINE_OTHER = "ketamine_other"  # IM / SC / sublingual / oral: no cadence in the reference


class VitalField(StrEnum):
    SBP = "sbp"
    DBP = "dbp"
    HR = "hr"
    SPO2 = "spo2"
    RR = "rr"
    TEMP = "temp"
    MOAAS = "moaas"
    CADSS = "cadss"


FIELD_LABELS: Final[Mapping[VitalField, str]] = {
    VitalField.SBP: "SBP",
    VitalField.DBP: "DBP",
    VitalField.HR: "HR",
    VitalField.SPO2: "SpO2",
    VitalField.RR: "RR",
    VitalField.TEMP: "Temperature",
    VitalField.MOAAS: "MOAA/S",
    VitalField.CADSS: "CADSS",
}

#: The five vitals a chairside reading must carry unless the caller says otherwise.
CORE_VITALS: Final[frozenset[VitalField]] = frozenset(
    {VitalField.SBP, VitalField.DBP, VitalField.HR, VitalField.SPO2, VitalField.RR}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VitalReading:
    """One set of observations at one moment. Missing measurements are ``None``."""

    taken_at: datetime
    sbp_mmhg: int | None = None
    dbp_mmhg: int | None = None
    hr_bpm: int | None = None
    spo2_pct: int | None = None
    rr_per_min: int | None = None
    temp_c: float | None = None
    moaas: int | None = None
    cadss_total: int | None = None

    def value(self, which: VitalField) -> float | None:
        return {
            VitalField.SBP: self.sbp_mmhg,
            VitalField.DBP: self.dbp_mmhg,
            VitalField.HR: self.hr_bpm,
            VitalField.SPO2: self.spo2_pct,
            VitalField.RR: self.rr_per_min,
            VitalField.TEMP: self.temp_c,
            VitalField.MOAAS: self.moaas,
            VitalField.CADSS: self.cadss_total,
        }[which]

    @property
    def bp_text(self) -> str:
        """'184/96', with '?' for a missing half."""
        sbp = "?" if self.sbp_mmhg is None else str(self.sbp_mmhg)
        dbp = "?" if self.dbp_mmhg is None else str(self.dbp_mmhg)
        return f"{sbp}/{dbp}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlausibleRange:
    """Inclusive data-entry plausibility range. Not a clinical threshold."""

    low: float
    high: float
    unit: str
    source: str
    confirmed: bool


_PLAUSIBILITY_SOURCE: Final = (
    "not in reference: data-entry plausibility default (catches typing errors, not a clinical threshold); "
    "configurable"
)


def _entry_check(low: float, high: float, unit: str) -> PlausibleRange:
    return PlausibleRange(low=low, high=high, unit=unit, source=_PLAUSIBILITY_SOURCE, confirmed=False)


#: Default plausibility ranges. Only MOAA/S (the scale's own 0–5 range) comes from the reference.
DEFAULT_PLAUSIBILITY: Final[Mapping[VitalField, PlausibleRange]] = {
    VitalField.SBP: _entry_check(40, 300, "mmHg"),
    VitalField.DBP: _entry_check(20, 200, "mmHg"),
    VitalField.HR: _entry_check(20, 250, "bpm"),
    VitalField.SPO2: _entry_check(50, 100, "%"),
    VitalField.RR: _entry_check(0, 60, "/min"),
    VitalField.TEMP: _entry_check(30.0, 45.0, "°C"),
    VitalField.MOAAS: PlausibleRange(
        low=0, high=5, unit="", source="clinical.md §8 (MOAA/S 0–5, Spravato label)", confirmed=True
    ),
    VitalField.CADSS: PlausibleRange(
        low=0,
        high=92,
        unit="",
        source="clinical.md §8 (23-item CADSS 0–92, derived 23×4) [U exact]",
        confirmed=False,
    ),
}


class VitalsValidationError(ValueError):
    """A reading (or a chairside line) has problems. ``errors`` names every bad field at once."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(self.errors.values()))


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def reading_errors(
    reading: VitalReading,
    *,
    required: frozenset[VitalField] = CORE_VITALS,
    ranges: Mapping[VitalField, PlausibleRange] = DEFAULT_PLAUSIBILITY,
) -> dict[str, str]:
    """Every problem with ``reading`` as field -> message; empty when the reading is plausible."""
    errors: dict[str, str] = {}
    for which in VitalField:
        value = reading.value(which)
        label = FIELD_LABELS[which]
        if value is None:
            if which in required:
                errors[which.value] = f"{label} missing"
            continue
        bounds = ranges.get(which)
        if bounds is not None and not bounds.low <= value <= bounds.high:
            unit = f" {bounds.unit}" if bounds.unit else ""
            errors[which.value] = (
                f"{label} {_fmt(value)} is outside {_fmt(bounds.low)}–{_fmt(bounds.high)}{unit}"
            )
    sbp, dbp = reading.sbp_mmhg, reading.dbp_mmhg
    if sbp is not None and dbp is not None and dbp >= sbp and VitalField.DBP.value not in errors:
        errors[VitalField.DBP.value] = f"DBP {dbp} must be below SBP {sbp}"
    return errors


def validate_reading(
    reading: VitalReading,
    *,
    required: frozenset[VitalField] = CORE_VITALS,
    ranges: Mapping[VitalField, PlausibleRange] = DEFAULT_PLAUSIBILITY,
) -> VitalReading:
    """Return ``reading`` unchanged, or raise :class:`VitalsValidationError` naming every bad field."""
    errors = reading_errors(reading, required=required, ranges=ranges)
    if errors:
        raise VitalsValidationError(errors)
    return reading


# --------------------------------------------------------------------------- chairside line parser

_LABELS: Final[Mapping[str, VitalField]] = {
    "bp": VitalField.SBP,  # BP label: value is "sbp/dbp"
    "hr": VitalField.HR,
    "p": VitalField.HR,
    "pulse": VitalField.HR,
    "spo2": VitalField.SPO2,
    "sat": VitalField.SPO2,
    "sats": VitalField.SPO2,
    "o2": VitalField.SPO2,
    "rr": VitalField.RR,
    "resp": VitalField.RR,
    "t": VitalField.TEMP,
    "temp": VitalField.TEMP,
    "moaas": VitalField.MOAAS,
    "moaa/s": VitalField.MOAAS,
    "cadss": VitalField.CADSS,
}
_BP_RE: Final = re.compile(r"^(\d{1,3})/(\d{1,3})$")
_INT_RE: Final = re.compile(r"^\d{1,4}%?$")
_DECIMAL_RE: Final = re.compile(r"^\d{1,3}(?:[.,]\d+)?$")
# "hr76", "spo297", "t36.8": a label glued to a value that starts with a digit; longest labels first.
_GLUED_RE: Final = re.compile(
    r"^(" + "|".join(re.escape(k) for k in sorted(_LABELS, key=len, reverse=True)) + r")(\d.*)$"
)
_POSITIONAL_ORDER: Final = (VitalField.HR, VitalField.SPO2, VitalField.RR)


def _tokens(line: str) -> list[str]:
    text = line.strip().lower()
    text = re.sub(r"\s*/\s*", "/", text)  # "142 / 88" -> "142/88"
    text = re.sub(r"\s*[:=]\s*", ":", text)  # "hr : 76", "hr=76" -> "hr:76"
    text = re.sub(r"[;]|,(?=\s|$)", " ", text)  # "142/88, 76; 97" -> separators; "36,8" stays a decimal
    return text.split()


def parse_chairside_line(
    line: str,
    *,
    taken_at: datetime,
    required: frozenset[VitalField] = CORE_VITALS,
    ranges: Mapping[VitalField, PlausibleRange] = DEFAULT_PLAUSIBILITY,
) -> VitalReading:
    """Parse one chairside line into a validated :class:`VitalReading`.

    Format: ``BP HR SpO2 RR`` positionally (``"142/88 76 97 14"``) and/or labelled parts in any order:
    ``bp 142/88``, ``hr 76``, ``spo2 97`` (``97%`` accepted), ``rr 14``, ``moaas 4``, ``t 36.8``
    (°C; ``36,8`` accepted), ``cadss 12``. Labels may be glued or joined (``hr76``, ``hr:76``, ``hr=76``).
    Extra spaces, commas and semicolons between parts are ignored. A bare number fills the first of
    HR, SpO2, RR not yet given, so ``"hr 76 97 14"`` reads SpO2 97 and RR 14. Every problem (unreadable
    part, field given twice, missing field, implausible value) is reported together in
    :class:`VitalsValidationError`.
    """
    errors: dict[str, str] = {}
    values: dict[VitalField, float] = {}
    tokens = _tokens(line)
    if not tokens:
        raise VitalsValidationError({"line": "Empty line: type e.g. '142/88 76 97 14' (BP HR SpO2 RR)"})

    def put(which: VitalField, raw: str) -> None:
        label = FIELD_LABELS[which]
        if which in values or which.value in errors:
            errors[which.value] = f"{label} given twice"
        elif which is VitalField.TEMP:
            if _DECIMAL_RE.match(raw):
                values[which] = float(raw.replace(",", "."))
            else:
                errors[which.value] = f"Temperature '{raw}' is not a number like 36.8"
        elif _INT_RE.match(raw) and (which is VitalField.SPO2 or not raw.endswith("%")):
            values[which] = int(raw.rstrip("%"))
        else:
            errors[which.value] = f"{label} '{raw}' is not a whole number"

    def put_bp(raw: str) -> None:
        match = _BP_RE.match(raw)
        if VitalField.SBP in values or "bp" in errors:
            errors["bp"] = "BP given twice"
        elif match is None:
            errors["bp"] = f"BP '{raw}' is not like 142/88"
        else:
            values[VitalField.SBP] = int(match.group(1))
            values[VitalField.DBP] = int(match.group(2))

    def put_any(which: VitalField, raw: str) -> None:
        # The "bp" label maps to SBP and carries both halves.
        put_bp(raw) if which is VitalField.SBP else put(which, raw)

    i = 0
    while i < len(tokens):
        token = tokens[i]
        label, colon, joined = token.partition(":")
        glued = _GLUED_RE.match(token)
        if label in _LABELS and joined:
            put_any(_LABELS[label], joined)
        elif label in _LABELS:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is None or following.partition(":")[0] in _LABELS or colon:
                which = _LABELS[label]
                errors["bp" if which is VitalField.SBP else which.value] = f"'{label}' has no value after it"
            else:
                put_any(_LABELS[label], following)
                i += 1
        elif glued is not None:
            put_any(_LABELS[glued.group(1)], glued.group(2))
        elif "/" in token:
            put_bp(token)
        elif _INT_RE.match(token):
            slot = next((f for f in _POSITIONAL_ORDER if f not in values and f.value not in errors), None)
            if slot is None:
                errors[f"extra:{token}"] = f"Unexpected value '{token}': label it (e.g. 'moaas 4', 't 36.8')"
            else:
                put(slot, token)
        else:
            errors[f"unreadable:{token}"] = f"Could not read '{token}'"
        i += 1

    reading = VitalReading(
        taken_at=taken_at,
        sbp_mmhg=_as_int(values.get(VitalField.SBP)),
        dbp_mmhg=_as_int(values.get(VitalField.DBP)),
        hr_bpm=_as_int(values.get(VitalField.HR)),
        spo2_pct=_as_int(values.get(VitalField.SPO2)),
        rr_per_min=_as_int(values.get(VitalField.RR)),
        temp_c=values.get(VitalField.TEMP),
        moaas=_as_int(values.get(VitalField.MOAAS)),
        cadss_total=_as_int(values.get(VitalField.CADSS)),
    )
    more = reading_errors(reading, required=required, ranges=ranges)
    if "bp" in errors:  # an unreadable BP already has its message; don't add "SBP missing" on top
        more.pop(VitalField.SBP.value, None)
        more.pop(VitalField.DBP.value, None)
    for key, message in more.items():
        errors.setdefault(key, message)
    if errors:
        raise VitalsValidationError(errors)
    return reading


def _as_int(value: float | None) -> int | None:
    return None if value is None else int(value)


# --------------------------------------------------------------------------- cadence

DEFAULT_OVERDUE_GRACE_MIN: Final = 5
OVERDUE_GRACE_SOURCE: Final = (
    "not in reference: default grace before a reading counts as overdue; configurable"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalCadence:
    """Readings every N minutes during the infusion and every M minutes after it (IV)."""

    during_infusion_every_min: int = 10
    after_infusion_every_min: int = 15
    grace_min: int = DEFAULT_OVERDUE_GRACE_MIN
    source: str = "clinical.md §7.1: Riva-Posse et al., J Affect Disord 2018 (every 10 min during, 15 after)"
    confirmed: bool = True
    grace_confirmed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    minutes_after_dose: int
    label: str
    source: str
    confirmed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointCadence:
    """A baseline before dosing, then readings at fixed times after the first dose (esketamine).

    A checkpoint counts as done by any reading taken at or after ``minutes_after_dose - window_min``;
    it is overdue once ``minutes_after_dose + window_min`` has passed without one. After the last
    checkpoint, ``then_every_min`` (if set) asks for a reading every N minutes until discharge.
    """

    checkpoints: tuple[Checkpoint, ...]
    window_min: int = DEFAULT_OVERDUE_GRACE_MIN
    window_confirmed: bool = False
    then_every_min: int | None = None


ESKETAMINE_CADENCE: Final = CheckpointCadence(
    checkpoints=(
        Checkpoint(
            minutes_after_dose=40,
            label="~40 min post-dose",
            source="clinical.md §2.3 (label §5.6: BP ~40 min post-dose), §7.1",
            confirmed=True,
        ),
        Checkpoint(
            minutes_after_dose=120,
            label="before discharge",
            source="clinical.md §2.4 PMF (BP prior to completion), §2.3 (≥2 h observation)",
            confirmed=True,
        ),
    ),
)
IV_CADENCE: Final = IntervalCadence()
Cadence = IntervalCadence | CheckpointCadence


def default_cadence(treatment: Treatment) -> Cadence:
    """The reference's cadence for ``treatment``; other routes must set one in their protocol."""
    if treatment is Treatment.KETAMINE_IV:
        return IV_CADENCE
    if treatment is Treatment.ESKETAMINE_NASAL:
        return ESKETAMINE_CADENCE
    raise ValueError(f"The reference gives no reading cadence for {treatment.value}: set one in the protocol")


@dataclass(frozen=True, slots=True, kw_only=True)
class DueReading:
    label: str
    due_at: datetime
    grace: timedelta
    source: str
    confirmed: bool

    @property
    def overdue_after(self) -> datetime:
        return self.due_at + self.grace


def next_reading_due(
    *,
    cadence: Cadence,
    reading_times: Sequence[datetime],
    now: datetime,
    dose_started_at: datetime | None,
    infusion_ended_at: datetime | None = None,
    discharged_at: datetime | None = None,
) -> DueReading | None:
    """The next reading the protocol asks for, or ``None`` when nothing more is due.

    Before dosing, a baseline is due ``now`` until one exists. ``infusion_ended_at`` is the actual (or,
    while running, the planned) end of an IV infusion; ``None`` means still running with no planned end.
    """
    if discharged_at is not None and discharged_at <= now:
        return None
    times = sorted(reading_times)
    if dose_started_at is None or now < dose_started_at:
        if times:
            return None
        return DueReading(
            label="baseline before dosing",
            due_at=now,
            grace=timedelta(0),
            source="clinical.md §2.3, §7.1 (pre-dose reading)",
            confirmed=True,
        )
    if isinstance(cadence, IntervalCadence):
        return _next_interval(cadence, times, dose_started_at, infusion_ended_at)
    return _next_checkpoint(cadence, times, dose_started_at)


def _next_interval(
    cadence: IntervalCadence, times: list[datetime], start: datetime, end: datetime | None
) -> DueReading:
    anchor = max([start, *times])
    during = anchor + timedelta(minutes=cadence.during_infusion_every_min)
    if end is None or during <= end:
        due, label = during, f"every {cadence.during_infusion_every_min} min during infusion"
    else:
        due = anchor + timedelta(minutes=cadence.after_infusion_every_min)
        label = f"every {cadence.after_infusion_every_min} min after infusion"
    return DueReading(
        label=label,
        due_at=due,
        grace=timedelta(minutes=cadence.grace_min),
        source=cadence.source,
        confirmed=cadence.confirmed,
    )


def _next_checkpoint(cadence: CheckpointCadence, times: list[datetime], start: datetime) -> DueReading | None:
    window = timedelta(minutes=cadence.window_min)
    for checkpoint in sorted(cadence.checkpoints, key=lambda c: c.minutes_after_dose):
        due = start + timedelta(minutes=checkpoint.minutes_after_dose)
        if not any(t >= due - window for t in times):
            return DueReading(
                label=checkpoint.label,
                due_at=due,
                grace=window,
                source=checkpoint.source,
                confirmed=checkpoint.confirmed,
            )
    if cadence.then_every_min is None:
        return None
    anchor = max([start, *times])
    return DueReading(
        label=f"every {cadence.then_every_min} min until discharge",
        due_at=anchor + timedelta(minutes=cadence.then_every_min),
        grace=window,
        source="protocol setting",
        confirmed=True,
    )


def overdue(*, due: DueReading | None, now: datetime) -> bool:
    """True when ``due`` exists and ``now`` is past its due time plus grace (the boundary is not late)."""
    return due is not None and now > due.overdue_after


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes from ``start`` to ``end``, rounded down (negative when ``end`` is earlier)."""
    return int((end - start).total_seconds() // 60)


__all__ = [
    "CORE_VITALS",
    "DEFAULT_PLAUSIBILITY",
    "ESKETAMINE_CADENCE",
    "IV_CADENCE",
    "Cadence",
    "Checkpoint",
    "CheckpointCadence",
    "DueReading",
    "IntervalCadence",
    "PlausibleRange",
    "Treatment",
    "VitalField",
    "VitalReading",
    "VitalsValidationError",
    "default_cadence",
    "minutes_between",
    "next_reading_due",
    "overdue",
    "parse_chairside_line",
    "reading_errors",
    "validate_reading",
]
