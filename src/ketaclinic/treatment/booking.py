"""Booking from the calendar (issue 14 point 6): free chair slots per site, a course session booked into a
slot, and sessions moved off a day the site has since closed.

What a booking is. The front desk books *slots*, not doses: a chair session carries a prescribed dose, which
the front desk never sets (clinical/dose_check.py stays a prescriber's and nurse's matter). So a booking moves
one of the patient's course sessions — booked by a prescriber's plan, with the plan's dose — into a free chair
at a free time. A patient without an active course cannot be booked: a prescriber plans the course, which
books its sessions. Every role that books (front desk, nurses, prescribers) is held to the same rules:

- the site is open then (opening hours, closures and public holidays: treatment.services.site_calendar, the
  calendar the scheduler reads) and has chair and nurse capacity left (clinical.schedule.slot_problem);
- the chair is free then (treatment.services.chair_bookings: course sessions and chair sessions outside a
  plan) — one patient per chair;
- the patient has no other session that day (``rules.same_day_problem_for``, the course rules' own check);
- the course's sessions keep their order (``order_problem``: each session's dose is its number's);
- the course's spacing (clinical.schedule.spacing_problems): the front desk cannot book closer than the
  phase allows; a nurse or prescriber may, with the reason, as on the plan page.

The move itself is treatment.services.reschedule_session (with the chair picked), so every rule that function
enforces applies here too. Nothing is booked in the past, nor a session already opened at the chair.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.models import Chair, Site, User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.clinical.schedule import SiteCalendar, slot_problem, spacing_problems
from ketaclinic.core.access import FRONT_DESK, NURSE, PATIENT_REGISTRY
from ketaclinic.core.plausible import time_problem
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import visible_patients
from ketaclinic.treatment import library, rules
from ketaclinic.treatment.models import PlanSession, PlanStatus, SessionStatus
from ketaclinic.treatment.services import (
    SLOT_MINUTES,
    NotFound,
    PlanValidationError,
    TreatmentForbidden,
    _opening_hours,
    active_chairs,
    audit_calendar_read,
    chair_bookings,
    chair_minutes_for,
    reschedule_session,
    scheduled_outside_plan,
    site_calendar,
)

SUGGEST_DAYS = 14  # how far from its day a session is offered a new slot, either side (a display choice)


# --- free slots on the calendar ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FreeSpan:
    """A stretch of time a chair is free within the opening hours (no PHI: times and a chair)."""

    chair_id: int
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def _chair_holds(site: Site, begin: datetime, finish: datetime) -> dict[int, list[tuple[datetime, datetime]]]:
    """What holds each chair in [begin, finish): booked course sessions and chair sessions outside a plan,
    scheduled or under way (the same ones chair_bookings counts)."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession

    holds: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for chair_id, start, end in PlanSession.objects.filter(
        site=site, status=SessionStatus.BOOKED, chair__isnull=False, start__lt=finish, end__gt=begin
    ).values_list("chair_id", "start", "end"):
        holds[chair_id].append((start, end))
    for chair_id, at, protocol_id in TreatmentSession.objects.filter(
        site=site,
        chair__isnull=False,
        planned_session_id__isnull=True,
        status__in=[Status.SCHEDULED, *ACTIVE_STATUSES],
        scheduled_at__lt=finish,
        scheduled_at__gt=begin - timedelta(hours=6),
    ).values_list("chair_id", "scheduled_at", "protocol_id"):
        end = at + timedelta(minutes=chair_minutes_for(protocol_id))
        if end > begin:
            holds[chair_id].append((at, end))
    return holds


def _round_up(moment: datetime) -> datetime:
    step = SLOT_MINUTES * 60
    return datetime.fromtimestamp(math.ceil(moment.timestamp() / step) * step, tz=moment.tzinfo)


