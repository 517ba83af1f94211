"""The course rules as the database sees them: what a patient already has, what holds a chair, which courses
are active, the clinic's window for opening a course session. The decisions are the pure
``clinical/schedule_rules.py``; every path that books, moves, opens or checks in a session asks here
(plan booking, moving a session, scheduling at the chair, opening a course session, check-in, and the front
desk's calendar).

These are reads for a rule, not for display: they return times and kinds of session, never names, and are
not audited on their own (the act that asks is).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ketaclinic.accounts.models import Chair
from ketaclinic.clinical.schedule_rules import (
    ActiveCourse,
    BookedSession,
    Occupant,
    OpenWindow,
    chair_problem,
    same_day_problem,
)
from ketaclinic.patients.models import Patient
from ketaclinic.treatment.models import Plan, PlanSession, PlanStatus, SessionStatus


def open_window() -> OpenWindow:
    """The clinic's window for opening a booked course session (settings; clinic default, unconfirmed)."""
    return OpenWindow(before_minutes=settings.KETACLINIC_COURSE_OPEN_BEFORE_MIN)


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, time.min, tzinfo=zone)
    return begin, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def _held_treatment_sessions(patient: Patient) -> Any:
    """Chair sessions outside a plan that take the patient's day: scheduled, under way or given, and those
    stopped after a dose (a session stopped before any dose leaves the day free)."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession

    return TreatmentSession.objects.filter(patient=patient, planned_session_id__isnull=True).filter(
        Q(status__in=[Status.SCHEDULED, *ACTIVE_STATUSES, Status.DISCHARGED])
        | Q(status=Status.STOPPED, dose_started_at__isnull=False)
    )


def patient_sessions(
    patient: Patient,
    begin: datetime,
    end: datetime,
    *,
    exclude_plan_session: Any = None,
    exclude_treatment: Any = None,
    exclude_plan: Any = None,
) -> list[BookedSession]:
    """The patient's sessions starting in [begin, end): booked course sessions (any course) and chair
    sessions outside a plan, as (start, what) without names."""
    rows = PlanSession.objects.filter(
        patient=patient, status=SessionStatus.BOOKED, start__gte=begin, start__lt=end
    )
    if exclude_plan_session is not None:
        rows = rows.exclude(pk=exclude_plan_session)
    if exclude_plan is not None:
        rows = rows.exclude(plan=exclude_plan)
    out = [BookedSession(r.start, f"course session {r.number}") for r in rows]
    chair = _held_treatment_sessions(patient).filter(scheduled_at__gte=begin, scheduled_at__lt=end)
    if exclude_treatment is not None:
        chair = chair.exclude(pk=exclude_treatment)
    out += [BookedSession(t.scheduled_at, "session at the chair") for t in chair]
    return sorted(out, key=lambda s: s.start)


def same_day_problem_for(
    patient: Patient,
    start: datetime,
    *,
    exclude_plan_session: Any = None,
    exclude_treatment: Any = None,
) -> str | None:
    """Why the patient may not have a session at ``start`` (another that day, in the site's zone)."""
    zone = patient.site.zone
    begin, end = _day_bounds(start.astimezone(zone).date(), zone)
    others = patient_sessions(
        patient, begin, end, exclude_plan_session=exclude_plan_session, exclude_treatment=exclude_treatment
    )
    return same_day_problem(start=start, zone=zone, others=others)


def busy_days(patient: Patient, since: date, until: date, *, exclude_plan: Any = None) -> dict[date, str]:
    """Days in [since, until] on which the patient already has a session (for the scheduler)."""
    zone = patient.site.zone
    begin, _ = _day_bounds(since, zone)
    _, end = _day_bounds(until, zone)
    days: dict[date, str] = {}
    for s in patient_sessions(patient, begin, end, exclude_plan=exclude_plan):
        day = s.start.astimezone(zone).date()
        days.setdefault(day, f"the patient already has a session that day ({s.what})")
    return days


def chair_occupants(chair: Chair, *, now: datetime, exclude_session: Any = None) -> list[Occupant]:
    """Sessions under way in ``chair`` (checked in until discharged or stopped), each expected to hold it
    until its chair time is over, and at least until now."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession
    from ketaclinic.treatment.services import chair_minutes_for

    rows = TreatmentSession.objects.filter(chair=chair, status__in=ACTIVE_STATUSES)
    if exclude_session is not None:
        rows = rows.exclude(pk=exclude_session)
    out = []
    for row in rows:
        checked_in = (
            row.events.filter(to_status=Status.CHECKED_IN).order_by("at").values_list("at", flat=True).first()
        )
        since = checked_in or row.scheduled_at
        expected = max(since, row.scheduled_at) + timedelta(minutes=chair_minutes_for(row.protocol_id))
        out.append(Occupant(since=since, until=max(expected, now + timedelta(minutes=1))))
    return out


def chair_problem_for(
    chair: Chair, start: datetime, *, now: datetime | None = None, exclude_session: Any = None
) -> str | None:
    """Why a session from ``start`` may not take ``chair``: another session is under way in it."""
    moment = now or timezone.now()
    return chair_problem(
        chair=chair.label,
        start=start,
        occupants=chair_occupants(chair, now=moment, exclude_session=exclude_session),
        zone=chair.site.zone,
    )


# --- courses ---------------------------------------------------------------------------------------------


def _awaiting_review(plan: Plan) -> bool:
    return bool(plan.proposals) and not plan.reviews.exists()


def active_courses(patient: Patient, *, now: datetime | None = None) -> list[Plan]:
    """The patient's courses in progress: not stopped, with a booked session still to come or an
    end-of-induction review still to record."""
    moment = now or timezone.now()
    plans = Plan.objects.filter(patient=patient, status=PlanStatus.ACTIVE).select_related("protocol")
    return [
        p
        for p in plans
        if p.sessions.filter(status=SessionStatus.BOOKED, end__gt=moment).exists() or _awaiting_review(p)
    ]


def course_summaries(plans: Iterable[Plan], *, now: datetime | None = None) -> list[ActiveCourse]:
    moment = now or timezone.now()
    out = []
    for plan in plans:
        zone = plan.site.zone
        out.append(
            ActiveCourse(
                name=plan.protocol.name,
                first=timezone.localtime(
                    plan.sessions.order_by("start").values_list("start", flat=True).first() or moment, zone
                ).date(),
                to_come=plan.sessions.filter(status=SessionStatus.BOOKED, end__gt=moment).count(),
            )
        )
    return out
