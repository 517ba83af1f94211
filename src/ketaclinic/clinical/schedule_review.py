"""End-of-induction review (pure: no Django, no I/O).

The esketamine label says to evaluate therapeutic benefit at the end of induction to decide whether to
continue; for IV ketamine the consensus is to continue into maintenance only in responders (clinical.md
§11, §2.1, §1.4). Issue 14 found maintenance booked up front and continuing whatever the response. Now:

* Maintenance (and any optional phase) is proposed, not booked, when the plan is made.
* When the induction's last session is done (or earlier, on demand), a prescriber records the response on
  one of the protocol's scales with **the scale's own rule** (``assess_response``): the baseline is the last
  score at or before the first session, the outcome the latest score since; the rule is the instrument's
  response rule (≥50 % reduction for the depression scales, clinical.md §0), or for scales without one the
  rule §0 names for that condition (pain: IMMPACT moderately important, ≥30 %; PTSD on PCL-5: a clinically
  meaningful improvement, §8).
* The prescriber then decides (``decision_problems``): **continue** (books the maintenance phases chosen:
  every non-optional one, the optional ones ticked; continuing when the rule is not met, or cannot be
  evaluated, needs the prescriber's reason), **stop** the course (with the reason), or **extend** the
  induction within the protocol's limits: only the induction slots not given or booked (dropped for a
  closure, missed, cancelled) can be made up (``extendable_numbers``), never more than the phase's sessions.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.dose_check import MIN_REASON_CHARS
from ketaclinic.clinical.instruments.change import compare
from ketaclinic.clinical.instruments.errors import InstrumentError
from ketaclinic.clinical.instruments.registry import get_instrument
from ketaclinic.clinical.protocols import PhaseKind, Protocol, ScaleTiming

REVIEW_SOURCE: Final = (
    "clinical.md §11 and §2.1: evaluate therapeutic benefit at the end of induction to decide whether to "
    "continue (Spravato label); for IV, continue into maintenance only in responders (§1.4)"
)

#: The change rule read as "response" for scales without a response rule of their own (clinical.md §0).
RESPONSE_RULE_FOR: Final = {
    "pain-nrs": "immpact_moderate",  # §0: pain response ≥30 % NRS reduction = moderately important (IMMPACT)
    "pcl5": "pcl5_clinically_meaningful_improvement",  # §0 PTSD response is on CAPS-5; PCL-5 §8: 10–20 pts
}


class ReviewDecision(StrEnum):
    CONTINUE = "continue"
    STOP = "stop"
    EXTEND = "extend"


DECISION_LABELS: Final = {
    ReviewDecision.CONTINUE: "Continue into maintenance",
    ReviewDecision.STOP: "Stop the course",
    ReviewDecision.EXTEND: "Extend the induction",
}


def instrument_code(scale_key: str) -> str:
    """A protocol's scale key ("qids_sr16") as the rating-scale code ("qids-sr16")."""
    return scale_key.replace("_", "-")


def _rule_code(code: str) -> str | None:
    try:
        rules = {r.code for r in get_instrument(code).change_rules}
    except InstrumentError:
        return None
    wanted = RESPONSE_RULE_FOR.get(code, "response")
    return wanted if wanted in rules else None


def review_scales(protocol: Protocol) -> tuple[str, ...]:
    """The protocol's scales taken at the end of induction (or every session) that have a response rule."""
    wanted = (ScaleTiming.END_OF_INDUCTION, ScaleTiming.EVERY_SESSION)
    return tuple(
        s.scale
        for s in protocol.scales
        if any(t in wanted for t in s.timing) and _rule_code(instrument_code(s.scale)) is not None
    )


@dataclass(frozen=True)
class ScalePoint:
    at: datetime
    total: float