def free_spans(
    site: Site, first_day: date, days: int, *, now: datetime | None = None
) -> dict[date, dict[int, list[FreeSpan]]]:
    """Per day and active chair, the free stretches of at least one slot within the opening hours, from now
    on; none on a closed day (a closure, a public holiday, a day the site does not open)."""
    now = now or timezone.now()
    zone = site.zone
    hours = _opening_hours(site)
    closed = set(
        site.closures.filter(day__gte=first_day, day__lt=first_day + timedelta(days=days)).values_list(
            "day", flat=True
        )
    )
    begin = datetime.combine(first_day, time.min, tzinfo=zone)
    holds = _chair_holds(site, begin, begin + timedelta(days=days + 1))
    chairs = active_chairs(site)
    out: dict[date, dict[int, list[FreeSpan]]] = {}
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        span = hours.get(day.weekday())
        out[day] = {}
        if span is None or day in closed:
            continue
        opens = max(datetime.combine(day, span.opens, tzinfo=zone), _round_up(now).astimezone(zone))
        closes = datetime.combine(day, span.closes, tzinfo=zone)
        for chair in chairs:
            spans: list[FreeSpan] = []
            cursor = opens
            for start, end in sorted(holds.get(chair.pk, [])):
                if start > cursor:
                    spans.append(FreeSpan(chair.pk, cursor, min(start, closes)))
                cursor = max(cursor, end)
            if cursor < closes:
                spans.append(FreeSpan(chair.pk, cursor, closes))
            out[day][chair.pk] = [s for s in spans if s.minutes >= SLOT_MINUTES]
    return out


# --- booking a course session into a slot ------------------------------------------------------------------


def _not_bookable(session: PlanSession) -> str | None:
    from ketaclinic.chairside.models import TreatmentSession

    if session.status != SessionStatus.BOOKED:
        return f"session {session.number} is {session.get_status_display().lower()}"
    if session.plan.status != PlanStatus.ACTIVE:
        return "the course was stopped"
    if TreatmentSession.objects.filter(planned_session=session).exists():
        return f"session {session.number} was already opened at the chair"
    return None


def order_problem(
    session: PlanSession, start: datetime, others: list[tuple[int, datetime]], zone: Any
) -> str | None:
    """A course's sessions keep their order (each session's dose is its number's: the first dose, the
    induction, the maintenance): ``start`` must fall after the previous booked session and before the next.
    ``others``: (number, start) of the course's other booked sessions."""
    before = [at for number, at in others if number < session.number]
    after = [at for number, at in others if number > session.number]
    if before and start <= max(before):
        at = max(before).astimezone(zone)
        return f"would come before the course's previous session ({at:%a} {at.day} {at:%b %H:%M}): a course's sessions keep their order"
    if after and start >= min(after):
        at = min(after).astimezone(zone)
        return f"would come after the course's next session ({at:%a} {at.day} {at:%b %H:%M}): a course's sessions keep their order"
    return None


@dataclass(frozen=True)
class SlotCheck:
    """Why ``session`` cannot go into ``chair`` at ``start`` (field → reason), and the course-spacing
    problems a nurse or prescriber may decide past with a reason."""

    problems: dict[str, str]
    spacing: list[str]

    @property
    def clear(self) -> bool:
        return not self.problems and not self.spacing


def check_slot(
    session: PlanSession,
    chair: Chair,
    start: datetime,
    *,
    now: datetime | None = None,
    calendar: SiteCalendar | None = None,
) -> SlotCheck:
    """Every rule of a booking, without writing anything (the booking page's suggestions use it too)."""
    now = now or timezone.now()
    site = session.site
    problems: dict[str, str] = {}
    not_bookable = _not_bookable(session)
    if not_bookable:
        problems["session"] = not_bookable
    if start.tzinfo is None:
        start = start.replace(tzinfo=site.zone)
    if why := time_problem(start, born=session.patient.date_of_birth, planned=True, now=now):
        return SlotCheck({"start": why}, [])  # judged before any arithmetic on it (year 9999)
    end = start + (session.end - session.start)
    if start < now:
        problems["start"] = "is in the past"
    if chair.site_id != site.pk or not chair.active:
        problems["chair"] = f"{chair.label} is not an active chair at {site.name}"
    if problems:
        return SlotCheck(problems, [])
    others = list(
        PlanSession.objects.filter(plan=session.plan, status=SessionStatus.BOOKED)
        .exclude(pk=session.pk)
        .values_list("number", "start")
    )
    problem = slot_problem(
        calendar or site_calendar(site, now, exclude=session), start, end
    ) or order_problem(session, start, others, site.zone)
    if problem:
        problems["start"] = problem
    taken = chair_bookings(chair, start, end, exclude=session)
    if taken:
        problems["chair"] = f"{chair.label} is taken then ({'; '.join(taken)})"
    that_day = rules.same_day_problem_for(session.patient, start, exclude_plan_session=session.pk)
    if that_day:
        problems.setdefault("start", that_day)
    spacing = spacing_problems(
        library.as_protocol(session.plan.protocol), session.number, start, others, site.zone
    )
    return SlotCheck(problems, spacing)


