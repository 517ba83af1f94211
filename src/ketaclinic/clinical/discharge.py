"""Discharge checklist and "when would the patient have been ready" (pure: no Django, no I/O).

Criteria (each met / not met with a reason; discharge is blocked until all are met or overridden):

* Minimum monitoring time. Esketamine: ≥120 min from the first device (label boxed warning / REMS,
  clinical.md §2.3–§2.4); not overridable, because REMS requires it. IV and other routes: the reference
  has no number, so the default copies the esketamine 2 h and is marked unconfirmed; set it per protocol.
* Vital signs: SBP, DBP and HR each within 20 % of the pre-dose value (PADSS vital-sign item,
  clinical.md §7.5; applying PADSS to subanesthetic ketamine is practice-borrowed [U]) or inside an
  acceptable range the protocol sets (no default ranges: none are in the reference). In addition no
  absolute alert threshold (SBP/DBP high, HR high/low, SpO2 low, RR low; see ``alerts.py``) may be
  breached in that reading.
* Sedation back to baseline: latest MOAA/S ≥ the pre-dose MOAA/S (clinical.md §8).
* Dissociation resolved: latest CADSS ≤ pre-dose CADSS, or not above the presence threshold ">4"
  (clinical.md §8, [U]; configurable).
* Clinician judges the patient clinically stable (label §5.1–5.2, clinical.md §2.3).
* Escort present and driving advice given (clinical.md §2.3, §7.5).

``ready_at`` answers the REMS form question "when would the patient have been ready to leave without the
2-h minimum": the earliest post-dose reading time from which the physiological criteria (vitals,
sedation, dissociation) were met at that reading and at every later one. Requiring them to *stay* met
keeps a reading taken before the drug took effect from counting as "ready".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.alerts import DEFAULT_ALERT_RULES, AlertCode, AlertRule, evaluate_reading
from ketaclinic.clinical.vitals import FIELD_LABELS, Treatment, VitalField, VitalReading, minutes_between


class Criterion(StrEnum):
    CRITICAL_ALERTS = "critical_alerts"
    EMERGENCY_CHECKLISTS = "emergency_checklists"
    MIN_MONITORING = "min_monitoring"
    VITALS = "vitals"
    SEDATION = "sedation"
    DISSOCIATION = "dissociation"
    CLINICALLY_STABLE = "clinically_stable"
    ESCORT = "escort"
    DRIVING_ADVICE = "driving_advice"


#: What staff read for each criterion (pages, the session report; core/labels.py).
CRITERION_LABELS: Final[Mapping[str, str]] = {
    Criterion.CRITICAL_ALERTS: "Critical alerts acknowledged",
    Criterion.EMERGENCY_CHECKLISTS: "Emergency checklists closed",
    Criterion.MIN_MONITORING: "Minimum observation time",
    Criterion.VITALS: "Vital signs",
    Criterion.SEDATION: "Sedation",
    Criterion.DISSOCIATION: "Dissociation",
    Criterion.CLINICALLY_STABLE: "Clinically stable",
    Criterion.ESCORT: "Escort present",
    Criterion.DRIVING_ADVICE: "Driving advice given",
}

PHYSIOLOGICAL: Final = (Criterion.VITALS, Criterion.SEDATION, Criterion.DISSOCIATION)
_ABSOLUTE_CODES: Final = frozenset(
    {
        AlertCode.SBP_HIGH,
        AlertCode.DBP_HIGH,
        AlertCode.HR_HIGH,
        AlertCode.HR_LOW,
        AlertCode.SPO2_LOW,
        AlertCode.RR_LOW,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptableRange:
    """Inclusive range a protocol accepts for discharge, whatever the baseline was."""

    low: int
    high: int
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DischargeConfig:
    min_monitoring_min: int
    min_monitoring_source: str
    min_monitoring_confirmed: bool
    min_monitoring_overridable: bool
    min_monitoring_from: str = "first dose"  # or "the end of the infusion": what the minimum counts from
    within_pct_of_baseline: int = 20
    within_pct_source: str = (
        "clinical.md §7.5: PADSS vital signs within 20 % of pre-op (Chung 1995); [U] for ketamine"
    )
    within_pct_confirmed: bool = False
    compared_fields: tuple[VitalField, ...] = (VitalField.SBP, VitalField.DBP, VitalField.HR)
    acceptable_ranges: Mapping[VitalField, AcceptableRange] = field(default_factory=dict)
    cadss_presence_threshold: int = 4
    cadss_source: str = "clinical.md §8: CADSS presence threshold '>4' [U]"
    cadss_confirmed: bool = False


ESKETAMINE_DISCHARGE: Final = DischargeConfig(
    min_monitoring_min=120,
    min_monitoring_source="clinical.md §2.3–§2.4: observe ≥2 h from first device (label boxed warning; REMS)",
    min_monitoring_confirmed=True,
    min_monitoring_overridable=False,
)
KETAMINE_DISCHARGE: Final = DischargeConfig(
    min_monitoring_min=120,
    min_monitoring_source=(
        "not in reference for IV/other ketamine: default copies the esketamine ≥2 h (clinical.md §2.3); "
        "set per protocol"
    ),
    min_monitoring_confirmed=False,
    min_monitoring_overridable=True,
)


def default_discharge_config(treatment: Treatment) -> DischargeConfig:
    return ESKETAMINE_DISCHARGE if treatment is Treatment.ESKETAMINE_NASAL else KETAMINE_DISCHARGE


def discharge_config_for(
    *,
    treatment: Treatment,
    observation_min: int,
    from_end_of_dose: bool,
    source: str,
    confirmed: bool,
) -> DischargeConfig:
    """The protocol's own observation time (``MonitoringPlan``). Esketamine keeps the label's ≥120 min from
    the first device, which nobody may shorten; for an IV infusion the minimum counts from the end of the
    infusion (a 4-hour CRPS infusion is not observation time, clinical.md §11)."""
    if treatment is Treatment.ESKETAMINE_NASAL:
        return replace(ESKETAMINE_DISCHARGE, min_monitoring_min=max(observation_min, 120))
    return replace(
        KETAMINE_DISCHARGE,
        min_monitoring_min=observation_min,
        min_monitoring_source=source,
        min_monitoring_confirmed=confirmed,
        min_monitoring_from="the end of the infusion" if from_end_of_dose else "first dose",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DischargeCriterion:
    criterion: Criterion
    met: bool
    reason: str
    source: str
    confirmed: bool
    overridable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DischargeOverride:
    criterion: Criterion
    reason: str
    clinician: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DischargeAssessment:
    criteria: tuple[DischargeCriterion, ...]
    ready_at: datetime | None
    minutes_until_ready: int | None  # from the first dose to ready_at (REMS form)


def _crit(
    criterion: Criterion,
    met: bool,
    reason: str,
    source: str,
    confirmed: bool = True,
    overridable: bool = True,
) -> DischargeCriterion:
    return DischargeCriterion(
        criterion=criterion,
        met=met,
        reason=reason,
        source=source,
        confirmed=confirmed,
        overridable=overridable,
    )


def _latest_with(readings: Sequence[VitalReading], needed: Sequence[VitalField]) -> VitalReading | None:
    for reading in reversed(readings):
        if all(reading.value(f) is not None for f in needed):
            return reading
    return None


def _vitals(
    post: Sequence[VitalReading],
    baseline: VitalReading | None,
    dose_started_at: datetime,
    config: DischargeConfig,
    rules: Mapping[AlertCode, AlertRule],
) -> DischargeCriterion:
    src = config.within_pct_source
    latest = _latest_with(post, config.compared_fields)
    if latest is None:
        names = ", ".join(FIELD_LABELS[f] for f in config.compared_fields)
        return _crit(
            Criterion.VITALS, False, f"No reading after dosing with {names}", src, config.within_pct_confirmed
        )
    pct = config.within_pct_of_baseline
    problems: list[str] = []
    for which in config.compared_fields:
        value = latest.value(which)
        assert value is not None  # _latest_with guarantees it
        base = baseline.value(which) if baseline is not None else None
        accepted = config.acceptable_ranges.get(which)
        # Integer-safe "within pct % of baseline": |v − b| × 100 ≤ pct × b.
        if base is not None and abs(value - base) * 100 <= pct * base:
            continue
        if accepted is not None and accepted.low <= value <= accepted.high:
            continue
        label = FIELD_LABELS[which]
        where = f"not within {pct}% of baseline {base:g}" if base is not None else "no baseline to compare"
        span = f" nor in {accepted.low}–{accepted.high}" if accepted is not None else ""
        problems.append(f"{label} {value:g} {where}{span}")
    alerts = [
        a
        for a in evaluate_reading(
            reading=latest,
            baseline=None,
            dose_started_at=dose_started_at,
            session_key="discharge",
            rules=rules,
        )
        if a.code in _ABSOLUTE_CODES
    ]
    confirmed = config.within_pct_confirmed and all(a.confirmed for a in alerts)
    sources = "; ".join([src, *(a.source for a in alerts)])
    when = minutes_between(dose_started_at, latest.taken_at)
    if problems or alerts:
        # Alert messages already say "at N min"; comparison problems get the prefix once.
        parts = ([f"At {when} min: " + "; ".join(problems)] if problems else []) + [a.message for a in alerts]
        return _crit(Criterion.VITALS, False, "; ".join(parts), sources, confirmed)
    return _crit(
        Criterion.VITALS,
        True,
        f"At {when} min: BP {latest.bp_text}, HR {latest.hr_bpm} acceptable",
        src,
        confirmed,
    )


def _sedation(
    post: Sequence[VitalReading], baseline: VitalReading | None, dose_at: datetime
) -> DischargeCriterion:
    src = "clinical.md §8: MOAA/S, any decrease from pre-dose = sedation (Spravato label)"
    base = baseline.moaas if baseline is not None else None
    latest = _latest_with(post, (VitalField.MOAAS,))
    if base is None:
        return _crit(Criterion.SEDATION, False, "No pre-dose MOAA/S recorded", src)
    if latest is None or latest.moaas is None:
        return _crit(Criterion.SEDATION, False, "No MOAA/S recorded after dosing", src)
    when = minutes_between(dose_at, latest.taken_at)
    if latest.moaas >= base:
        return _crit(Criterion.SEDATION, True, f"MOAA/S {latest.moaas} at {when} min (pre-dose {base})", src)
    return _crit(
        Criterion.SEDATION, False, f"MOAA/S {latest.moaas} at {when} min: still below pre-dose {base}", src
    )


def _dissociation(
    post: Sequence[VitalReading], baseline: VitalReading | None, dose_at: datetime, config: DischargeConfig
) -> DischargeCriterion:
    src, confirmed, limit = config.cadss_source, config.cadss_confirmed, config.cadss_presence_threshold
    latest = _latest_with(post, (VitalField.CADSS,))
    if latest is None or latest.cadss_total is None:
        return _crit(Criterion.DISSOCIATION, False, "No CADSS recorded after dosing", src, confirmed)
    score, base = latest.cadss_total, baseline.cadss_total if baseline is not None else None
    when = minutes_between(dose_at, latest.taken_at)
    if score <= limit:
        return _crit(Criterion.DISSOCIATION, True, f"CADSS {score} at {when} min (≤{limit})", src, confirmed)
    if base is not None and score <= base:
        reason = f"CADSS {score} at {when} min: back to pre-dose {base}"
        return _crit(Criterion.DISSOCIATION, True, reason, src, confirmed)
    ref = f"pre-dose {base}" if base is not None else "no pre-dose CADSS"
    reason = f"CADSS {score} at {when} min: above {limit} and above baseline ({ref})"
    return _crit(Criterion.DISSOCIATION, False, reason, src, confirmed)


def physiological_criteria(
    *,
    readings: Sequence[VitalReading],
    baseline: VitalReading | None,
    dose_started_at: datetime,
    config: DischargeConfig,
    alert_rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> list[DischargeCriterion]:
    """Vitals, sedation and dissociation judged on the readings taken since the first dose."""
    post = sorted((r for r in readings if r.taken_at >= dose_started_at), key=lambda r: r.taken_at)
    return [
        _vitals(post, baseline, dose_started_at, config, alert_rules),
        _sedation(post, baseline, dose_started_at),
        _dissociation(post, baseline, dose_started_at, config),
    ]


def ready_time(
    *,
    readings: Sequence[VitalReading],
    baseline: VitalReading | None,
    dose_started_at: datetime,
    config: DischargeConfig,
    alert_rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> datetime | None:
    """Earliest post-dose reading time from which all physiological criteria stayed met; else None."""
    post = sorted((r for r in readings if r.taken_at >= dose_started_at), key=lambda r: r.taken_at)
    ready: datetime | None = None
    for k, reading in enumerate(post):
        ok = all(
            c.met
            for c in physiological_criteria(
                readings=post[: k + 1],
                baseline=baseline,
                dose_started_at=dose_started_at,
                config=config,
                alert_rules=alert_rules,
            )
        )
        if not ok:
            ready = None
        elif ready is None:
            ready = reading.taken_at
    return ready


def assess_discharge(
    *,
    config: DischargeConfig,
    dose_started_at: datetime,
    now: datetime,
    readings: Sequence[VitalReading],
    baseline: VitalReading | None,
    clinician_confirms_stable: bool,
    escort_present: bool,
    driving_advice_given: bool,
    alert_rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
    monitoring_from: datetime | None = None,
    open_critical_alerts: Sequence[str] = (),
    open_checklists: Sequence[str] = (),
) -> DischargeAssessment:
    """Every discharge criterion now, plus when the patient was first (and stayed) physiologically ready.

    ``monitoring_from``: what the minimum observation counts from (the entry-checked first dose, or the end
    of an infusion); default ``dose_started_at``. An unacknowledged critical alert or an emergency
    checklist with steps still open blocks discharge, and nobody can override that."""
    anchor = monitoring_from or dose_started_at
    elapsed = minutes_between(anchor, now) if now >= anchor else 0
    need = config.min_monitoring_min
    since = f"since {config.min_monitoring_from}"
    if elapsed >= need:
        why = f"{elapsed} min {since} (minimum {need})"
    else:
        why = f"{elapsed} min {since}: minimum {need} min ({need - elapsed} min to go)"
    alerts_src = "clinical.md §2.3, §7.4 (label §5.6: BP high → act before the patient leaves); §11"
    criteria = [
        _crit(
            Criterion.CRITICAL_ALERTS,
            not open_critical_alerts,
            "No critical alert waiting"
            if not open_critical_alerts
            else "Acknowledge the critical alert(s) first: " + "; ".join(open_critical_alerts),
            alerts_src,
            overridable=False,
        ),
        _crit(
            Criterion.EMERGENCY_CHECKLISTS,
            not open_checklists,
            "No emergency checklist open"
            if not open_checklists
            else "Finish the emergency checklist(s) first: " + "; ".join(open_checklists),
            "clinical.md §7.4; the checklist's own steps (e.g. BP surge: no discharge until BP is acceptable)",
            overridable=False,
        ),
        _crit(
            Criterion.MIN_MONITORING,
            elapsed >= need,
            why,
            config.min_monitoring_source,
            config.min_monitoring_confirmed,
            config.min_monitoring_overridable,
        ),
        *physiological_criteria(
            readings=readings,
            baseline=baseline,
            dose_started_at=dose_started_at,
            config=config,
            alert_rules=alert_rules,
        ),
        _crit(
            Criterion.CLINICALLY_STABLE,
            clinician_confirms_stable,
            "Clinician judges the patient clinically stable"
            if clinician_confirms_stable
            else "Clinician has not yet confirmed the patient is clinically stable",
            "clinical.md §2.3 (label §5.1–5.2: assess clinical stability before leaving)",
            overridable=False,
        ),
        _crit(
            Criterion.ESCORT,
            escort_present,
            "Escort present" if escort_present else "No escort present to take the patient home",
            "clinical.md §2.3, §7.5 (label: someone must drive the patient home)",
        ),
        _crit(
            Criterion.DRIVING_ADVICE,
            driving_advice_given,
            "Driving advice given"
            if driving_advice_given
            else "Tell the patient: no driving or machinery until the next day after restful sleep",
            "clinical.md §2.3 (label §17, §5.8)",
        ),
    ]
    ready = ready_time(
        readings=readings,
        baseline=baseline,
        dose_started_at=dose_started_at,
        config=config,
        alert_rules=alert_rules,
    )
    return DischargeAssessment(
        criteria=tuple(criteria),
        ready_at=ready,
        minutes_until_ready=None if ready is None else minutes_between(dose_started_at, ready),
    )


def blocking_criteria(
    *, criteria: Sequence[DischargeCriterion], overrides: Sequence[DischargeOverride] = ()
) -> list[DischargeCriterion]:
    """Criteria not met and not validly overridden (non-empty reason and clinician; overridable)."""
    return [
        c
        for c in criteria
        if not c.met
        and not (
            c.overridable
            and any(
                o.criterion is c.criterion and o.reason.strip() and o.clinician.strip() for o in overrides
            )
        )
    ]


def discharge_allowed(
    *, criteria: Sequence[DischargeCriterion], overrides: Sequence[DischargeOverride] = ()
) -> bool:
    """True only when every criterion is met or overridden with a reason."""
    return not blocking_criteria(criteria=criteria, overrides=overrides)
