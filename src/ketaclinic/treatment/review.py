"""End-of-induction review: the response on the protocol's scale, by the scale's own rule, and a prescriber's
decision — continue into maintenance (books it), stop the course, or extend the induction within the
protocol's limits. The rules are the pure ``clinical/schedule_review.py``; the booking is the same layout
as a new course (``clinical/schedule_layout.continue_course``: never packed, each phase at least its own
cadence after the last session, never before tomorrow). A maintenance session opens only after a review
that decided to continue (treatment/opening.py). Audited; the plan page and the JSON API show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical.protocols import Cadence, Protocol
from ketaclinic.clinical.schedule import PlannedSession, ScheduleInputError, continue_course
from ketaclinic.clinical.schedule_review import (
    InductionResponse,
    ReviewDecision,
    ScalePoint,
    assess_response,
    decision_problems,
    extendable_numbers,
    induction_indexes,
    instrument_code,
    maintenance_indexes,
    review_scales,
)
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.treatment import library, rules
from ketaclinic.treatment.models import InductionReview, Plan, PlanStatus, SessionStatus
from ketaclinic.treatment.services import (
    CATEGORY,
    OPEN_ENDED_SESSIONS,
    PlanValidationError,
    TreatmentError,
    TreatmentForbidden,
    book_sessions,
    site_calendar,
    stop_course,
)


@dataclass(frozen=True)
class ReviewState:
    """What the plan page and the API show about the review."""

    due: bool  # the induction's last session is done and no review decided to continue or stop yet
    responses: list[InductionResponse]  # one per scale of the protocol that has a response rule
    maintenance: list[dict[str, Any]]  # maintenance phases not yet booked: index, name, optional, cadences
    extendable: list[int]  # induction slots that may be made up
    reviews: list[InductionReview]
    may_open_maintenance: bool


def _course_start(plan: Plan) -> datetime | None:
    return plan.sessions.order_by("start").values_list("start", flat=True).first()


def _scores(plan: Plan, scale: str) -> list[ScalePoint]:
    from ketaclinic.measures.models import ScaleAdministration

    rows = ScaleAdministration.objects.filter(
        patient=plan.patient, organization_id=plan.organization_id, instrument=instrument_code(scale)
    ).exclude(total__isnull=True)
    return [
        ScalePoint(at, total)
        for at, total in rows.values_list("administered_at", "total")
        if total is not None
    ]


def _induction_rows(plan: Plan) -> Any:
    return plan.sessions.filter(phase_kind="induction")


def _booked_phases(plan: Plan, protocol: Protocol) -> set[int]:
    booked: set[int] = set()
    for number in plan.sessions.filter(status=SessionStatus.BOOKED).values_list("number", flat=True):
        try:
            booked.add(protocol.phases.index(protocol.dose_for_session(number)[0]))
        except ValueError:
            continue
    return booked


def _maintenance_open(plan: Plan, protocol: Protocol) -> list[dict[str, Any]]:
    booked = _booked_phases(plan, protocol)
    return [
        {
            "index": i,
            "name": protocol.phases[i].name,
            "optional": protocol.phases[i].optional,
            "sessions": protocol.phases[i].sessions,
            "cadences": [
                c.describe() for c in (protocol.phases[i].cadence, *protocol.phases[i].alternative_cadences)
            ],
            "dose_text": protocol.phases[i].dose.describe(),
            "source": protocol.phases[i].source,
            "note": protocol.phases[i].note,
        }
        for i in maintenance_indexes(protocol)
        if i not in booked
    ]


def _extendable(plan: Plan, protocol: Protocol) -> tuple[int, list[int]]:
    index = induction_indexes(protocol)[-1]
    held = set(_induction_rows(plan).filter(status=SessionStatus.BOOKED).values_list("number", flat=True))
    return index, extendable_numbers(protocol, index, held)


def review_state(
    *, user: User, plan: Plan, request: HttpRequest | None = None, now: datetime | None = None
) -> ReviewState:
    """The review as it stands (reads the patient's scale scores: audited)."""
    moment = now or timezone.now()
    protocol = library.as_protocol(plan.protocol)
    start = _course_start(plan)
    responses = (
        [
            assess_response(scale=s, scores=_scores(plan, s), course_start=start)
            for s in review_scales(protocol)
        ]
        if start is not None
        else []
    )
    reviews = list(plan.reviews.select_related("decided_by").order_by("decided_at"))
    pending = _induction_rows(plan).filter(status=SessionStatus.BOOKED, end__gt=moment).exists()
    _index, extendable = _extendable(plan, protocol)
    latest = reviews[-1] if reviews else None
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=plan.patient,
        object_type="Plan",
        object_id=plan.pk,
        request=request,
        detail=f"end-of-induction review: {len(responses)} scale(s), {len(reviews)} review(s)",
    )
    return ReviewState(
        due=plan.status == PlanStatus.ACTIVE
        and not pending
        and plan.sessions.exists()
        and (latest is None or latest.decision == ReviewDecision.EXTEND.value),
        responses=responses,
        maintenance=_maintenance_open(plan, protocol),
        extendable=extendable,
        reviews=reviews,
        may_open_maintenance=latest is not None and latest.decision == ReviewDecision.CONTINUE.value,
    )