def _scoped(user: User, session: PlanSession) -> None:
    if user.role not in PATIENT_REGISTRY:
        raise TreatmentForbidden("Only the front desk, nurses and prescribers book sessions.")
    if (
        session.site not in covered_sites(user)
        or not visible_patients(user).filter(pk=session.patient_id).exists()
    ):
        raise NotFound("No such session.")


def book_course_session(
    *,
    user: User,
    session: PlanSession,
    chair: Chair,
    start: datetime,
    spacing_override_reason: str = "",
    request: HttpRequest | None = None,
) -> PlanSession:
    """Book course ``session`` into ``chair`` at ``start`` (a slot picked on the calendar), within the rules
    of the module docstring; every refusal names its field and reason (PlanValidationError, 422). Closer than
    the course's spacing: refused for the front desk, and for a nurse or prescriber without the reason.
    Audited by reschedule_session (before and after: time and chair)."""
    _scoped(user, session)
    if start.tzinfo is None:
        start = start.replace(tzinfo=session.site.zone)
    check = check_slot(session, chair, start)
    if check.problems:
        raise PlanValidationError(check.problems)
    reason = spacing_override_reason.strip()
    if check.spacing:
        if user.role == FRONT_DESK:
            raise PlanValidationError(
                {
                    "start": "; ".join(check.spacing)
                    + ". Only a nurse or prescriber may book it closer than the course's spacing: ask them, "
                    "or choose a later slot"
                }
            )
        if len(reason) < 3:
            raise PlanValidationError(
                {
                    "spacing_override_reason": "; ".join(check.spacing)
                    + ". To book it anyway, give the reason."
                }
            )
    return reschedule_session(
        user=user,
        session=session,
        new_start=start,
        spacing_override_reason=reason if check.spacing else "",
        chair=chair,
        request=request,
    )


def movable_sessions(
    *, user: User, patients: list[Patient], site: Site, request: HttpRequest | None = None
) -> dict[Any, list[PlanSession]]:
    """Per patient, the course sessions a booking may move: booked, of an active course at ``site``, still to
    come or today, not opened at the chair. One audited read (the booking page lists them)."""

    ids = [p.pk for p in patients]
    today = datetime.combine(timezone.localdate(timezone.now(), site.zone), time.min, tzinfo=site.zone)
    rows = (
        PlanSession.objects.filter(
            patient_id__in=ids,
            patient__in=visible_patients(user),
            site=site,
            status=SessionStatus.BOOKED,
            plan__status=PlanStatus.ACTIVE,
            start__gte=today,
        )
        .filter(treatment_session__isnull=True)  # not opened at the chair yet
        .select_related("chair", "plan")
        .order_by("start")
    )
    out: dict[Any, list[PlanSession]] = defaultdict(list)
    for row in rows:
        out[row.patient_id].append(row)
    audit_calendar_read(
        user=user,
        site=site,
        request=request,
        detail=f"booking: {sum(len(v) for v in out.values())} course session(s) of {len(ids)} patient(s)",
    )
    return out


@dataclass(frozen=True)
class Suggestion:
    chair: Chair
    start: datetime


