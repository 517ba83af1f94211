"""Clinic outcomes: how many patients responded and remitted on a rating scale over a period.

Per patient, as on the chart's trajectory (measures.services.trajectory): the **baseline** is the patient's
first score on the instrument, the **outcome** their latest score at or before the end of the period. A
patient counts for the period when that latest score falls within it and is not the baseline itself.
Response and remission are the instrument's own change rules (clinical/instruments/change.compare, with
their sources in clinical.md §0 and §8, and the clinic's defaults for the thresholds the reference leaves
open), applied to baseline → outcome. A rule that cannot be evaluated for a patient (a percentage from a
baseline of 0) leaves that patient out of that rule's denominator, so each rate says how many it is of.

Pure: no Django. Inputs are plain scores; the measures app reads them from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from ketaclinic.clinical.instruments.change import compare
from ketaclinic.clinical.instruments.registry import get_instrument


@dataclass(frozen=True)
class Score:
    at: datetime
    total: float


@dataclass(frozen=True)
class PatientOutcome:
    baseline: float
    outcome: float
    outcome_at: datetime
    percent_change: float | None
    response: bool | None
    remission: bool | None
    improved: bool | None = None  # the instrument's improvement rule, when one is asked for


@dataclass(frozen=True)
class RuleText:
    label: str
    source: str
    confirmed: bool


@dataclass(frozen=True)
class OutcomeSummary:
    instrument: str
    name: str
    patients: int  # with a baseline and an outcome score in the period
    responders: int
    response_evaluable: int
    remitters: int
    remission_evaluable: int
    median_percent_change: float | None
    response_rule: RuleText | None
    remission_rule: RuleText | None
    improved: int = 0
    improvement_evaluable: int = 0
    improvement_rule: RuleText | None = None

    @property
    def response_pct(self) -> float | None:
        return 100 * self.responders / self.response_evaluable if self.response_evaluable else None

    @property
    def remission_pct(self) -> float | None:
        return 100 * self.remitters / self.remission_evaluable if self.remission_evaluable else None

    @property
    def improvement_pct(self) -> float | None:
        return 100 * self.improved / self.improvement_evaluable if self.improvement_evaluable else None


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def patient_outcome(
    code: str, scores: Sequence[Score], since: datetime, until: datetime, improvement: str | None = None
) -> PatientOutcome | None:
    """The patient's baseline → latest-by-``until`` change, or None when that latest score is outside
    [since, until] or is the baseline (no follow-up yet). ``improvement`` names a change rule of the
    instrument (PCL-5's clinically meaningful improvement, IMMPACT's moderately important pain
    improvement) whose finding becomes ``improved``."""
    ordered = sorted(scores, key=lambda s: s.at)
    if len(ordered) < 2:
        return None
    baseline = ordered[0]
    upto = [s for s in ordered if s.at <= until]
    latest = upto[-1] if upto else None
    if latest is None or latest is baseline or latest.at < since:
        return None
    result = compare(code, _number(baseline.total), _number(latest.total))
    finding = result.finding(improvement) if improvement else None
    return PatientOutcome(
        baseline=baseline.total,
        outcome=latest.total,
        outcome_at=latest.at,
        percent_change=result.percent_change,
        response=result.response,
        remission=result.remission,
        improved=finding.met if finding is not None else None,
    )


def _rule(code: str, rule_code: str) -> RuleText | None:
    for rule in get_instrument(code).change_rules:
        if rule.code == rule_code:
            return RuleText(rule.label, rule.source, rule.confirmed)
    return None


def summarize(
    code: str,
    patients: Iterable[Sequence[Score]],
    since: datetime,
    until: datetime,
    improvement: str | None = None,
) -> OutcomeSummary:
    """Counts over every patient's outcome in [since, until] (see the module text); ``improvement`` as in
    :func:`patient_outcome`."""
    outcomes = [
        o
        for scores in patients
        if (o := patient_outcome(code, scores, since, until, improvement)) is not None
    ]
    changes = [o.percent_change for o in outcomes if o.percent_change is not None]
    return OutcomeSummary(
        instrument=code,
        name=get_instrument(code).name,
        patients=len(outcomes),
        responders=sum(1 for o in outcomes if o.response),
        response_evaluable=sum(1 for o in outcomes if o.response is not None),
        remitters=sum(1 for o in outcomes if o.remission),
        remission_evaluable=sum(1 for o in outcomes if o.remission is not None),
        median_percent_change=median(changes) if changes else None,
        response_rule=_rule(code, "response"),
        remission_rule=_rule(code, "remission"),
        improved=sum(1 for o in outcomes if o.improved),
        improvement_evaluable=sum(1 for o in outcomes if o.improved is not None),
        improvement_rule=_rule(code, improvement) if improvement else None,
    )
