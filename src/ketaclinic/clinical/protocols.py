"""Treatment protocols: the types, JSON (de)serialisation, validation and copy/edit of a protocol.

Pure: no Django, no I/O. The built-in protocols (data, each value with its source) live in
``protocol_library.py``; this module holds the shapes they are made of.

A protocol is a frozen value. The app copies a built-in protocol (``copy_protocol``), lets the clinic edit
the JSON form (``Protocol.to_dict`` / ``protocol_from_dict``), and stores the validated result with its own
id and version. ``protocol_from_dict`` names every bad field at once (``ProtocolValidationError.errors``,
keyed by a path such as ``phases[0].dose.amount``).

Some rules cannot be edited away because they come from the esketamine label (clinical.md §2.1, §2.3):
esketamine doses are only 28, 56 or 84 mg (28-mg devices), and the post-dose observation is at least
120 minutes with BP before dosing, at ~40 minutes and before discharge, and pulse oximetry.

Derived rule (documented, editable per phase): the minimum spacing between two sessions of a phase is the
regular interval rounded down, minus one day, and at least one day (``derived_min_spacing_days``):
twice weekly (every 3.5 days) → ≥2 days apart; three times weekly → ≥1 day; weekly → ≥6 days;
every 2 weeks → ≥13 days. The reference gives no spacing rule; this keeps a moved session from landing
on top of the next one while allowing a one-day shift.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass, replace
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, Final, Union, get_args, get_origin, get_type_hints

from ketaclinic.clinical.conditions import DRUG_ROUTES, ROUTE_LABELS, Drug, Indication, Route
from ketaclinic.clinical.dose_limits import (
    UNDILUTED_MG_ML,
    UNDILUTED_SOURCE,
    reference_limits,
    widened_beyond_reference,
)
from ketaclinic.clinical.dose_types import (  # re-exported: protocols are made of these
    DOSE_UNITS as DOSE_UNITS,
)
from ketaclinic.clinical.dose_types import ESKETAMINE_BP_CHECK_MIN as ESKETAMINE_BP_CHECK_MIN
from ketaclinic.clinical.dose_types import ESKETAMINE_DEVICE_MG as ESKETAMINE_DEVICE_MG
from ketaclinic.clinical.dose_types import ESKETAMINE_LABEL_DOSES_MG as ESKETAMINE_LABEL_DOSES_MG
from ketaclinic.clinical.dose_types import ESKETAMINE_MIN_OBSERVATION_MIN as ESKETAMINE_MIN_OBSERVATION_MIN
from ketaclinic.clinical.dose_types import DoseKind as DoseKind
from ketaclinic.clinical.dose_types import DoseLimits as DoseLimits
from ketaclinic.clinical.vitals import DOSING_INTERVAL_LIMIT, RECOVERY_INTERVAL_LIMIT, interval_problem

SCHEMA: Final = "ketaclinic.protocol/1"


class ProtocolError(Exception):
    """Base class: the message is safe to show to clinic staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownProtocol(ProtocolError):
    def __init__(self, protocol_id: str) -> None:
        super().__init__(f"There is no protocol with the ID '{protocol_id}'.")
        self.protocol_id = protocol_id


