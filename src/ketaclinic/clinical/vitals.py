"""Vital-sign readings: validation, the chairside one-line parser, and reading cadence.

Pure: no Django, no I/O. The alert rules that judge a valid reading live in ``alerts.py``.

Two kinds of numbers live here and must not be confused:

* Plausibility ranges (``DEFAULT_PLAUSIBILITY``) catch typing errors ("SBP 1420"). They are NOT clinical
  thresholds and are not in the reference; they are configurable defaults marked ``confirmed=False``.
  The MOAA/S range 0–5 is the scale's own range (clinical.md §8).
* Reading cadence defaults come from the reference: IV every 10 min during the infusion and every 15 min
  after (Riva-Posse 2018, clinical.md §7.1); esketamine before dosing, at ~40 min and before discharge
  (label/REMS, clinical.md §2.3, §7.1). Overdue grace and the "~40 min" window are unconfirmed defaults.

Cadence for the routes the reference gives no cadence for (issue 13, point 7: "IM and sublingual sessions get
no vital-sign reminders; an IM dose peaks at 5–15 min"). Every route a protocol can have gets a default, so
``default_cadence`` never raises and every session is reminded and flagged when a reading is missed
(``BolusCadence``: a closer watch for the first part after the dose, then a steady interval until discharge).
The intervals are the reference's own clinic practice, "every 10–15 min" (clinical.md §7.1, low-grade); how
long the close watch lasts follows when the drug peaks (pk.md §1d). All are clinic defaults, unconfirmed:

* IM (and SC, which the reference does not describe: treated as the faster injection): every 10 min for the
  first 60 min, then every 15 — IM Cmax at 5–15 min, peak effect ~20 min (pk.md §1d: Clements 1982 [2°]),
  and the BP rise of an infusion peaks around 30–40 min (clinical.md §7.2), so the first hour is watched as
  closely as an IV infusion.
* Sublingual: every 15 min until discharge — absorption is slower and smaller (F ~30 %, Tmax median 45 min,
  range 15–60 min; clinical.md §3.1, pk.md §1d); the close-watch window is the first 60 min (Tmax range), used
  when a protocol sets its own "during" interval.
* Oral: every 15 min until discharge; window 120 min (Tmax ~1 h, 0.96 ± 0.8 h; pk.md §1d).
* A racemic route not named (``KETAMINE_OTHER``): as IM, the closest watch of the non-IV routes.

A protocol's own monitoring plan (``MonitoringPlan.vitals_during_dose_every_min`` and
``vitals_after_dose_every_min``) replaces the route default (``protocol_cadence``); a clinic's per-protocol
setting replaces that (treatment/session_settings.py). Both are bounded by ``DOSING_INTERVAL_LIMIT`` and
``RECOVERY_INTERVAL_LIMIT``: a reading interval may be shortened but not stretched past what the reference's
series and clinics use (§7.1), so a setting cannot switch the reminders off by making them hours apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final


class Treatment(StrEnum):
    """What the session gives; selects defaults for cadence, gate and discharge."""

    KETAMINE_IV = "ketamine_iv"
    ESKETAMINE_NASAL = "esketamine_nasal"
    KETAMINE_IM = "ketamine_im"
    KETAMINE_SUBCUTANEOUS = "ketamine_subcutaneous"
    KETAMINE_SUBLINGUAL = "ketamine_sublingual"
    KETAMINE_ORAL = "ketamine_oral"
    KETAMINE_OTHER = "ketamine_other"  # a racemic route not named above: cadence as IM (the closest watch)


_ROUTE_TREATMENTS: Final[Mapping[str, Treatment]] = {
    "iv": Treatment.KETAMINE_IV,
    "im": Treatment.KETAMINE_IM,
    "subcutaneous": Treatment.KETAMINE_SUBCUTANEOUS,
    "sublingual": Treatment.KETAMINE_SUBLINGUAL,
    "oral": Treatment.KETAMINE_ORAL,
}


def treatment_for(*, drug: str, route: str) -> Treatment:
    """What a session gives, from its drug ("ketamine", "esketamine") and route (clinical/conditions.Route)."""
    if drug == "esketamine":
        return Treatment.ESKETAMINE_NASAL
    return _ROUTE_TREATMENTS.get(route, Treatment.KETAMINE_OTHER)


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


#: A temperature is kept to 0.1 °C; a reading with more decimals is refused, never rounded without a word.
TEMP_PLACES: Final = 1


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
        elif which is VitalField.TEMP and round(value, TEMP_PLACES) != value:
            errors[which.value] = (
                f"{label} {_fmt(value)} °C has more decimals than the record keeps ({TEMP_PLACES}): "
                f"round it yourself, e.g. {round(value, TEMP_PLACES):.{TEMP_PLACES}f}"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class BolusCadence:
    """A dose given at once (IM, SC, sublingual, oral): a reading every ``early_every_min`` for the first
    ``early_window_min`` after the first dose (while the drug is absorbed and peaks), then every
    ``then_every_min`` until discharge."""

    early_every_min: int
    early_window_min: int
    then_every_min: int
    source: str
    confirmed: bool
    grace_min: int = DEFAULT_OVERDUE_GRACE_MIN
    grace_confirmed: bool = False


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

_CLINICS_EVERY_10_15: Final = "clinical.md §7.1: clinics read every 10–15 min (low-grade)"
IM_CADENCE: Final = BolusCadence(
    early_every_min=10,
    early_window_min=60,
    then_every_min=15,
    source=(
        f"clinic default, unconfirmed: {_CLINICS_EVERY_10_15}; every 10 min for the first hour because an IM "
        "dose peaks at 5–15 min (pk.md §1d, Clements 1982 [2°]) and BP rises peak by 30–40 min (§7.2)"
    ),
    confirmed=False,
)
SC_CADENCE: Final = replace(
    IM_CADENCE,
    source=(
        "clinic default, unconfirmed: the reference gives no SC absorption or cadence; watched as an IM "
        f"injection (every 10 min for the first hour, then 15; {_CLINICS_EVERY_10_15})"
    ),
)
SUBLINGUAL_CADENCE: Final = BolusCadence(
    early_every_min=15,
    early_window_min=60,
    then_every_min=15,
    source=(
        f"clinic default, unconfirmed: {_CLINICS_EVERY_10_15}; every 15 min because sublingual absorption is "
        "slower and smaller (F ~30 %, clinical.md §3.1; Tmax median 45 min, range 15–60, pk.md §1d)"
    ),
    confirmed=False,
)
ORAL_CADENCE: Final = BolusCadence(
    early_every_min=15,
    early_window_min=120,
    then_every_min=15,
    source=(
        f"clinic default, unconfirmed: {_CLINICS_EVERY_10_15}; oral Tmax about 1 h (0.96 ± 0.8 h, pk.md §1d)"
    ),
    confirmed=False,
)
OTHER_ROUTE_CADENCE: Final = replace(
    IM_CADENCE,
    source=(
        "clinic default, unconfirmed: route not named; watched as an IM injection, the closest watch of the "
        f"non-IV routes ({_CLINICS_EVERY_10_15})"
    ),
)
Cadence = IntervalCadence | CheckpointCadence | BolusCadence

_DEFAULT_CADENCES: Final[Mapping[Treatment, Cadence]] = {
    Treatment.KETAMINE_IV: IV_CADENCE,
    Treatment.ESKETAMINE_NASAL: ESKETAMINE_CADENCE,
    Treatment.KETAMINE_IM: IM_CADENCE,
    Treatment.KETAMINE_SUBCUTANEOUS: SC_CADENCE,
    Treatment.KETAMINE_SUBLINGUAL: SUBLINGUAL_CADENCE,
    Treatment.KETAMINE_ORAL: ORAL_CADENCE,
    Treatment.KETAMINE_OTHER: OTHER_ROUTE_CADENCE,
}
assert set(_DEFAULT_CADENCES) == set(Treatment)


def default_cadence(treatment: Treatment) -> Cadence:
    """The default reading cadence for ``treatment``: the reference's for IV and esketamine, a clinic default
    (unconfirmed, see the module docstring) for every other route. Never raises."""
    return _DEFAULT_CADENCES[treatment]


@dataclass(frozen=True, slots=True, kw_only=True)
class IntervalLimit:
    """How short and how long a reading interval a protocol or a clinic may set (inclusive, minutes)."""

    shortest_min: int
    longest_min: int
    source: str
    confirmed: bool


DOSING_INTERVAL_LIMIT: Final = IntervalLimit(
    shortest_min=5,
    longest_min=15,
    source=(
        "clinical.md §7.1: every published series reads every 10 min during dosing and clinics every 10–15 "
        "min, so 15 is the longest; 5 is a clinic default, unconfirmed (shorter asks for readings faster "
        "than a cuff cycles; a continuous monitor sends its own readings)"
    ),
    confirmed=False,
)
RECOVERY_INTERVAL_LIMIT: Final = IntervalLimit(
    shortest_min=5,
    longest_min=30,
    source=(
        "clinic default, unconfirmed: clinical.md §7.1 reads every 15 min after an infusion (Emory) and every "
        "10 min for 30 min after (China series); 30 min, twice the Emory interval, is the longest allowed"
    ),
    confirmed=False,
)


def interval_problem(minutes: int, limit: IntervalLimit) -> str | None:
    """Why ``minutes`` is not an allowed reading interval under ``limit``, or ``None``."""
    if minutes > limit.longest_min:
        return f"every {minutes} min is longer than the longest allowed, {limit.longest_min} min ({limit.source})"
    if minutes < limit.shortest_min:
        return f"every {minutes} min is shorter than the shortest allowed, {limit.shortest_min} min ({limit.source})"
    return None


def protocol_cadence(
    treatment: Treatment,
    *,
    during_every_min: int | None = None,
    after_every_min: int | None = None,
    source: str = "",
) -> Cadence:
    """The cadence a protocol's monitoring plan asks for: its "during" and "after" intervals over the route
    default (IV: during the infusion / after it; IM, SC, sublingual, oral: the close-watch window after the
    dose / until discharge; esketamine keeps the label's checkpoints, and "after" adds a reading every N min
    after the last one). A value equal to the default keeps the default's source and confirmation.

    Raises ``ValueError`` for an interval outside ``DOSING_INTERVAL_LIMIT`` / ``RECOVERY_INTERVAL_LIMIT``
    (protocol validation refuses those before they are stored)."""
    problems = [
        f"{name}: {problem}"
        for name, value, limit in (
            ("vitals_during_dose_every_min", during_every_min, DOSING_INTERVAL_LIMIT),
            ("vitals_after_dose_every_min", after_every_min, RECOVERY_INTERVAL_LIMIT),
        )
        if value is not None and (problem := interval_problem(value, limit)) is not None
    ]
    if problems:
        raise ValueError("; ".join(problems))
    base = default_cadence(treatment)
    label = f"protocol monitoring plan: {source}" if source else "protocol monitoring plan"
    if isinstance(base, CheckpointCadence):
        if after_every_min is None or after_every_min == base.then_every_min:
            return base
        return replace(base, then_every_min=after_every_min)
    if isinstance(base, IntervalCadence):
        during = during_every_min or base.during_infusion_every_min
        after = after_every_min or base.after_infusion_every_min
        if (during, after) == (base.during_infusion_every_min, base.after_infusion_every_min):
            return base
        return replace(
            base,
            during_infusion_every_min=during,
            after_infusion_every_min=after,
            source=label,
            confirmed=False,
        )
    early = during_every_min or base.early_every_min
    then = after_every_min or base.then_every_min
    if (early, then) == (base.early_every_min, base.then_every_min):
        return base
    return replace(base, early_every_min=early, then_every_min=then, source=label, confirmed=False)


def describe_cadence(cadence: Cadence) -> str:
    """The cadence in words for staff pages, e.g. 'every 10 min for the first 60 min after the dose, then every
    15 min until discharge'."""
    if isinstance(cadence, IntervalCadence):
        return (
            f"every {cadence.during_infusion_every_min} min during the infusion, "
            f"every {cadence.after_infusion_every_min} min after it"
        )
    if isinstance(cadence, BolusCadence):
        if cadence.early_every_min == cadence.then_every_min:
            return f"every {cadence.then_every_min} min until discharge"
        return (
            f"every {cadence.early_every_min} min for the first {cadence.early_window_min} min after the dose, "
            f"then every {cadence.then_every_min} min until discharge"
        )
    points = ", ".join(c.label for c in sorted(cadence.checkpoints, key=lambda c: c.minutes_after_dose))
    then = f", then every {cadence.then_every_min} min until discharge" if cadence.then_every_min else ""
    return f"before dosing, {points}{then}"


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
    if isinstance(cadence, BolusCadence):
        return _next_bolus(cadence, times, dose_started_at)
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


