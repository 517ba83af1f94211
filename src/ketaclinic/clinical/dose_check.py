"""The one dose check: every path that sets or records a dose asks these functions (clinical.md §11: "a dose
is a dose wherever it is entered").

Pure: no Django, no I/O. Callers: the dose calculator (plans), scheduling a session from the chart or the
API, every administration at the chair (infusion start, rate change, nasal device, injection, sublingual),
protocol validation, the demo loader. Each function returns *findings*; it never raises for a clinical
limit, so that a caller can show every problem at once and resolve the ones a person may decide.

A finding says what it is about (``Subject``: the edge maps it to its own field name), why (a message a
nurse understands, naming the value and the limit), where the limit comes from (``source``, ``confirmed``)
and who may go past it (``Decision``):

* ``REFUSED`` — a hard limit. Nobody may go past it (a dose above the reference's hard maximum in mg/kg of
  *actual* weight, a 4th esketamine device, 100 mg/mL undiluted, a dose time before the gate opened…).
* ``PRESCRIBER_REASON`` — a soft limit (outside the protocol's usual range, above the clinic's soft mg
  ceiling): a prescriber records the reason.
* ``PRESCRIBER_DECISION`` — more than the session's planned dose, or an infusion faster than the protocol:
  a prescriber re-authenticates (password and authenticator code) and records the reason.
* ``REASON`` — the person recording writes why (a dose time entered late).
* ``WARN`` — recorded with the dose, nothing to decide (devices closer than the label's 5 minutes).

Numbers: limits come from the protocol (``DoseLimits``) narrowed by the reference (``dose_limits.py``);
clinic-policy ceilings are defaults marked unconfirmed. Small tolerances (``_EPS``) only absorb float
arithmetic on values typed with two decimals; they never round a dose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.body import BodySize
from ketaclinic.clinical.conditions import Route
from ketaclinic.clinical.dose_limits import (
    ACTUAL_WEIGHT_SOURCE,
    IBW_MIN_HEIGHT_SOURCE,
    UNDILUTED_MG_ML,
    UNDILUTED_SOURCE,
    Bounds,
    binding_bounds,
    dose_policy,
    reference_limits,
)
from ketaclinic.clinical.dose_types import DOSE_UNITS, ESKETAMINE_DEVICE_MG, DoseKind
from ketaclinic.clinical.protocols import DoseRule, Protocol

_EPS: Final = 1e-6

#: Label IFU: a 5-minute rest between devices (clinical.md §2.1).
DEVICE_SPACING_MIN: Final = 5
DEVICE_SOURCE: Final = "clinical.md §2.1, §11: 28 mg per device, 5-minute rest between devices (label IFU)"

#: A dose time more than this before it is entered is a late entry: the recorder writes why, and clocks that
#: run from the dose (the esketamine 2 hours) start no earlier than entry time minus this (clinic default).
LATE_ENTRY_AFTER: Final = timedelta(minutes=10)
LATE_ENTRY_SOURCE: Final = (
    "clinic default, unconfirmed (not in the reference): a dose entered more than 10 min after its stated "
    "time is a late entry; monitoring clocks cannot start earlier than 10 min before entry"
)
FUTURE_TOLERANCE: Final = timedelta(minutes=2)  # clocks of two devices may differ slightly
PLAN_SOURCE: Final = "clinical.md §11: every administration is reconciled with the session's planned dose"
RATE_SOURCE: Final = (
    "clinical.md §1.1, §11: 0.5 mg/kg 'over 40 min' means a rate that delivers it in ≥40 min; "
    "the protocol's infusion time"
)


class Decision(StrEnum):
    REFUSED = "refused"
    PRESCRIBER_DECISION = "prescriber_decision"
    PRESCRIBER_REASON = "prescriber_reason"
    REASON = "reason"
    WARN = "warn"


class Subject(StrEnum):
    """Which input a finding is about; each edge names its own field for it."""

    DOSE = "dose"
    RATE = "rate"
    CONCENTRATION = "concentration"
    DEVICES = "devices"
    BASIS = "basis"
    BODY = "body"
    TIME = "time"


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseFinding:
    code: str
    subject: Subject
    decision: Decision
    message: str
    source: str
    confirmed: bool = True


def _f(
    code: str, subject: Subject, decision: Decision, message: str, source: str, confirmed: bool = True
) -> DoseFinding:
    return DoseFinding(
        code=code, subject=subject, decision=decision, message=message, source=source, confirmed=confirmed
    )


def bounds_for(protocol: Protocol, rule: DoseRule) -> Bounds:
    """The limits binding ``rule`` of ``protocol``: its own, narrowed by the reference's (dose_limits.py)."""
    refs = reference_limits(
        drug=protocol.drug, route=protocol.route, kind=rule.kind, indications=protocol.indications
    )
    return binding_bounds(rule.limits, refs)