class ProtocolValidationError(ProtocolError):
    """The protocol is not valid. ``errors`` maps every bad field (a path) to its reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: Mapping[str, str] = MappingProxyType(dict(errors))
        detail = "; ".join(f"{field}: {reason}" for field, reason in self.errors.items())
        super().__init__(f"The protocol cannot be saved: {detail}")


@dataclass(frozen=True)
class DoseRule:
    kind: DoseKind
    amount: float
    duration_min: int | None  # infusion length; None for a bolus, spray or lozenge
    limits: DoseLimits
    source: str
    options: tuple[float, ...] = ()  # alternatives the prescriber may choose (e.g. esketamine 56 or 84)
    confirmed: bool = True
    note: str = ""

    def describe(self) -> str:
        unit = DOSE_UNITS[self.kind]
        amounts = self.options if len(self.options) > 1 else (self.amount,)
        text = " or ".join(f"{a:g}" for a in amounts) + f" {unit}"
        if self.duration_min is not None:
            text += f" over {_minutes_text(self.duration_min)}"
        if not self.confirmed:
            text += " (clinic default, unconfirmed)"
        return text


def _minutes_text(minutes: int) -> str:
    if minutes % 60 == 0 and minutes >= 120:
        return f"{minutes // 60} h"
    return f"{minutes} min"


@dataclass(frozen=True)
class Cadence:
    """Exactly one of: ``per_week`` sessions in each 7-day week, or one session ``every_days``."""

    per_week: int | None = None
    every_days: int | None = None

    def interval_days(self) -> float:
        if self.per_week:
            return 7.0 / self.per_week
        return float(self.every_days or 0)

    def describe(self) -> str:
        if self.per_week is not None:
            return {1: "weekly", 2: "twice weekly", 7: "daily"}.get(self.per_week, f"{self.per_week}× weekly")
        days = self.every_days or 0
        if days == 1:
            return "daily"
        if days % 7 == 0:
            return "weekly" if days == 7 else f"every {days // 7} weeks"
        return f"every {days} days"


def derived_min_spacing_days(cadence: Cadence) -> int:
    """Documented derived rule (module docstring): floor(interval) − 1, at least 1 day."""
    return max(1, math.floor(cadence.interval_days()) - 1)


class PhaseKind(StrEnum):
    INDUCTION = "induction"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Phase:
    name: str
    kind: PhaseKind
    cadence: Cadence
    sessions: int | None  # None: open-ended, continues until the prescriber stops it
    min_spacing_days: int
    dose: DoseRule
    source: str
    first_dose: DoseRule | None = None  # dose of the first session of this phase, if different
    alternative_cadences: tuple[Cadence, ...] = ()
    max_span_days: int | None = None  # e.g. "up to 6 infusions over 12 days"
    may_stop_early: bool = False  # e.g. "until remission or max 12"
    optional: bool = False
    confirmed: bool = True
    note: str = ""

    def weeks(self) -> int | None:
        """Length of a per-week phase in whole weeks (sessions / per_week, rounded up)."""
        if self.sessions is None or not self.cadence.per_week:
            return None
        return math.ceil(self.sessions / self.cadence.per_week)


class ObservationAnchor(StrEnum):
    FIRST_DOSE = "first_dose"  # esketamine: time from the first device (REMS form)
    END_OF_DOSE = "end_of_dose"  # infusion: time after the infusion ends


@dataclass(frozen=True)
class MonitoringPlan:
    observation_min: int
    observation_anchor: ObservationAnchor
    bp_pre_dose: bool
    bp_after_dose_min: tuple[int, ...]
    bp_pre_discharge: bool
    pulse_oximetry: bool
    source: str
    vitals_during_dose_every_min: int | None = None
    vitals_after_dose_every_min: int | None = None
    rems_monitoring_form_days: int | None = None
    observation_confirmed: bool = True
    note: str = ""


class ScaleTiming(StrEnum):
    BASELINE = "baseline"
    EVERY_SESSION = "every_session"
    END_OF_INDUCTION = "end_of_induction"


@dataclass(frozen=True)
class ScaleRequirement:
    scale: str  # instrument key, e.g. "phq9", "madrs", "ymrs", "pcl5", "caps5", "pain_nrs"
    timing: tuple[ScaleTiming, ...]
    source: str
    note: str = ""


@dataclass(frozen=True)
class AdjunctSessions:
    """Non-drug sessions the protocol schedules around the dosing sessions (e.g. psychotherapy)."""

    kind: str
    label: str
    count: int
    start_after_session: int
    non_dosing_days_only: bool
    source: str
    duration_min: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Protocol:
    id: str
    version: int
    name: str
    drug: Drug
    route: Route
    indications: tuple[Indication, ...]
    phases: tuple[Phase, ...]
    monitoring: MonitoringPlan
    scales: tuple[ScaleRequirement, ...]
    sources: tuple[str, ...]
    adjuncts: tuple[AdjunctSessions, ...] = ()
    pregnancy_test_required: bool = True
    pregnancy_test_note: str = (
        "Clinic policy flag, configurable: the reference lists pregnancy as an exclusion (clinical.md §2.5, "
        "§6.2) but gives no testing rule; default on, unconfirmed."
    )
    rems_required: bool = False
    clinic_template: bool = False  # doses are clinic-defined defaults, unconfirmed
    second_person_check: bool = False  # a second person verifies the prepared dose (IV/IM)
    based_on: str | None = None  # "<id>@<version>" of the protocol this one was copied from
    notes: str = ""

    @property
    def dose_route_label(self) -> str:
        return ROUTE_LABELS[self.route]

    def dose_for_session(self, number: int) -> tuple[Phase, DoseRule]:
        """The phase and dose rule of the course's session ``number`` (1-based, all phases in order)."""
        if number < 1:
            raise ValueError("session number starts at 1")
        remaining = number
        for phase in self.phases:
            if phase.sessions is None or remaining <= phase.sessions:
                rule = phase.first_dose if remaining == 1 and phase.first_dose is not None else phase.dose
                return phase, rule
            remaining -= phase.sessions
        raise ValueError(f"session {number} is beyond the end of protocol {self.id}")

    def chair_minutes(self) -> int:
        """Chair time per session: dose time plus observation (see ObservationAnchor)."""
        dose_min = max((p.dose.duration_min or 0) for p in self.phases) if self.phases else 0
        obs = self.monitoring.observation_min
        if self.monitoring.observation_anchor is ObservationAnchor.FIRST_DOSE:
            return max(dose_min, obs)
        return dose_min + obs

    def to_dict(self) -> dict[str, Any]:
        return protocol_to_dict(self)