def _next_bolus(cadence: BolusCadence, times: list[datetime], start: datetime) -> DueReading:
    anchor = max([start, *times])
    early = anchor + timedelta(minutes=cadence.early_every_min)
    steady = f"every {cadence.then_every_min} min until discharge"
    if early <= start + timedelta(minutes=cadence.early_window_min):
        due = early
        label = (
            steady
            if cadence.early_every_min == cadence.then_every_min
            else f"every {cadence.early_every_min} min in the first {cadence.early_window_min} min after the dose"
        )
    else:
        due, label = anchor + timedelta(minutes=cadence.then_every_min), steady
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
    "DOSING_INTERVAL_LIMIT",
    "ESKETAMINE_CADENCE",
    "IM_CADENCE",
    "IV_CADENCE",
    "ORAL_CADENCE",
    "OTHER_ROUTE_CADENCE",
    "RECOVERY_INTERVAL_LIMIT",
    "SC_CADENCE",
    "SUBLINGUAL_CADENCE",
    "BolusCadence",
    "Cadence",
    "Checkpoint",
    "CheckpointCadence",
    "DueReading",
    "IntervalCadence",
    "IntervalLimit",
    "PlausibleRange",
    "Treatment",
    "VitalField",
    "VitalReading",
    "VitalsValidationError",
    "default_cadence",
    "describe_cadence",
    "interval_problem",
    "minutes_between",
    "next_reading_due",
    "overdue",
    "parse_chairside_line",
    "protocol_cadence",
    "reading_errors",
    "treatment_for",
    "validate_reading",
]