# --- one session's dose ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDose:
    dose_mg: float
    unit: str
    dosing_weight_kg: float | None  # None for fixed-mg doses
    amount: float  # in the rule's unit on the dosing weight (mg/kg, mg/kg/h or mg)
    mg_per_kg_actual: float | None
    mg_per_h: float | None  # infusions with a duration
    findings: tuple[DoseFinding, ...]


def dosing_weight(body: BodySize, basis: str) -> float | None:
    """The weight a per-kg dose is calculated on (None when the basis cannot be used for this body)."""
    if basis == "actual":
        return body.weight_kg
    if body.extrapolated:
        return None
    weight = body.ideal_weight_kg if basis == "ideal" else body.adjusted_weight_kg
    return weight if weight is not None and weight > 0 else None


def _range_text(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low:g}–{high:g} {unit}"
    return f"≥{low:g} {unit}" if low is not None else f"≤{high:g} {unit}" if high is not None else "any"


def _outside(value: float, low: float | None, high: float | None) -> bool:
    return (low is not None and value < low * (1 - _EPS)) or (high is not None and value > high * (1 + _EPS))


def _allowed(value: float, allowed: Sequence[float]) -> bool:
    return any(math.isclose(value, a, rel_tol=_EPS) for a in allowed)


def check_session_dose(
    *,
    protocol: Protocol,
    rule: DoseRule,
    dose_mg: float,
    body: BodySize | None,
    basis: str = "actual",
) -> SessionDose:
    """One session's dose in mg against every limit that binds it: the protocol's range (soft/hard) in the
    rule's unit on the chosen weight basis, the reference's hard limits also on *actual* weight, the hourly
    cap of an infusion, and the clinic's absolute mg ceilings."""
    unit = DOSE_UNITS[rule.kind]
    bounds = bounds_for(protocol, rule)
    findings: list[DoseFinding] = []
    hours = rule.duration_min / 60.0 if rule.duration_min else None
    mg_per_h = dose_mg / hours if hours else None
    weight: float | None = None
    mg_per_kg_actual: float | None = None
    amount = dose_mg
    if rule.kind is not DoseKind.FIXED_MG:
        if body is None:
            findings.append(
                _f(
                    "weight_missing",
                    Subject.BODY,
                    Decision.REFUSED,
                    f"This protocol doses by weight ({unit}): record the patient's weight and height first.",
                    rule.source,
                )
            )
            return SessionDose(
                dose_mg=dose_mg,
                unit=unit,
                dosing_weight_kg=None,
                amount=dose_mg,
                mg_per_kg_actual=None,
                mg_per_h=mg_per_h,
                findings=tuple(findings),
            )
        weight = dosing_weight(body, basis)
        if weight is None:
            findings.append(
                _f(
                    "weight_basis_unusable",
                    Subject.BASIS,
                    Decision.REFUSED,
                    f"The {basis} body weight cannot be used at a height of {body.height_cm:g} cm: the "
                    "ideal-weight formula is built for heights of 152 cm and more. Dose on actual weight.",
                    IBW_MIN_HEIGHT_SOURCE,
                    confirmed=False,
                )
            )
            weight = body.weight_kg
        mg_per_kg_actual = dose_mg / body.weight_kg
        if rule.kind is DoseKind.MG_PER_KG:
            amount = dose_mg / weight
        else:
            assert hours is not None  # a per-hour rule always has a duration (protocol validation)
            amount = dose_mg / hours / weight
    findings += _range_findings(rule, bounds, amount, unit, weight, mg_per_h)
    if rule.kind is not DoseKind.FIXED_MG and body is not None and basis != "actual":
        # §11: a dose may never exceed what actual weight allows.
        actual_amount = (
            mg_per_kg_actual if rule.kind is DoseKind.MG_PER_KG else (mg_per_h or 0) / body.weight_kg
        )
        assert actual_amount is not None
        if bounds.hard_max is not None and actual_amount > bounds.hard_max * (1 + _EPS):
            findings.append(
                _f(
                    "above_hard_limit_actual_weight",
                    Subject.DOSE,
                    Decision.REFUSED,
                    f"{dose_mg:.1f} mg is {actual_amount:.2f} {unit} of the patient's actual weight "
                    f"({body.weight_kg:g} kg): above the hard limit {bounds.hard_max:g} {unit}.",
                    f"{ACTUAL_WEIGHT_SOURCE}; {bounds.hard_source}",
                    bounds.hard_confirmed,
                )
            )
    findings += _ceiling_findings(protocol, rule, dose_mg)
    return SessionDose(
        dose_mg=dose_mg,
        unit=unit,
        dosing_weight_kg=weight,
        amount=amount,
        mg_per_kg_actual=mg_per_kg_actual,
        mg_per_h=mg_per_h,
        findings=tuple(findings),
    )