def _cadences(protocol: Protocol, choices: dict[int, str], errors: dict[str, str]) -> dict[int, Cadence]:
    out: dict[int, Cadence] = {}
    for index, text in choices.items():
        if not 0 <= index < len(protocol.phases):
            errors[f"cadence[{index}]"] = "no such phase"
            continue
        phase = protocol.phases[index]
        allowed = {c.describe(): c for c in (phase.cadence, *phase.alternative_cadences)}
        if text not in allowed:
            errors[f"cadence[{index}]"] = f"'{phase.name}' can be {', '.join(allowed)}"
            continue
        out[index] = allowed[text]
    return out


def _book(
    *,
    plan: Plan,
    protocol: Protocol,
    phases: list[int],
    cadences: dict[int, Cadence],
    numbers: dict[int, list[int]] | None,
    now: datetime,
) -> tuple[list[PlannedSession], Any]:
    site = plan.site
    zone = site.zone
    given = [
        (n, timezone.localtime(s, zone).date())
        for n, s in plan.sessions.filter(status=SessionStatus.BOOKED).values_list("number", "start")
    ]
    tomorrow = timezone.localtime(now, zone).date() + timedelta(days=1)
    preferred = (plan.inputs or {}).get("preferred_time")
    first = _course_start(plan)
    try:
        course = continue_course(
            protocol=protocol,
            site=site_calendar(site, now),
            phases=phases,
            given=given,
            course_start=timezone.localtime(first, zone).date() if first else tomorrow,
            not_before=tomorrow,
            preferred_time=time.fromisoformat(preferred) if preferred else None,
            cadence_choices=cadences,
            open_ended_sessions=OPEN_ENDED_SESSIONS,
            busy_days=rules.busy_days(
                plan.patient, tomorrow, tomorrow + timedelta(days=400), exclude_plan=plan
            ),
            numbers=numbers,
        )
    except ScheduleInputError as exc:
        raise PlanValidationError({k: v for k, v in exc.errors.items()}) from None
    return list(course.sessions), course