def suggest_slots(session: PlanSession, *, limit: int = 3, now: datetime | None = None) -> list[Suggestion]:
    """Free slots for ``session`` that pass every rule, spacing included (never closer to the course's other
    sessions than it allows): the same time of day on the nearest days before or after its own (the later
    first when two are as near), within SUGGEST_DAYS, from today on; one per day, the first free chair;
    listed by date.
    The same rules as :func:`check_slot`, read once for the whole window (a few queries, not one per day)."""
    now = now or timezone.now()
    site, zone = session.site, session.site.zone
    chairs = active_chairs(site)
    if not chairs or _not_bookable(session):
        return []
    local = session.start.astimezone(zone)
    length = session.end - session.start
    today = timezone.localdate(now, zone)
    window = (
        datetime.combine(local.date() - timedelta(days=SUGGEST_DAYS), time.min, tzinfo=zone),
        datetime.combine(local.date() + timedelta(days=SUGGEST_DAYS + 1), time.min, tzinfo=zone),
    )
    calendar = site_calendar(site, now, exclude=session)
    holds = _chair_holds(site, *window)
    for chair_id, start, end in PlanSession.objects.filter(pk=session.pk).values_list(
        "chair_id", "start", "end"
    ):
        if chair_id is not None and (start, end) in holds.get(chair_id, []):
            holds[chair_id].remove((start, end))  # its own booking does not hold a chair against it
    others = list(
        PlanSession.objects.filter(plan=session.plan, status=SessionStatus.BOOKED)
        .exclude(pk=session.pk)
        .values_list("number", "start")
    )
    protocol = library.as_protocol(session.plan.protocol)
    patient_days = {
        s.start.astimezone(zone).date()
        for s in rules.patient_sessions(session.patient, *window, exclude_plan_session=session.pk)
    }
    offsets = sorted((o for o in range(-SUGGEST_DAYS, SUGGEST_DAYS + 1) if o), key=lambda o: (abs(o), o < 0))
    found: list[Suggestion] = []
    for offset in offsets:
        day = local.date() + timedelta(days=offset)
        start = datetime.combine(day, local.time(), tzinfo=zone)
        end = start + length
        if (
            day < today
            or start < now
            or day in patient_days
            or slot_problem(calendar, start, end)
            or order_problem(session, start, others, zone)
            or spacing_problems(protocol, session.number, start, others, zone)
        ):
            continue
        chair = next(
            (c for c in chairs if not any(a < end and b > start for a, b in holds.get(c.pk, []))),
            None,
        )
        if chair is not None:
            found.append(Suggestion(chair, start))
        if len(found) >= limit:
            break
    return sorted(found, key=lambda s: s.start)


# --- sessions on days the site has since closed ------------------------------------------------------------


@dataclass(frozen=True)
class ClosedDayBooking:
    """A booking on a closed day, without the patient's name (the administrator's page shows these)."""

    day: date
    start: datetime
    chair: str
    what: str
    plan_session_id: Any = None


def bookings_on_days(site: Site, days: list[date]) -> list[ClosedDayBooking]:
    """Course sessions still booked, and chair sessions outside a plan still scheduled, on ``days`` at
    ``site`` (site time): what staff must move off a newly closed day."""

    zone = site.zone
    out: list[ClosedDayBooking] = []
    for day in sorted(set(days)):
        begin = datetime.combine(day, time.min, tzinfo=zone)
        finish = begin + timedelta(days=1)
        for row in PlanSession.objects.filter(
            site=site, status=SessionStatus.BOOKED, start__gte=begin, start__lt=finish
        ).select_related("chair"):
            label = row.chair.label if row.chair else "no chair"
            out.append(ClosedDayBooking(day, row.start, label, f"course session {row.number}", row.pk))
        for t in scheduled_outside_plan(site, begin, finish).select_related("chair"):
            out.append(
                ClosedDayBooking(
                    day, t.scheduled_at, t.chair.label if t.chair else "no chair", "session at the chair"
                )
            )
    return sorted(out, key=lambda b: (b.start, b.chair))


def notify_closed_day_bookings(*, site: Site, days: list[date], by: User) -> list[ClosedDayBooking]:
    """After a closure: tell the site's front desk and nurses how many booked sessions fall on the closed
    days and where to move them (the calendar's week), without names. Returns the bookings."""
    from django.db.models import Q

    from ketaclinic.core.models import Notification

    affected = bookings_on_days(site, days)
    if not affected:
        return affected
    closed = sorted({b.day for b in affected})
    week = closed[0] - timedelta(days=closed[0].weekday())
    link = f"{reverse('treatment:calendar')}?site={site.pk}&week={week.isoformat()}"
    if len(closed) <= 4:
        shown = ", ".join(f"{d:%a} {d.day} {d:%b %Y}" for d in closed)
    else:
        shown = f"{len(closed)} days from {closed[0]:%a} {closed[0].day} {closed[0]:%b %Y} to {closed[-1]:%a} {closed[-1].day} {closed[-1]:%b %Y}"
    message = (
        f"{by.display_name} closed {site.name}. {len(affected)} booked session(s) fall on {shown}: move each "
        "one from the calendar, which offers free slots within the course's rules."
    )
    staff = User.objects.filter(
        organization_id=site.organization_id, is_active=True, role__in=[FRONT_DESK, NURSE]
    ).filter(Q(all_sites=True) | Q(sites=site))
    for person in staff.distinct():
        Notification.objects.create(
            organization_id=site.organization_id, recipient=person, kind="closure", message=message, link=link
        )
    return affected