def check_amount(*, protocol: Protocol, rule: DoseRule, amount: float) -> list[DoseFinding]:
    """A prescribed amount in the rule's own unit (0.5 mg/kg, 0.35 mg/kg/h, 84 mg) against its limits."""
    return _range_findings(rule, bounds_for(protocol, rule), amount, DOSE_UNITS[rule.kind], None, None)


def _range_findings(
    rule: DoseRule, bounds: Bounds, amount: float, unit: str, weight: float | None, mg_per_h: float | None
) -> list[DoseFinding]:
    if bounds.hard_allowed:
        if not _allowed(amount, bounds.hard_allowed):
            allowed = ", ".join(f"{a:g}" for a in bounds.hard_allowed)
            return [
                _f(
                    "dose_not_allowed",
                    Subject.DOSE,
                    Decision.REFUSED,
                    f"{amount:g} {unit} cannot be given: the allowed doses are {allowed} {unit}.",
                    bounds.hard_source,
                    bounds.hard_confirmed,
                )
            ]
        if bounds.soft_allowed and not _allowed(amount, bounds.soft_allowed):
            usual = " or ".join(f"{a:g}" for a in bounds.soft_allowed)
            return [
                _f(
                    "dose_outside_usual",
                    Subject.DOSE,
                    Decision.PRESCRIBER_REASON,
                    f"{amount:g} {unit} is not the usual dose here ({usual} {unit}): a prescriber records why.",
                    bounds.soft_source,
                    bounds.soft_confirmed,
                )
            ]
        return []
    hard_lo, hard_hi = bounds.hard_min, bounds.hard_max
    soft_lo, soft_hi = bounds.soft_min, bounds.soft_max
    value, shown, shown_unit = amount, f"{amount:.3g}", unit
    cap = bounds.max_mg_per_h
    if rule.kind is DoseKind.MG_PER_KG_PER_HOUR and cap is not None and weight is not None and mg_per_h:
        # "0.35 mg/kg/h, not to exceed 25 mg/h" (clinical.md §11): compare the hourly mg with the per-kg
        # limits on this weight, each capped.
        if mg_per_h > cap * (1 + _EPS):
            return [
                _f(
                    "above_hourly_cap",
                    Subject.DOSE,
                    Decision.REFUSED,
                    f"{mg_per_h:.1f} mg/h is above the cap of {cap:g} mg/h for this protocol.",
                    bounds.rate_source,
                )
            ]
        value, shown, shown_unit = mg_per_h, f"{mg_per_h:.1f}", "mg/h"
        hard_lo, hard_hi, soft_lo, soft_hi = (
            None if b is None else min(b * weight, cap) for b in (hard_lo, hard_hi, soft_lo, soft_hi)
        )
    hard = (hard_lo, hard_hi)
    soft = (soft_lo, soft_hi)
    if _outside(value, *hard):
        return [
            _f(
                "dose_outside_hard_limit",
                Subject.DOSE,
                Decision.REFUSED,
                f"{shown} {shown_unit} is outside the hard limit {_range_text(*hard, shown_unit)}.",
                bounds.hard_source,
                bounds.hard_confirmed,
            )
        ]
    if _outside(value, *soft):
        return [
            _f(
                "dose_outside_usual",
                Subject.DOSE,
                Decision.PRESCRIBER_REASON,
                f"{shown} {shown_unit} is outside the usual range {_range_text(*soft, shown_unit)}: a "
                "prescriber records why.",
                bounds.soft_source,
                bounds.soft_confirmed,
            )
        ]
    return []