def record_review(
    *,
    user: User,
    plan: Plan,
    decision: str,
    reason: str = "",
    scale: str = "",
    phases: list[int] | None = None,
    cadences: dict[int, str] | None = None,
    extra_sessions: int = 0,
    request: HttpRequest | None = None,
    client: str = "",
    now: datetime | None = None,
) -> InductionReview:
    """Record the end-of-induction review and carry out the decision (see the module text).

    ``scale``: one of the protocol's review scales (default: the first); ``phases``: the optional
    maintenance phases to book (non-optional ones are always booked); ``cadences``: a phase's chosen
    cadence by its text ("weekly"); ``extra_sessions``: induction sessions to make up (extend)."""
    if user.role != PRESCRIBER:
        raise TreatmentForbidden("Only a prescriber records the end-of-induction review.")
    if plan.status != PlanStatus.ACTIVE:
        raise TreatmentError("The course was stopped: there is nothing to review.")
    moment = now or timezone.now()
    protocol = library.as_protocol(plan.protocol)
    errors: dict[str, str] = {}
    try:
        choice = ReviewDecision(decision)
    except ValueError:
        raise PlanValidationError({"decision": "choose continue, stop or extend"}) from None
    scales = review_scales(protocol)
    chosen_scale = scale or (scales[0] if scales else "")
    if chosen_scale and chosen_scale not in scales:
        errors["scale"] = f"choose one of the protocol's scales: {', '.join(scales)}"
    start = _course_start(plan)
    response = (
        assess_response(scale=chosen_scale, scores=_scores(plan, chosen_scale), course_start=start)
        if chosen_scale and start is not None and "scale" not in errors
        else None
    )
    open_phases = {m["index"]: m for m in _maintenance_open(plan, protocol)}
    wanted = sorted({*(phases or []), *(i for i, m in open_phases.items() if not m["optional"])})
    not_open = [i for i in wanted if i not in open_phases]
    if choice is ReviewDecision.CONTINUE and not_open:
        errors["phases"] = (
            f"phase(s) {', '.join(map(str, not_open))} are not maintenance phases still to book"
        )
    cadence_map = _cadences(protocol, cadences or {}, errors)
    index, extendable = _extendable(plan, protocol)
    errors |= {
        k: v
        for k, v in decision_problems(
            protocol=protocol,
            decision=choice,
            response=response,
            reason=reason,
            phases=wanted,
            extra_sessions=extra_sessions,
            extendable=len(extendable),
        ).items()
        if k not in errors
    }
    if errors:
        raise PlanValidationError(errors)
    notes: list[str] = []
    if choice is ReviewDecision.CONTINUE:
        sessions, course = _book(
            plan=plan, protocol=protocol, phases=wanted, cadences=cadence_map, numbers=None, now=moment
        )
        notes = [*course.conflicts, *course.unscheduled]
    elif choice is ReviewDecision.EXTEND:
        sessions, course = _book(
            plan=plan,
            protocol=protocol,
            phases=[index],
            cadences={},
            numbers={index: extendable[:extra_sessions]},
            now=moment,
        )
        span = protocol.phases[index].max_span_days
        days = sorted(
            [
                timezone.localtime(s, plan.site.zone).date()
                for s in _induction_rows(plan)
                .filter(status=SessionStatus.BOOKED)
                .values_list("start", flat=True)
            ]
            + [s.start.date() for s in sessions]
        )
        if span is not None and days and (days[-1] - days[0]).days + 1 > span:
            raise PlanValidationError(
                {
                    "extra_sessions": f"the induction would span {(days[-1] - days[0]).days + 1} days; "
                    f"'{protocol.phases[index].name}' allows up to {span} days ({protocol.phases[index].source})"
                }
            )
        notes = [*course.conflicts, *course.unscheduled]
    else:
        sessions = []
    locked = Plan.objects.filter(pk=plan.pk, version=plan.version, status=PlanStatus.ACTIVE).update(
        version=plan.version + 1
    )
    if locked != 1:
        raise TreatmentError("Someone changed this plan at the same moment; reload it.")
    plan.refresh_from_db()
    review = InductionReview.objects.create(
        organization_id=plan.organization_id,
        plan=plan,
        scale=chosen_scale if response is not None else "",
        baseline_total=response.baseline.total if response and response.baseline else None,
        baseline_at=response.baseline.at if response and response.baseline else None,
        latest_total=response.latest.total if response and response.latest else None,
        latest_at=response.latest.at if response and response.latest else None,
        percent_change=response.percent_change if response else None,
        rule=response.rule_label if response else "",
        rule_source=response.rule_source if response else "",
        response_met=response.met if response else None,
        remission=response.remission if response else None,
        summary=(response.summary if response else "No scale for this protocol: the prescriber judged it.")[
            :500
        ],
        decision=choice.value,
        phases=wanted
        if choice is ReviewDecision.CONTINUE
        else ([index] if choice is ReviewDecision.EXTEND else []),
        reason=reason.strip(),
        decided_by=user,
        decided_at=moment,
    )
    if sessions:
        missing = book_sessions(plan=plan, sessions=sessions, site=plan.site)
        review.sessions_booked = sorted(s.number for s in sessions)
        review.save(update_fields=["sessions_booked"])
        notes += missing
    still = {m["index"] for m in _maintenance_open(plan, protocol)}
    plan.proposals = [p for p in plan.proposals if p.get("index") in still] if plan.proposals else []
    plan.conflicts = [*plan.conflicts, *notes]
    plan.save(update_fields=["proposals", "conflicts"])
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=plan.patient,
        object_type="InductionReview",
        object_id=review.pk,
        after={
            "plan": str(plan.pk),
            "decision": choice.value,
            "scale": review.scale,
            "response": review.summary,
            "response_met": review.response_met,
            "reason": review.reason,
            "sessions_booked": review.sessions_booked,
        },
        request=request,
        client=client,
        detail="end-of-induction review",
    )
    if choice is ReviewDecision.STOP:
        stop_course(
            user=user,
            plan=plan,
            reason=f"End-of-induction review: {reason.strip()}",
            request=request,
            client=client,
        )
    return review