@dataclass(frozen=True)
class InductionResponse:
    scale: str  # the protocol's key
    instrument: str  # the rating-scale code
    name: str
    baseline: ScalePoint | None
    latest: ScalePoint | None
    percent_change: float | None
    rule_label: str
    rule_source: str
    rule_confirmed: bool
    met: bool | None  # None: cannot be evaluated (no baseline, no score since, a baseline of 0)
    remission: bool | None
    summary: str  # "MADRS 34 → 14 (−59 %): response (≥50% reduction from baseline)"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def assess_response(*, scale: str, scores: Sequence[ScalePoint], course_start: datetime) -> InductionResponse:
    """Baseline (last score at or before ``course_start``) → latest score after it, with the scale's rule."""
    code = instrument_code(scale)
    instrument = get_instrument(code)
    rule_code = _rule_code(code)
    rule = next((r for r in instrument.change_rules if r.code == rule_code), None)
    label = rule.label if rule else "no response rule for this scale"
    source = rule.source if rule else "clinical.md §0"
    confirmed = rule.confirmed if rule else False
    ordered = sorted(scores, key=lambda s: s.at)
    before = [s for s in ordered if s.at <= course_start]
    baseline = before[-1] if before else None
    after = [s for s in ordered if s.at > course_start]
    latest = after[-1] if after else None

    def result(
        met: bool | None, remission: bool | None, pct: float | None, summary: str
    ) -> InductionResponse:
        return InductionResponse(
            scale,
            code,
            instrument.name,
            baseline,
            latest,
            pct,
            label,
            source,
            confirmed,
            met,
            remission,
            summary,
        )

    if rule is None:
        return result(
            None, None, None, f"{instrument.name} has no response rule: judge the response yourself."
        )
    if baseline is None:
        return result(
            None,
            None,
            None,
            f"No {instrument.name} score at or before the first session: no baseline to compare.",
        )
    if latest is None:
        return result(
            None, None, None, f"No {instrument.name} score since the first session: take one first."
        )
    compared = compare(code, _number(baseline.total), _number(latest.total))
    finding = compared.finding(rule.code)
    met = finding.met if finding is not None else None
    pct = compared.percent_change
    change = f" ({pct:+.0f} %)" if pct is not None else ""
    verdict = {True: "met", False: "not met", None: "cannot be evaluated"}[met]
    summary = (
        f"{instrument.name} {_number(baseline.total)} → {_number(latest.total)}{change}: "
        f"{rule.label} — {verdict}"
    )
    if compared.remission:
        summary += "; remission"
    return result(met, compared.remission, pct, summary)


def extendable_numbers(protocol: Protocol, phase_index: int, held: Collection[int]) -> list[int]:
    """The course numbers of an induction phase's slots that no booked session holds: what may be made up."""
    phase = protocol.phases[phase_index]
    if phase.sessions is None:
        return []
    first = 1 + sum(p.sessions or 0 for p in protocol.phases[:phase_index])
    return [n for n in range(first, first + phase.sessions) if n not in held]


def induction_indexes(protocol: Protocol) -> tuple[int, ...]:
    return tuple(i for i, p in enumerate(protocol.phases) if p.kind is PhaseKind.INDUCTION)


def maintenance_indexes(protocol: Protocol) -> tuple[int, ...]:
    return tuple(i for i, p in enumerate(protocol.phases) if p.kind is PhaseKind.MAINTENANCE)


def decision_problems(
    *,
    protocol: Protocol,
    decision: ReviewDecision,
    response: InductionResponse | None,
    reason: str,
    phases: Collection[int],
    extra_sessions: int,
    extendable: int,
) -> dict[str, str]:
    """Field → why the decision cannot be recorded as given (empty when it can)."""
    errors: dict[str, str] = {}
    enough = len(reason.strip()) >= MIN_REASON_CHARS
    why = f"at least {MIN_REASON_CHARS} characters"
    if decision is ReviewDecision.CONTINUE:
        maintenance = maintenance_indexes(protocol)
        optional = {i for i in maintenance if protocol.phases[i].optional}
        bad = [i for i in phases if i not in maintenance]
        if not maintenance:
            errors["decision"] = (
                "this protocol has no maintenance phase: stop the course or extend the induction"
            )
        elif bad:
            errors["phases"] = (
                f"phases {', '.join(map(str, bad))} are not maintenance phases of this protocol"
            )
        elif not (set(maintenance) - optional) and not phases:
            errors["phases"] = "every maintenance phase is optional: tick the ones to book"
        met = response.met if response is not None else None
        if met is not True and not enough:
            state = "is not met" if met is False else "cannot be evaluated"
            errors["reason"] = (
                f"The response rule {state}: continuing into maintenance needs your reason ({why}; {REVIEW_SOURCE})."
            )
    elif decision is ReviewDecision.STOP:
        if not enough:
            errors["reason"] = f"say why the course stops ({why})"
    else:
        if extendable < 1:
            errors["extra_sessions"] = (
                "every induction session the protocol allows is already given or booked: nothing to make up"
            )
        elif not 1 <= extra_sessions <= extendable:
            errors["extra_sessions"] = (
                f"between 1 and {extendable}: the induction sessions not given or booked (protocol's limit)"
            )
        if not enough:
            errors["reason"] = f"say why the induction is extended ({why})"
    return errors