def _ceiling_findings(protocol: Protocol, rule: DoseRule, dose_mg: float) -> list[DoseFinding]:
    policy = dose_policy(drug=protocol.drug, route=protocol.route, limits=rule.limits)
    if policy.hard_max_mg is not None and dose_mg > policy.hard_max_mg * (1 + _EPS):
        return [
            _f(
                "above_mg_ceiling",
                Subject.DOSE,
                Decision.REFUSED,
                f"{dose_mg:.1f} mg is above the clinic's ceiling of {policy.hard_max_mg:g} mg per session "
                "(consider dosing on ideal weight).",
                policy.source,
                policy.confirmed,
            )
        ]
    if policy.soft_max_mg is not None and dose_mg > policy.soft_max_mg * (1 + _EPS):
        return [
            _f(
                "above_usual_mg",
                Subject.DOSE,
                Decision.PRESCRIBER_REASON,
                f"{dose_mg:.1f} mg is above {policy.soft_max_mg:g} mg per session: a prescriber records why.",
                policy.source,
                policy.confirmed,
            )
        ]
    return []


# --- at the chair ---------------------------------------------------------------------------------------


def check_against_plan(
    *, planned_dose_mg: float, given_before_mg: float, this_mg: float
) -> list[DoseFinding]:
    """Every administration is reconciled with the session's planned dose (clinical.md §11): more than
    planned is a prescriber's authenticated decision."""
    total = given_before_mg + this_mg
    if total <= planned_dose_mg + 0.005:
        return []
    already = f" ({given_before_mg:g} mg already given)" if given_before_mg else ""
    return [
        _f(
            "more_than_planned",
            Subject.DOSE,
            Decision.PRESCRIBER_DECISION,
            f"{this_mg:g} mg{already} makes {total:g} mg, more than the {planned_dose_mg:g} mg planned for this "
            "session: a prescriber must sign the decision.",
            PLAN_SOURCE,
        )
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class InfusionRate:
    mg_per_h: float
    mg_per_kg_per_h: float | None
    minutes_for_dose: float | None  # how long the rate takes to give the session's dose
    findings: tuple[DoseFinding, ...]


def check_concentration(*, protocol: Protocol, rule: DoseRule, final_mg_ml: float) -> list[DoseFinding]:
    """The concentration that reaches the vein: never 100 mg/mL undiluted, never above the clinic's maximum."""
    if protocol.route is not Route.IV:
        return []
    if final_mg_ml >= UNDILUTED_MG_ML * (1 - _EPS):
        return [
            _f(
                "undiluted_100_iv",
                Subject.CONCENTRATION,
                Decision.REFUSED,
                "100 mg/mL ketamine must not be given IV undiluted: dilute it into a bag or syringe.",
                UNDILUTED_SOURCE,
                confirmed=False,
            )
        ]
    policy = dose_policy(drug=protocol.drug, route=protocol.route, limits=rule.limits)
    top = policy.max_concentration_mg_ml
    if top is not None and final_mg_ml > top * (1 + _EPS):
        return [
            _f(
                "concentration_above_max",
                Subject.CONCENTRATION,
                Decision.REFUSED,
                f"{final_mg_ml:.2f} mg/mL is stronger than the {top:g} mg/mL this clinic infuses: dilute it.",
                policy.source,
                policy.confirmed,
            )
        ]
    return []


def check_infusion_rate(
    *,
    protocol: Protocol,
    rule: DoseRule,
    body: BodySize | None,
    final_mg_ml: float,
    rate_ml_per_h: float,
    dose_mg: float,
) -> InfusionRate:
    """A pump rate implies mg/h and how long the session's dose takes (clinical.md §11). Faster than the
    protocol's infusion time → a prescriber's decision; faster than its highest dose over that time, or
    above the hourly cap → refused. Slower is always allowed (slowing or pausing is a safety action)."""
    mg_per_h = rate_ml_per_h * final_mg_ml
    bounds = bounds_for(protocol, rule)
    findings: list[DoseFinding] = []
    per_kg = mg_per_h / body.weight_kg if body is not None else None
    minutes = dose_mg / mg_per_h * 60.0 if mg_per_h > 0 else None
    cap = bounds.max_mg_per_h
    if cap is not None and mg_per_h > cap * (1 + _EPS):
        findings.append(
            _f(
                "above_hourly_cap",
                Subject.RATE,
                Decision.REFUSED,
                f"{rate_ml_per_h:g} mL/h × {final_mg_ml:.2f} mg/mL = {mg_per_h:.1f} mg/h: above the cap of "
                f"{cap:g} mg/h.",
                bounds.rate_source,
            )
        )
    fastest: float | None = None  # mg/kg/h of actual weight that nothing may exceed
    if rule.kind is DoseKind.MG_PER_KG_PER_HOUR:
        fastest = bounds.hard_max
    elif rule.kind is DoseKind.MG_PER_KG and rule.duration_min and bounds.hard_max is not None:
        fastest = bounds.hard_max / (rule.duration_min / 60.0)
    if per_kg is not None and fastest is not None and per_kg > fastest * (1 + _EPS):
        findings.append(
            _f(
                "rate_above_hard_limit",
                Subject.RATE,
                Decision.REFUSED,
                f"{mg_per_h:.1f} mg/h is {per_kg:.2f} mg/kg/h of actual weight: faster than the protocol ever "
                f"allows ({fastest:.2f} mg/kg/h).",
                f"{RATE_SOURCE}; {bounds.hard_source}",
                bounds.hard_confirmed,
            )
        )
    elif rule.duration_min and minutes is not None and minutes < rule.duration_min * (1 - 0.02):
        findings.append(
            _f(
                "faster_than_protocol",
                Subject.RATE,
                Decision.PRESCRIBER_DECISION,
                f"{rate_ml_per_h:g} mL/h gives the {dose_mg:g} mg dose in {minutes:.0f} min; the protocol gives it "
                f"over {rule.duration_min} min: a prescriber must sign the decision.",
                RATE_SOURCE,
            )
        )
    return InfusionRate(
        mg_per_h=mg_per_h, mg_per_kg_per_h=per_kg, minutes_for_dose=minutes, findings=tuple(findings)
    )


def planned_devices(planned_dose_mg: float) -> int:
    """How many 28-mg devices the planned dose is (a dose that is not whole devices was refused earlier)."""
    return round(planned_dose_mg / ESKETAMINE_DEVICE_MG)


def check_device(
    *,
    planned_dose_mg: float,
    device_number: int,
    at: datetime,
    previous_at: datetime | None,
    spacing_min: int = DEVICE_SPACING_MIN,
) -> list[DoseFinding]:
    """Esketamine: the device count is the planned dose (a device beyond it is a different dose, §11); a
    device sooner than ``spacing_min`` after the previous one is recorded with a warning."""
    planned = planned_devices(planned_dose_mg)
    if device_number > planned:
        return [
            _f(
                "device_beyond_plan",
                Subject.DEVICES,
                Decision.REFUSED,
                f"All {planned} device(s) of the planned {planned_dose_mg:g} mg are given: device {device_number} "
                f"would make {device_number * ESKETAMINE_DEVICE_MG:g} mg.",
                DEVICE_SOURCE,
            )
        ]
    if previous_at is not None and at - previous_at < timedelta(minutes=spacing_min):
        gap = (at - previous_at).total_seconds() / 60
        return [
            _f(
                "device_spacing",
                Subject.DEVICES,
                Decision.WARN,
                f"Device {device_number} given {gap:.1f} min after the previous one; the label asks for a "
                f"{spacing_min}-minute rest between devices.",
                DEVICE_SOURCE,
            )
        ]
    return []


# --- dose times -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseTime:
    stated_at: datetime
    entered_at: datetime
    clock_at: datetime  # what clocks running from this dose start at (never earlier than entry − grace)
    late: bool
    findings: tuple[DoseFinding, ...]


def check_dose_time(
    *,
    stated_at: datetime,
    entered_at: datetime,
    gate_opened_at: datetime | None,
    late_after: timedelta = LATE_ENTRY_AFTER,
    zone_text: str = "",
) -> DoseTime:
    """A dose time lies between gate-open and now (clinical.md §11, issue 13). Entered more than
    ``late_after`` after it happened, the recorder writes why; clocks start no earlier than entry − grace,
    so back-dating cannot shorten an observation period."""
    findings: list[DoseFinding] = []
    when = stated_at.strftime("%H:%M") + (f" {zone_text}" if zone_text else "")
    if stated_at > entered_at + FUTURE_TOLERANCE:
        findings.append(
            _f(
                "dose_time_future",
                Subject.TIME,
                Decision.REFUSED,
                f"{when} is in the future.",
                LATE_ENTRY_SOURCE,
            )
        )
    if gate_opened_at is None:
        findings.append(
            _f(
                "gate_not_open",
                Subject.TIME,
                Decision.REFUSED,
                "The pre-dose gate is not open: no dose can be recorded.",
                "clinical.md §2.2, §11 (pre-dose gate)",
            )
        )
    elif stated_at < gate_opened_at - timedelta(seconds=1):
        findings.append(
            _f(
                "dose_before_gate",
                Subject.TIME,
                Decision.REFUSED,
                f"{when} is before the pre-dose gate opened ({gate_opened_at:%H:%M}): a dose cannot have been "
                "given then.",
                "clinical.md §2.2, §11 (pre-dose gate)",
            )
        )
    late = entered_at - stated_at > late_after
    if late:
        minutes = (entered_at - stated_at).total_seconds() / 60
        findings.append(
            _f(
                "late_entry",
                Subject.TIME,
                Decision.REASON,
                f"{when} is {minutes:.0f} min before now: a late entry needs the reason it is entered late.",
                LATE_ENTRY_SOURCE,
                confirmed=False,
            )
        )
    clock = max(stated_at, entered_at - late_after)
    return DoseTime(
        stated_at=stated_at, entered_at=entered_at, clock_at=clock, late=late, findings=tuple(findings)
    )


# --- resolving findings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """What the people at hand have decided for this act."""

    reason: str = ""  # the recorder's reason (late entry)
    prescriber_reason: str = ""  # a prescriber's reason for going past a soft limit
    by_prescriber: bool = False  # the person acting is a prescriber
    prescriber_signed: bool = False  # a prescriber re-authenticated for this act and gave the reason


MIN_REASON_CHARS: Final = 10


def _reason_ok(text: str) -> bool:
    return len(text.strip()) >= MIN_REASON_CHARS


def unresolved(findings: Iterable[DoseFinding], decided: Decided) -> list[DoseFinding]:
    """The findings that still stop the act: every hard limit, and each limit nobody has decided past."""
    left: list[DoseFinding] = []
    for finding in findings:
        d = finding.decision
        if d is Decision.WARN:
            continue
        if d is Decision.REASON and _reason_ok(decided.reason):
            continue
        if (
            d is Decision.PRESCRIBER_REASON
            and _reason_ok(decided.prescriber_reason)
            and (decided.by_prescriber or decided.prescriber_signed)
        ):
            continue
        if (
            d is Decision.PRESCRIBER_DECISION
            and decided.prescriber_signed
            and _reason_ok(decided.prescriber_reason)
        ):
            continue
        left.append(finding)
    return left


def warnings(findings: Iterable[DoseFinding]) -> list[DoseFinding]:
    return [f for f in findings if f.decision is Decision.WARN]