# ---------------------------------------------------------------------------------------------------------
# JSON (de)serialisation: a generic walk over the dataclasses above.


def _encode(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def protocol_to_dict(protocol: Protocol) -> dict[str, Any]:
    """JSON-serialisable form (lists, dicts, str, int, float, bool, None)."""
    data: dict[str, Any] = {"schema": SCHEMA}
    data.update(_encode(protocol))
    return data


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of: " + ", ".join(str(m.value) for m in tp)
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(tp, "a value")


def _decode(tp: Any, value: Any, path: str, errors: dict[str, str]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value, path, errors)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            errors[path] = "must be a list"
            return ()
        item_type = get_args(tp)[0]
        return tuple(_decode(item_type, v, f"{path}[{i}]", errors) for i, v in enumerate(value))
    if isinstance(tp, type) and is_dataclass(tp):
        if not isinstance(value, Mapping):
            errors[path] = "must be an object"
            return None
        hints = get_type_hints(tp)
        names = {f.name for f in fields(tp)}
        kwargs: dict[str, Any] = {}
        complete = True
        for f in fields(tp):
            sub = f"{path}.{f.name}" if path else f.name
            if f.name in value:
                kwargs[f.name] = _decode(hints[f.name], value[f.name], sub, errors)
            elif f.default is MISSING and f.default_factory is MISSING:
                errors[sub] = "required"
                complete = False
        for key in value:
            if key not in names and not (path == "" and key == "schema"):
                errors[f"{path}.{key}" if path else str(key)] = "unknown field"
        return tp(**kwargs) if complete else None
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            errors[path] = f"must be {_type_name(tp)}"
            return None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            errors[path] = "must be a number"
            return None
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors[path] = "must be a whole number"
            return None
        return value
    if tp is bool or tp is str:
        if not isinstance(value, tp):
            errors[path] = f"must be {_type_name(tp)}"
            return None
        return value
    raise TypeError(f"unsupported field type {tp!r}")  # pragma: no cover - programming error


def protocol_from_dict(data: Mapping[str, Any]) -> Protocol:
    """Build and validate a protocol from its JSON form; raises ProtocolValidationError naming every error."""
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        raise ProtocolValidationError({"protocol": "must be an object"})
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        errors["schema"] = f"expected {SCHEMA}"
    protocol = _decode(Protocol, data, "", errors)
    if errors or protocol is None:
        raise ProtocolValidationError(errors or {"protocol": "could not be read"})
    assert isinstance(protocol, Protocol)
    validate_or_raise(protocol)
    return protocol


# ---------------------------------------------------------------------------------------------------------
# Semantic validation


_ID_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


def _check_limits(rule: DoseRule, path: str, errors: dict[str, str]) -> None:
    lim = rule.limits
    unit = DOSE_UNITS[rule.kind]
    amounts = (rule.amount, *rule.options)
    if lim.hard_allowed:
        if lim.soft_allowed and not set(lim.soft_allowed) <= set(lim.hard_allowed):
            errors[f"{path}.limits.soft_allowed"] = "every usual dose must also be an allowed dose"
        bad = [a for a in amounts if a not in lim.hard_allowed]
        if bad:
            errors[f"{path}.amount"] = f"{', '.join(f'{a:g}' for a in bad)} {unit} is not an allowed dose"
        return
    bounds = (lim.hard_min, lim.soft_min, lim.soft_max, lim.hard_max)
    if any(b is None for b in bounds):
        errors[f"{path}.limits"] = "set soft and hard minimum and maximum"
        return
    hard_min, soft_min, soft_max, hard_max = (float(b) for b in bounds if b is not None)
    if not hard_min <= soft_min <= soft_max <= hard_max:
        errors[f"{path}.limits"] = "limits must satisfy hard min ≤ soft min ≤ soft max ≤ hard max"
        return
    if hard_min < 0:
        errors[f"{path}.limits.hard_min"] = "must not be negative"
    if not soft_min <= rule.amount <= soft_max:
        errors[f"{path}.amount"] = (
            f"{rule.amount:g} {unit} is outside the usual range {soft_min:g}–{soft_max:g}"
        )
    bad = [a for a in rule.options if not hard_min <= a <= hard_max]
    if bad:
        errors[f"{path}.options"] = f"options must lie within {hard_min:g}–{hard_max:g} {unit}"


def _check_dose(rule: DoseRule, protocol: Protocol, path: str, errors: dict[str, str]) -> None:
    if rule.amount <= 0:
        errors[f"{path}.amount"] = "must be more than 0"
        return
    if not rule.source.strip():
        errors[f"{path}.source"] = "say where this dose comes from"
    if rule.duration_min is not None and rule.duration_min <= 0:
        errors[f"{path}.duration_min"] = "must be more than 0 minutes"
    if protocol.drug is Drug.ESKETAMINE:
        if rule.kind is not DoseKind.FIXED_MG:
            errors[f"{path}.kind"] = "esketamine is dosed in mg (28-mg devices)"
            return
        allowed = set(ESKETAMINE_LABEL_DOSES_MG)
        if not set(rule.limits.hard_allowed) <= allowed or not rule.limits.hard_allowed:
            errors[f"{path}.limits.hard_allowed"] = "esketamine doses are only 28, 56 or 84 mg (label)"
    if rule.kind is DoseKind.MG_PER_KG_PER_HOUR and rule.duration_min is None:
        errors[f"{path}.duration_min"] = "a rate in mg/kg/h needs an infusion duration"
    if protocol.route is Route.IV and rule.kind is not DoseKind.FIXED_MG and rule.duration_min is None:
        errors[f"{path}.duration_min"] = "an IV dose needs an infusion duration"
    _check_limits(rule, path, errors)
    refs = reference_limits(
        drug=protocol.drug, route=protocol.route, kind=rule.kind, indications=protocol.indications
    )
    for key, reason in widened_beyond_reference(rule.limits, refs, DOSE_UNITS[rule.kind]).items():
        errors.setdefault(f"{path}.{key}", reason)
    _check_policy(rule.limits, f"{path}.limits", errors)


def _check_policy(lim: DoseLimits, path: str, errors: dict[str, str]) -> None:
    """The clinic-policy fields: positive, soft ≤ hard, never 100 mg/mL undiluted, and a named source."""
    values = {
        "soft_max_mg": lim.soft_max_mg,
        "hard_max_mg": lim.hard_max_mg,
        "max_mg_per_h": lim.max_mg_per_h,
        "max_concentration_mg_ml": lim.max_concentration_mg_ml,
    }
    for name, value in values.items():
        if value is not None and value <= 0:
            errors[f"{path}.{name}"] = "must be more than 0"
    if lim.soft_max_mg is not None and lim.hard_max_mg is not None and lim.soft_max_mg > lim.hard_max_mg:
        errors[f"{path}.soft_max_mg"] = "must not be above the hard ceiling"
    if lim.max_concentration_mg_ml is not None and lim.max_concentration_mg_ml >= UNDILUTED_MG_ML:
        errors[f"{path}.max_concentration_mg_ml"] = f"must be below 100 mg/mL ({UNDILUTED_SOURCE})"
    if any(v is not None for v in values.values()) and len(lim.policy_source.strip()) < 10:
        errors[f"{path}.policy_source"] = "say which clinic policy these ceilings come from"


def _check_cadence(cadence: Cadence, path: str, errors: dict[str, str]) -> bool:
    if (cadence.per_week is None) == (cadence.every_days is None):
        errors[path] = "set either sessions per week or an interval in days"
        return False
    if cadence.per_week is not None and not 1 <= cadence.per_week <= 7:
        errors[f"{path}.per_week"] = "must be 1 to 7 sessions per week"
        return False
    if cadence.every_days is not None and cadence.every_days < 1:
        errors[f"{path}.every_days"] = "must be 1 day or more"
        return False
    return True


def _check_phases(protocol: Protocol, errors: dict[str, str]) -> None:
    if not protocol.phases:
        errors["phases"] = "add at least one phase"
        return
    if protocol.phases[0].kind is not PhaseKind.INDUCTION:
        errors["phases[0].kind"] = "the first phase must be an induction phase"
    seen_maintenance = False
    for i, phase in enumerate(protocol.phases):
        path = f"phases[{i}]"
        if phase.kind is PhaseKind.MAINTENANCE:
            seen_maintenance = True
        elif seen_maintenance:
            errors[f"{path}.kind"] = "induction phases must come before maintenance phases"
        if not phase.name.strip():
            errors[f"{path}.name"] = "required"
        if not phase.source.strip():
            errors[f"{path}.source"] = "say where this schedule comes from"
        cadence_ok = _check_cadence(phase.cadence, f"{path}.cadence", errors)
        for j, alt in enumerate(phase.alternative_cadences):
            _check_cadence(alt, f"{path}.alternative_cadences[{j}]", errors)
        if phase.sessions is None and i != len(protocol.phases) - 1:
            errors[f"{path}.sessions"] = "only the last phase may be open-ended"
        if phase.sessions is not None and phase.sessions < 1:
            errors[f"{path}.sessions"] = "must be 1 or more"
        if phase.min_spacing_days < 1:
            errors[f"{path}.min_spacing_days"] = "must be 1 day or more"
        elif cadence_ok and phase.min_spacing_days > math.ceil(phase.cadence.interval_days()):
            errors[f"{path}.min_spacing_days"] = (
                f"{phase.min_spacing_days} days is longer than the interval of a {phase.cadence.describe()} phase"
            )
        if phase.max_span_days is not None and phase.max_span_days < 1:
            errors[f"{path}.max_span_days"] = "must be 1 day or more"
        _check_dose(phase.dose, protocol, f"{path}.dose", errors)
        if phase.first_dose is not None:
            _check_dose(phase.first_dose, protocol, f"{path}.first_dose", errors)


def _check_monitoring(protocol: Protocol, errors: dict[str, str]) -> None:
    mon = protocol.monitoring
    if mon.observation_min < 0:
        errors["monitoring.observation_min"] = "must not be negative"
    # Reading intervals are safety settings: shortened freely, stretched only as far as the reference's series
    # and clinics go (clinical/vitals.py, DOSING_INTERVAL_LIMIT / RECOVERY_INTERVAL_LIMIT).
    for name, limit in (
        ("vitals_during_dose_every_min", DOSING_INTERVAL_LIMIT),
        ("vitals_after_dose_every_min", RECOVERY_INTERVAL_LIMIT),
    ):
        value = getattr(mon, name)
        if value is not None and (problem := interval_problem(value, limit)) is not None:
            errors[f"monitoring.{name}"] = problem
    if protocol.drug is Drug.ESKETAMINE:
        if mon.observation_min < ESKETAMINE_MIN_OBSERVATION_MIN:
            errors["monitoring.observation_min"] = (
                "esketamine needs at least 120 minutes of observation (label)"
            )
        if not (
            mon.bp_pre_dose and mon.bp_pre_discharge and ESKETAMINE_BP_CHECK_MIN in mon.bp_after_dose_min
        ):
            errors["monitoring.bp"] = (
                "esketamine needs BP before dosing, at 40 minutes and before discharge (label)"
            )
        if not mon.pulse_oximetry:
            errors["monitoring.pulse_oximetry"] = (
                "esketamine needs pulse oximetry at every session (label/REMS)"
            )


def validate_protocol(protocol: Protocol) -> dict[str, str]:
    """Return path -> reason for every problem (empty when the protocol is valid)."""
    errors: dict[str, str] = {}
    if not _ID_PATTERN.fullmatch(protocol.id):
        errors["id"] = "use 2–63 lower-case letters, digits or hyphens, starting with a letter or digit"
    if protocol.version < 1:
        errors["version"] = "must be 1 or more"
    if not protocol.name.strip():
        errors["name"] = "required"
    if protocol.route not in DRUG_ROUTES[protocol.drug]:
        errors["route"] = f"{protocol.drug.value} is not given by the {ROUTE_LABELS[protocol.route]} route"
    if not protocol.indications:
        errors["indications"] = "choose at least one indication"
    elif len(set(protocol.indications)) != len(protocol.indications):
        errors["indications"] = "an indication is listed twice"
    if not protocol.sources:
        errors["sources"] = "list at least one source"
    _check_phases(protocol, errors)
    _check_monitoring(protocol, errors)
    for i, scale in enumerate(protocol.scales):
        if not scale.scale.strip():
            errors[f"scales[{i}].scale"] = "required"
        if not scale.timing:
            errors[f"scales[{i}].timing"] = "say when the scale is taken"
    finite = [p.sessions for p in protocol.phases if p.sessions is not None]
    open_ended = any(p.sessions is None for p in protocol.phases)
    for i, adj in enumerate(protocol.adjuncts):
        if adj.count < 1:
            errors[f"adjuncts[{i}].count"] = "must be 1 or more"
        if adj.start_after_session < 0 or (not open_ended and adj.start_after_session > sum(finite)):
            errors[f"adjuncts[{i}].start_after_session"] = "must be within the course"
    return errors


def validate_or_raise(protocol: Protocol) -> Protocol:
    errors = validate_protocol(protocol)
    if errors:
        raise ProtocolValidationError(errors)
    return protocol


def copy_protocol(protocol: Protocol, *, new_id: str, name: str | None = None) -> Protocol:
    """A clinic's own copy: new id, version 1, ``based_on`` pointing at the original."""
    copied = replace(
        protocol,
        id=new_id,
        version=1,
        name=name if name is not None else f"{protocol.name} (clinic copy)",
        based_on=f"{protocol.id}@{protocol.version}",
    )
    return validate_or_raise(copied)


def edit_protocol(protocol: Protocol, changes: Mapping[str, Any]) -> Protocol:
    """Apply top-level changes given in JSON form; the version goes up by one. Validates everything."""
    data = protocol_to_dict(protocol)
    for key in ("id", "version", "based_on"):
        if key in changes:
            raise ProtocolValidationError({key: "cannot be edited (copy the protocol instead)"})
    data.update(changes)
    data["version"] = protocol.version + 1
    return protocol_from_dict(data)
