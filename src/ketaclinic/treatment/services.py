"""Treatment plan use cases: create a plan (screening gate, dose, dated course with chairs), verify the dose,
read plans and calendars. Services never commit; every PHI read and write is audited.

Capacity: the site's active ``accounts.Chair`` rows are the chairs; booked sessions of other plans count
against them, and ``Site.nurse_capacity`` limits the patients monitored at once. Closures and public holidays
are ``accounts.SiteClosure`` rows (accounts/sites.py), which ``site_calendar`` hands the scheduler.
Opening hours: ``Site.opening_hours`` may list several spans a day; the scheduler takes one span per day,
so the longest span is used (a lunch break is not honoured — see the report).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import WEEKDAYS, Chair, Site, User
from ketaclinic.accounts.services import covered_sites as sites_for
from ketaclinic.assessment import services as assessment
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import body
from ketaclinic.clinical.dosing import (
    VIAL_CONCENTRATIONS_MG_ML,
    DoseInputError,
    DoseOverrideRequired,
    DoseRefused,
    WeightBasis,
    calculate_dose,
)
from ketaclinic.clinical.schedule import (
    OpeningHours,
    PlannedSession,
    ScheduleInputError,
    SiteCalendar,
    SlotLoad,
    plan_course,
)
from ketaclinic.clinical.schedule_rules import second_course_problem
from ketaclinic.core.access import CLINICIANS, PRESCRIBER
from ketaclinic.core.errors import DomainError
from ketaclinic.core.plausible import date_problem, time_problem
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import visible_patients
from ketaclinic.treatment import library, rules
from ketaclinic.treatment.models import Plan, PlanSession, PlanStatus, ProtocolVersion, SessionStatus

CATEGORY = "treatment-plan"
SLOT_MINUTES = 30
OPEN_ENDED_SESSIONS = 4  # sessions of an open-ended maintenance phase to book (a display choice)


class TreatmentError(DomainError):
    """A state of the plan or course that does not allow the act (409); subclasses say otherwise."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PlanValidationError(TreatmentError):
    """``errors`` names every bad field; ``screening`` carries the gate's reason when that failed."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotFound(TreatmentError):
    status = 404


class TreatmentForbidden(TreatmentError):
    """The user's role may not do this act."""

    status = 403


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- the site as the scheduler sees it -----------------------------------------------------------------


def _opening_hours(site: Site) -> dict[int, OpeningHours]:
    out: dict[int, OpeningHours] = {}
    for day, spans in (site.opening_hours or {}).items():
        if day not in WEEKDAYS or not spans:
            continue
        parsed = [(time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans]
        opens, closes = max(
            parsed, key=lambda s: datetime.combine(date.min, s[1]) - datetime.combine(date.min, s[0])
        )
        out[WEEKDAYS.index(day)] = OpeningHours(opens, closes)
    return out


def active_chairs(site: Site) -> list[Chair]:
    return list(Chair.objects.filter(site=site, active=True).order_by("label"))


def _slot_keys(start: datetime, end: datetime) -> list[datetime]:
    """The fixed UTC grid slots a session touches (a shared grid, so overlapping bookings add up)."""
    step = SLOT_MINUTES * 60
    first = math.floor(start.timestamp() / step) * step
    keys = []
    t = first
    while t < end.timestamp():
        keys.append(datetime.fromtimestamp(t, tz=UTC))
        t += step
    return keys


def booked_load(
    site: Site, since: datetime, *, exclude: PlanSession | None = None
) -> dict[datetime, SlotLoad]:
    """Chairs (and so nurse attention) taken per slot: booked plan sessions, plus treatment sessions
    scheduled outside a plan (those from a plan are already counted by their plan session)."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession

    counts: dict[datetime, int] = defaultdict(int)
    booked = PlanSession.objects.filter(site=site, status=SessionStatus.BOOKED, end__gt=since)
    if exclude is not None:
        booked = booked.exclude(pk=exclude.pk)
    for start, end in booked.values_list("start", "end"):
        for key in _slot_keys(start, end):
            counts[key] += 1
    unplanned = TreatmentSession.objects.filter(
        site=site,
        planned_session_id__isnull=True,
        status__in=[Status.SCHEDULED, *ACTIVE_STATUSES],
        scheduled_at__gt=since - timedelta(hours=4),
    )
    for session in unplanned:
        minutes = chair_minutes_for(session.protocol_id)
        for key in _slot_keys(session.scheduled_at, session.scheduled_at + timedelta(minutes=minutes)):
            counts[key] += 1
    return {key: SlotLoad(chairs=n, nurses=n) for key, n in counts.items()}


def chair_bookings(
    chair: Chair, start: datetime, end: datetime, *, exclude: PlanSession | None = None
) -> list[str]:
    """What already holds ``chair`` during [start, end): booked course sessions, and chair sessions outside
    a plan that are scheduled or under way (their length: their protocol's chair time), as texts in site
    time without names ("10:00–11:10 course session"). Empty when the chair is free."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession

    zone = chair.site.zone
    booked = PlanSession.objects.filter(
        chair=chair, status=SessionStatus.BOOKED, start__lt=end, end__gt=start
    )
    if exclude is not None:
        booked = booked.exclude(pk=exclude.pk)
    held: list[tuple[datetime, datetime, str]] = [(b.start, b.end, "course session") for b in booked]
    for row in TreatmentSession.objects.filter(
        chair=chair,
        planned_session_id__isnull=True,
        status__in=[Status.SCHEDULED, *ACTIVE_STATUSES],
        scheduled_at__lt=end,
        scheduled_at__gt=start - timedelta(hours=6),
    ):
        row_end = row.scheduled_at + timedelta(minutes=chair_minutes_for(row.protocol_id))
        if row_end > start:
            held.append((row.scheduled_at, row_end, "session at the chair"))
    return [f"{a.astimezone(zone):%H:%M}–{b.astimezone(zone):%H:%M} {what}" for a, b, what in sorted(held)]


def chair_minutes_for(protocol_id: str) -> int:
    from ketaclinic.clinical.protocol_library import PROTOCOLS

    protocol = PROTOCOLS.get(protocol_id)
    return protocol.chair_minutes() if protocol else 120


def site_calendar(site: Site, since: datetime, *, exclude: PlanSession | None = None) -> SiteCalendar:
    chairs = active_chairs(site)
    return SiteCalendar(
        zone=site.zone,
        opening_hours=_opening_hours(site),
        chairs=len(chairs),
        slot_minutes=SLOT_MINUTES,
        booked=booked_load(site, since, exclude=exclude),
        closures=frozenset(site.closures.filter(day__gte=since.date()).values_list("day", flat=True)),
        nurse_capacity=site.nurse_capacity,
    )


def _free_chair(
    site: Site, chairs: list[Chair], start: datetime, end: datetime, *, exclude: PlanSession | None = None
) -> Chair | None:
    """The first chair that no booked course session and no chair session outside a plan holds then."""
    for chair in chairs:
        if not chair_bookings(chair, start, end, exclude=exclude):
            return chair
    return None


def book_sessions(*, plan: Plan, sessions: Sequence[PlannedSession], site: Site) -> list[str]:
    """Create the booked rows of ``sessions`` for ``plan`` (each in the first free chair) and queue each
    one's self-report link; returns the sessions that found no free chair."""
    chairs = active_chairs(site)
    missing: list[str] = []
    for s in sessions:
        chair = _free_chair(site, chairs, s.start, s.end)
        if chair is None:
            missing.append(f"session {s.number}: no chair free at {s.start:%Y-%m-%d %H:%M}")
        row = PlanSession.objects.create(
            organization_id=plan.organization_id,
            plan=plan,
            patient=plan.patient,
            site=site,
            chair=chair,
            number=s.number,
            phase_name=s.phase_name,
            phase_kind=s.phase_kind.value,
            week=s.week,
            start=s.start,
            end=s.end,
            dose_text=s.dose_text,
            notes=list(s.notes),
        )
        schedule_pre_session_link(row)
    return missing


def first_phases(protocol: Any) -> list[int]:
    """The phases booked when a course is planned: its induction (not an optional phase). Maintenance and
    optional phases are proposed and booked at the end-of-induction review (clinical/schedule_review.py)."""
    from ketaclinic.clinical.protocols import PhaseKind

    chosen = [i for i, p in enumerate(protocol.phases) if p.kind is PhaseKind.INDUCTION and not p.optional]
    return chosen or [0]


# --- plans ---------------------------------------------------------------------------------------------


def _number(raw: Any, name: str, errors: dict[str, str]) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        errors[name] = f"{raw!r} is not a number"
        return None
    if not math.isfinite(value) or value <= 0:
        errors[name] = "must be a number more than 0"
        return None
    return value


@dataclass(frozen=True)
class PlanInputs:
    protocol: ProtocolVersion
    start: date
    preferred_time: time | None
    basis: WeightBasis
    prescribed_amount: float | None
    concentration_mg_ml: float | None
    container_volume_ml: float | None
    dose_override_reason: str | None


def _clean_inputs(
    user: User, patient: Patient, data: dict[str, Any], errors: dict[str, str]
) -> PlanInputs | None:
    protocol: ProtocolVersion | None = None
    key = str(data.get("protocol") or "").strip()
    if not key:
        errors["protocol"] = "choose a protocol"
    else:
        try:
            protocol = library.get_version(user, key)
        except library.LibraryError as exc:
            errors["protocol"] = exc.message
    start: date | None = None
    raw_start = data.get("start")
    if raw_start in (None, ""):
        errors["start"] = "required"
    else:
        try:
            start = raw_start if isinstance(raw_start, date) else date.fromisoformat(str(raw_start))
        except ValueError:
            errors["start"] = f"{raw_start!r} is not a date (YYYY-MM-DD)"
    today = timezone.localdate(timezone.now(), patient.site.zone)
    if start is not None and start < today:
        errors["start"] = "is in the past"
    elif start is not None and (
        why := date_problem(
            start,
            today=today,
            latest=today + timedelta(days=settings.KETACLINIC_BOOKING_HORIZON_DAYS),
            what_latest="the booking horizon",
        )
    ):
        errors["start"] = why
    preferred: time | None = None
    raw_time = data.get("preferred_time")
    if raw_time not in (None, ""):
        try:
            preferred = raw_time if isinstance(raw_time, time) else time.fromisoformat(str(raw_time))
        except ValueError:
            errors["preferred_time"] = f"{raw_time!r} is not a time (HH:MM)"
    basis = WeightBasis.ACTUAL
    raw_basis = data.get("basis") or "actual"
    try:
        basis = WeightBasis(raw_basis)
    except ValueError:
        errors["basis"] = "choose actual, ideal or adjusted"
    amount = _number(data.get("prescribed_amount"), "prescribed_amount", errors)
    concentration = _number(data.get("concentration_mg_ml"), "concentration_mg_ml", errors)
    if concentration is not None and concentration not in VIAL_CONCENTRATIONS_MG_ML:
        errors["concentration_mg_ml"] = "choose 10, 50 or 100 mg/mL"
    container = _number(data.get("container_volume_ml"), "container_volume_ml", errors)
    reason = str(data.get("dose_override_reason") or "").strip() or None
    if (
        protocol is None
        or start is None
        or any(
            k in errors
            for k in (
                "basis",
                "prescribed_amount",
                "concentration_mg_ml",
                "container_volume_ml",
                "preferred_time",
            )
        )
    ):
        return None
    return PlanInputs(protocol, start, preferred, basis, amount, concentration, container, reason)


def create_plan(
    *,
    user: User,
    patient: Patient,
    data: dict[str, Any],
    request: HttpRequest | None = None,
    client: str = "",
) -> Plan:
    """Plan a course. Refuses (naming every problem) unless the screening clears the protocol's drug."""
    if user.role != PRESCRIBER:
        raise TreatmentForbidden("Only prescribers may create treatment plans.")
    errors: dict[str, str] = {}
    inputs = _clean_inputs(user, patient, data, errors)
    clearance = None
    protocol = library.as_protocol(inputs.protocol) if inputs else None
    if protocol is not None:
        try:
            clearance = assessment.plan_clearance(patient=patient, drug=protocol.drug, route=protocol.route)
        except assessment.AssessmentError as exc:
            errors["screening"] = exc.message
    if patient.weight_kg is None:
        errors["weight_kg"] = "record the patient's weight on the chart first"
    if patient.height_cm is None:
        errors["height_cm"] = "record the patient's height on the chart first"
    site = Site.objects.get(pk=patient.site_id)  # fresh: opening hours may have changed since loading
    chairs = active_chairs(site)
    if not chairs:
        errors["site"] = f"{site.name} has no active chairs: an administrator adds them first"
    concurrent_reason = str(data.get("concurrent_course_reason") or "").strip()
    active = rules.active_courses(patient)
    second = second_course_problem(active=rules.course_summaries(active), reason=concurrent_reason)
    if second:
        errors["concurrent_course_reason"] = second
    if errors or inputs is None or protocol is None or clearance is None:
        raise PlanValidationError(errors or {"protocol": "could not be read"})
    sex = body.Sex(patient.sex) if patient.sex in ("female", "male") else None
    try:
        calc = calculate_dose(
            protocol=protocol,
            weight_kg=float(patient.weight_kg),  # type: ignore[arg-type]
            height_cm=float(patient.height_cm),  # type: ignore[arg-type]
            sex=sex,
            basis=inputs.basis,
            concentration_mg_ml=inputs.concentration_mg_ml,
            container_volume_ml=inputs.container_volume_ml,
            prescribed_amount=inputs.prescribed_amount,
            override_reason=inputs.dose_override_reason,
        )
    except DoseInputError as exc:
        raise PlanValidationError(dict(exc.errors)) from None
    except DoseOverrideRequired as exc:
        raise PlanValidationError({"dose_override_reason": f"{exc.message} (source: {exc.source})"}) from None
    except DoseRefused as exc:
        raise PlanValidationError({"prescribed_amount": f"{exc.message} (source: {exc.source})"}) from None
    now = timezone.now()
    try:
        course = plan_course(
            protocol=protocol,
            start=inputs.start,
            site=site_calendar(site, now),
            preferred_time=inputs.preferred_time,
            open_ended_sessions=OPEN_ENDED_SESSIONS,
            phases=first_phases(protocol),
            busy_days=rules.busy_days(patient, inputs.start, inputs.start + timedelta(days=366)),
        )
    except ScheduleInputError as exc:
        raise PlanValidationError({f"site.{k}": v for k, v in exc.errors.items()}) from None
    if not course.sessions:
        raise PlanValidationError({"start": "no session could be placed: " + "; ".join(course.unscheduled)})
    plan = Plan.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        site=site,
        protocol=inputs.protocol,
        protocol_key=inputs.protocol.key,
        protocol_version=inputs.protocol.version,
        screening=clearance.screening,
        screening_decision=clearance.decision.value,
        screening_override=clearance.override,
        inputs={
            "basis": inputs.basis.value,
            "prescribed_amount": inputs.prescribed_amount,
            "concentration_mg_ml": inputs.concentration_mg_ml,
            "container_volume_ml": inputs.container_volume_ml,
            "preferred_time": inputs.preferred_time.isoformat() if inputs.preferred_time else None,
            "weight_kg": float(patient.weight_kg),  # type: ignore[arg-type]
            "height_cm": float(patient.height_cm),  # type: ignore[arg-type]
            "sex": patient.sex,
        },
        dose=_jsonable(calc),
        dose_mg=calc.dose_mg,
        dose_override_reason=inputs.dose_override_reason or "",
        second_person_required=calc.second_person_check,
        start_date=inputs.start,
        conflicts=list(course.conflicts),
        notes=list(course.notes),
        unscheduled=list(course.unscheduled),
        proposals=_jsonable(course.proposals),
        concurrent_reason=concurrent_reason if active else "",
        created_by=user,
    )
    extra_conflicts = book_sessions(plan=plan, sessions=course.sessions, site=site)
    if extra_conflicts:
        plan.conflicts = [*plan.conflicts, *extra_conflicts]
        plan.save(update_fields=["conflicts"])
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=patient,
        object_type="Plan",
        object_id=plan.pk,
        after={
            "protocol": f"{plan.protocol_key}@{plan.protocol_version}",
            "dose_mg": plan.dose_mg,
            "dose_override_reason": plan.dose_override_reason or None,
            "screening": str(clearance.screening.pk),
            "screening_decision": plan.screening_decision,
            "screening_override": clearance.override.reason if clearance.override else None,
            "sessions": len(course.sessions),
            "first": course.sessions[0].start.isoformat(),
            "dropped": list(course.unscheduled),
            "proposed_phases": [p.name for p in course.proposals],
        }
        | (
            {"concurrent_course_reason": concurrent_reason, "concurrent_with": [str(p.pk) for p in active]}
            if active
            else {}
        ),
        request=request,
        client=client,
    )
    return plan


def verify_dose(*, user: User, plan: Plan, request: HttpRequest | None = None, client: str = "") -> Plan:
    """A second clinician confirms the prepared dose (IV and IM); recorded with who and when."""
    if user.role not in CLINICIANS:
        raise TreatmentForbidden("Only a nurse or prescriber may verify a dose.")
    if not plan.second_person_required:
        raise TreatmentError("This plan's route needs no second-person check.")
    if plan.verified_at is not None:
        raise TreatmentError("The dose was already verified.")
    if plan.created_by_id == user.pk:
        raise TreatmentError("The second person must be someone other than the prescriber who made the plan.")
    updated = Plan.objects.filter(pk=plan.pk, version=plan.version, verified_at__isnull=True).update(
        verified_by=user, verified_at=timezone.now(), version=plan.version + 1
    )
    if updated != 1:
        raise TreatmentError("Someone changed this plan at the same moment; reload it.")
    plan.refresh_from_db()
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=plan.patient,
        object_type="Plan",
        object_id=plan.pk,
        after={"dose_verified_by": user.get_username(), "dose_mg": plan.dose_mg},
        request=request,
        client=client,
        detail="second-person dose check",
    )
    return plan


def get_plan(*, user: User, plan_id: Any, request: HttpRequest | None = None, client: str = "") -> Plan:
    plan = (
        Plan.objects.filter(pk=plan_id, patient__in=visible_patients(user))
        .select_related(
            "patient",
            "patient__site",
            "site",
            "protocol",
            "created_by",
            "verified_by",
            "stopped_by",
            "screening_override",
        )
        .first()
    )
    if plan is None:
        raise NotFound("No such plan.")
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=plan.patient,
        object_type="Plan",
        object_id=plan.pk,
        request=request,
        client=client,
    )
    return plan


def patient_plans(*, user: User, patient: Patient, request: HttpRequest | None = None) -> list[Plan]:
    plans = list(
        Plan.objects.filter(patient=patient, organization_id=user.org_id)
        .order_by("status", "-created_at")  # "active" sorts before "cancelled": current courses first
        .select_related("protocol", "verified_by", "stopped_by")
        .prefetch_related("sessions", "sessions__chair")
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=patient,
        object_type="Plan",
        request=request,
        detail=f"{len(plans)} plan(s)",
    )
    return plans


# --- site calendar ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarEntry:
    """One booking on the calendar: a course session, or a treatment session scheduled at the chair
    outside a plan (it takes the chair just the same; its length is its protocol's chair time)."""

    start: datetime
    end: datetime
    patient: Patient
    chair_id: int | None
    plan_session: PlanSession | None = None
    treatment: Any = None  # chairside.TreatmentSession when not from a plan


@dataclass(frozen=True)
class CalendarDay:
    day: date
    open_text: str
    rows: list[dict[str, Any]]  # one per chair (and one for sessions without a chair)
    closure: Any = None  # accounts.SiteClosure: a local closure or a public holiday


def site_week(
    *, user: User, site: Site, week_start: date, request: HttpRequest | None = None
) -> list[CalendarDay]:
    """Booked sessions of the 7 days from ``week_start`` per day and chair, in the site's zone."""
    if site not in sites_for(user):
        raise NotFound("No such site.")
    zone = site.zone
    begin = datetime.combine(week_start, time.min, tzinfo=zone)
    finish = datetime.combine(week_start + timedelta(days=7), time.min, tzinfo=zone)
    from ketaclinic.treatment.booking import free_spans

    sessions = _bookings(user, site, begin, finish)
    chairs = active_chairs(site)
    hours = _opening_hours(site)
    closures = {c.day: c for c in site.closures.filter(day__gte=week_start, day__lt=finish.date())}
    free = free_spans(site, week_start, 7)
    days: list[CalendarDay] = []
    for offset in range(7):
        d = week_start + timedelta(days=offset)
        closure = closures.get(d)
        todays = [s for s in sessions if s.start.astimezone(zone).date() == d]
        rows = []
        for chair in chairs:
            booked = [s for s in todays if s.chair_id == chair.pk]
            conflicts = _overlaps(booked, zone)
            if closure is not None and booked:
                conflicts.append(f"booked on a closed day ({closure.reason}): move it")
            rows.append(
                {
                    "chair": chair.label,
                    "chair_id": chair.pk,
                    "sessions": booked,
                    "conflicts": conflicts,
                    "free": free.get(d, {}).get(chair.pk, []),
                }
            )
        loose = [s for s in todays if s.chair_id is None]
        if loose:
            rows.append(
                {"chair": "No chair", "sessions": loose, "conflicts": ["booked without a chair: assign one"]}
            )
        h = hours.get(d.weekday())
        open_text = f"{h.opens:%H:%M}–{h.closes:%H:%M}" if h else "closed"
        if closure is not None:
            open_text = f"closed: {closure.reason}"
        days.append(CalendarDay(d, open_text, rows, closure))
    audit_calendar_read(
        user=user,
        site=site,
        request=request,
        detail=f"week of {week_start.isoformat()}: {len(sessions)} session(s)",
    )
    return days


def audit_calendar_read(*, user: User, site: Site, request: HttpRequest | None, detail: str) -> None:
    """One audited read of a site's bookings (the week, today's list, the booking page's sessions)."""
    audit.record(
        user=user,
        action=Action.QUERY,
        category="calendar",
        object_type="Site",
        object_id=site.pk,
        request=request,
        detail=detail,
    )


def scheduled_outside_plan(site: Site, begin: datetime, finish: datetime) -> Any:
    """Chair sessions outside a plan at ``site`` still scheduled (not checked in), starting in [begin,
    finish): a QuerySet of chairside.TreatmentSession."""
    from ketaclinic.chairside.models import Status, TreatmentSession

    return TreatmentSession.objects.filter(
        site=site,
        planned_session_id__isnull=True,
        status=Status.SCHEDULED,
        scheduled_at__gte=begin,
        scheduled_at__lt=finish,
    )


@dataclass(frozen=True)
class TodayRow:
    """One patient expected or in a chair today (the home page's list)."""

    entry: CalendarEntry
    chair: str
    treatment: Any  # the chairside session, if one was opened (for a course session, linked by id)
    dose_check_pending: bool  # a course whose dose still needs the second person's check
    arrival: Any = None  # treatment.arrivals.Arrival once the patient is marked arrived
    may_arrive: bool = False  # the "Mark arrived" button (today, booked, not checked in, not yet marked)

    @property
    def arrival_kind(self) -> str:
        """Where the arrival is kept: the course session, or the chair session outside a plan."""
        return "course" if self.entry.plan_session is not None else "session"

    @property
    def booking_id(self) -> Any:
        return self.entry.plan_session.pk if self.entry.plan_session is not None else self.entry.treatment.pk


def site_today(*, user: User, site: Site, request: HttpRequest | None = None) -> list[TodayRow]:
    """Today's course sessions and chair sessions outside a plan at ``site`` (site time), by start time,
    each with the chairside session opened for it: the day's list a nurse works through. Audited as one
    read of the site's day, like the calendar."""
    from ketaclinic.chairside.models import TreatmentSession

    if site not in sites_for(user):
        raise NotFound("No such site.")
    zone = site.zone
    today = timezone.localdate(timezone.now(), zone)
    begin = datetime.combine(today, time.min, tzinfo=zone)
    finish = begin + timedelta(days=1)
    entries = [e for e in _bookings(user, site, begin, finish) if e.start >= begin]
    planned = [e.plan_session.pk for e in entries if e.plan_session is not None]
    opened = {
        t.planned_session_id: t
        for t in TreatmentSession.objects.filter(planned_session_id__in=planned).order_by("created_at")
    }
    chairs = {c.pk: c.label for c in Chair.objects.filter(site=site)}
    from ketaclinic.treatment.arrivals import booking_arrival, may_mark_arrived

    now = timezone.now()
    rows = []
    for e in entries:
        booking = e.plan_session if e.plan_session is not None else e.treatment
        rows.append(
            TodayRow(
                e,
                chairs.get(e.chair_id or 0, "—"),
                opened.get(e.plan_session.pk) if e.plan_session is not None else e.treatment,
                e.plan_session is not None
                and e.plan_session.plan.second_person_required
                and e.plan_session.plan.verified_at is None,
                arrival=booking_arrival(booking),
                may_arrive=may_mark_arrived(booking, now),
            )
        )
    rows.sort(key=lambda r: (r.entry.start, r.chair))
    audit_calendar_read(
        user=user, site=site, request=request, detail=f"today {today.isoformat()}: {len(rows)} session(s)"
    )
    return rows


def _bookings(user: User, site: Site, begin: datetime, finish: datetime) -> list[CalendarEntry]:
    """What holds the site's chairs during [begin, finish) for patients the user may see: booked course
    sessions and chair sessions outside a plan, by start (the calendar and the Today list)."""
    entries = [
        CalendarEntry(s.start, s.end, s.patient, s.chair_id, plan_session=s)
        for s in PlanSession.objects.filter(
            site=site, status=SessionStatus.BOOKED, start__lt=finish, end__gt=begin
        )
        .filter(patient__in=visible_patients(user))
        .select_related("patient", "chair", "plan", "site", "arrival_recorded_by")
    ]
    entries += _unplanned_entries(user, site, begin, finish)
    entries.sort(key=lambda e: e.start)
    return entries


def _unplanned_entries(user: User, site: Site, begin: datetime, finish: datetime) -> list[CalendarEntry]:
    """Treatment sessions scheduled at the chair outside a plan in [begin, finish): the same ones
    :func:`booked_load` counts against the chairs (scheduled or under way), and those carried out."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession

    rows = TreatmentSession.objects.filter(
        site=site,
        planned_session_id__isnull=True,
        status__in=[Status.SCHEDULED, *ACTIVE_STATUSES, Status.DISCHARGED],
        scheduled_at__lt=finish,
        scheduled_at__gte=begin - timedelta(hours=4),
        patient__in=visible_patients(user),
    ).select_related("patient", "site", "arrival_recorded_by")
    out = []
    for row in rows:
        end = row.scheduled_at + timedelta(minutes=chair_minutes_for(row.protocol_id))
        if end > begin:
            out.append(CalendarEntry(row.scheduled_at, end, row.patient, row.chair_id, treatment=row))
    return out


def _overlaps(sessions: list[CalendarEntry], zone: Any) -> list[str]:
    """Sessions of one chair that overlap (e.g. after a manual change): each pair is named, in site time."""
    out = []
    for a, b in pairwise(sessions):
        if b.start < a.end:
            a_start, a_end, b_start, b_end = (t.astimezone(zone) for t in (a.start, a.end, b.start, b.end))
            out.append(f"double-booked: {a_start:%H:%M}–{a_end:%H:%M} overlaps {b_start:%H:%M}–{b_end:%H:%M}")
    return out


# --- missed sessions and rescheduling (clinical.md §2.1: J&J missed-session guidance) -------------------


def _course_of(plan: Plan) -> tuple[Any, Any]:
    """The pure engine's view of a stored plan: (protocol, CoursePlan)."""
    from ketaclinic.clinical.schedule import CoursePlan, PlannedSession
    from ketaclinic.clinical.schedule import SessionStatus as PlannedStatus

    protocol = library.as_protocol(plan.protocol)
    sessions = []
    for row in plan.sessions.order_by("number"):
        phase, rule = protocol.dose_for_session(row.number)
        sessions.append(
            PlannedSession(
                number=row.number,
                phase_index=protocol.phases.index(phase),
                phase_name=row.phase_name,
                phase_kind=phase.kind,
                start=row.start,
                end=row.end,
                week=row.week,
                dose=rule,
                dose_text=row.dose_text,
                status=PlannedStatus.MISSED if row.status == SessionStatus.MISSED else PlannedStatus.PLANNED,
            )
        )
    course = CoursePlan(
        protocol_id=plan.protocol_key,
        protocol_version=plan.protocol_version,
        zone=plan.site.time_zone,
        sessions=tuple(sessions),
    )
    return protocol, course


def mark_session_missed(
    *, user: User, session: PlanSession, worsening: bool, reason: str, request: HttpRequest | None = None
) -> Any:
    """Record a missed session and return the reference's advice (continue, or consider the previous
    frequency after worsening in maintenance). Nothing else in the course moves by itself."""
    from ketaclinic.clinical.schedule_missed import advise_missed_session

    if session.status != SessionStatus.BOOKED:
        raise TreatmentError(
            f"Session {session.number} is {session.get_status_display().lower()}, not booked."
        )
    if len(reason.strip()) < 3:
        raise PlanValidationError({"reason": "say why the session was missed"})
    protocol, course = _course_of(session.plan)
    advice = advise_missed_session(
        protocol=protocol, plan=course, missed_number=session.number, worsening=worsening
    )
    note = f"Missed: {reason.strip()}. Advice: {advice.message} ({advice.source})"
    session.status = SessionStatus.MISSED
    session.notes = [*session.notes, note]
    session.save(update_fields=["status", "notes"])
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="treatment-plan",
        patient=session.patient,
        object_type="PlanSession",
        object_id=session.pk,
        before={"status": "booked"},
        after={
            "status": "missed",
            "reason": reason.strip(),
            "worsening": worsening,
            "advice": str(advice.action),
        },
        request=request,
    )
    return advice


def reschedule_session(
    *,
    user: User,
    session: PlanSession,
    new_start: datetime,
    spacing_override_reason: str = "",
    chair: Chair | None = None,
    request: HttpRequest | None = None,
) -> PlanSession:
    """Move a booked session, respecting opening hours, closures and chair/nurse capacity; say why not.

    A move closer to the course's previous or next session than its phases' minimum spacing
    (clinical/schedule.spacing_problems) is refused unless ``spacing_override_reason`` says why; the
    override, with the rule it overrides, is audited and noted on the session. ``chair``: the chair the
    session is booked into (a slot picked on the calendar, treatment/booking.py), refused when something
    else holds it then (:func:`chair_bookings`); without it the first free chair is taken."""
    from ketaclinic.clinical.schedule import slot_problem, spacing_problems

    if session.status != SessionStatus.BOOKED:
        raise TreatmentError(
            f"Session {session.number} is {session.get_status_display().lower()}: it cannot move."
        )
    if session.plan.status != PlanStatus.ACTIVE:
        raise TreatmentError("The course was stopped: its sessions cannot move.")
    if new_start.tzinfo is None:
        new_start = new_start.replace(tzinfo=session.site.zone)
    if why := time_problem(new_start, born=session.patient.date_of_birth, planned=True):
        raise PlanValidationError({"start": why})
    if new_start < timezone.now():
        raise PlanValidationError({"start": "is in the past"})
    length = session.end - session.start
    others = PlanSession.objects.filter(plan=session.plan, status=SessionStatus.BOOKED).exclude(pk=session.pk)
    clash = others.filter(start__lt=new_start + length, end__gt=new_start).first()
    if clash is not None:
        raise PlanValidationError({"start": f"overlaps session {clash.number} of the same course"})
    calendar = site_calendar(session.site, timezone.now(), exclude=session)  # its own booking is not a clash
    problem = slot_problem(calendar, new_start, new_start + length) or rules.same_day_problem_for(
        session.patient, new_start, exclude_plan_session=session.pk
    )
    if problem:
        raise PlanValidationError({"start": problem})
    spacing = spacing_problems(
        library.as_protocol(session.plan.protocol),
        session.number,
        new_start,
        [(o.number, o.start) for o in others],
        session.site.zone,
    )
    reason = spacing_override_reason.strip()
    if spacing and len(reason) < 3:
        raise PlanValidationError(
            {"spacing_override_reason": "; ".join(spacing) + ". To move it anyway, give the reason."}
        )
    if chair is None:
        chair = _free_chair(
            session.site, active_chairs(session.site), new_start, new_start + length, exclude=session
        )
    else:
        if chair.site_id != session.site_id or not chair.active:
            raise PlanValidationError(
                {"chair": f"{chair.label} is not an active chair at {session.site.name}"}
            )
        taken = chair_bookings(chair, new_start, new_start + length, exclude=session)
        if taken:
            raise PlanValidationError({"chair": f"{chair.label} is taken then ({'; '.join(taken)})"})
    before = {"start": session.start.isoformat(), "chair": session.chair.label if session.chair else None}
    after: dict[str, Any] = {"start": new_start.isoformat(), "chair": chair.label if chair else None}
    session.start, session.end, session.chair = new_start, new_start + length, chair
    fields = ["start", "end", "chair"]
    if spacing:
        after |= {"spacing_override_reason": reason, "spacing": spacing}
        session.notes = [
            *session.notes,
            f"Moved closer than the phase spacing: {reason} ({'; '.join(spacing)})",
        ]
        fields.append("notes")
    session.save(update_fields=fields)
    schedule_pre_session_link(session)
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="treatment-plan",
        patient=session.patient,
        object_type="PlanSession",
        object_id=session.pk,
        before=before,
        after=after,
        request=request,
    )
    return session


@dataclass(frozen=True)
class StoppedCourse:
    """What stopping a course did to its booked sessions (by session number)."""

    plan: Plan
    cancelled: list[int]  # booked, not yet opened at the chair, still to come: cancelled
    open_at_chair: list[int]  # opened at the chair: finish or stop them there (chairside)
    past_unrecorded: list[int]  # booked, in the past, never opened: left for staff to mark missed


def stop_course(
    *, user: User, plan: Plan, reason: str, request: HttpRequest | None = None, client: str = ""
) -> StoppedCourse:
    """A prescriber stops a course (the patient withdraws, a contraindication appears, the course ends
    early): the plan becomes cancelled with who, when and why; every booked session still to come that
    was not opened at the chair is cancelled (its chair is free again and its self-report link is not
    sent: the worker skips sessions that are no longer booked). Nothing recorded is rewritten: sessions
    opened at the chair stay as they are (an infusion under way is finished or stopped at the chair), and
    booked sessions in the past that nobody opened are left for staff to mark missed. Audited."""
    from ketaclinic.chairside.models import TreatmentSession

    if user.role != PRESCRIBER:
        raise TreatmentForbidden("Only a prescriber may stop a course.")
    if plan.status != PlanStatus.ACTIVE:
        raise TreatmentError("This course was already stopped.")
    text = reason.strip()
    if len(text) < 3:
        raise PlanValidationError({"reason": "say why the course is stopped"})
    now = timezone.now()
    updated = Plan.objects.filter(pk=plan.pk, version=plan.version, status=PlanStatus.ACTIVE).update(
        status=PlanStatus.CANCELLED,
        stopped_by=user,
        stopped_at=now,
        stop_reason=text,
        version=plan.version + 1,
    )
    if updated != 1:
        raise TreatmentError("Someone changed this plan at the same moment; reload it.")
    plan.refresh_from_db()
    opened = set(
        TreatmentSession.objects.filter(
            organization_id=plan.organization_id,
            planned_session__plan=plan,
        ).values_list("planned_session_id", flat=True)
    )
    cancelled: list[int] = []
    open_at_chair: list[int] = []
    past: list[int] = []
    for row in plan.sessions.filter(status=SessionStatus.BOOKED).order_by("number"):
        if row.pk in opened:
            open_at_chair.append(row.number)
        elif row.start < now:
            past.append(row.number)
        else:
            row.status = SessionStatus.CANCELLED
            row.notes = [*row.notes, f"Cancelled: the course was stopped ({text})"]
            row.save(update_fields=["status", "notes"])
            cancelled.append(row.number)
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=plan.patient,
        object_type="Plan",
        object_id=plan.pk,
        before={"status": PlanStatus.ACTIVE.value},
        after={
            "status": PlanStatus.CANCELLED.value,
            "reason": text,
            "sessions_cancelled": cancelled,
            "sessions_open_at_chair": open_at_chair,
            "sessions_past_unrecorded": past,
        },
        request=request,
        client=client,
        detail="course stopped",
    )
    return StoppedCourse(plan=plan, cancelled=cancelled, open_at_chair=open_at_chair, past_unrecorded=past)


def schedule_pre_session_link(session: PlanSession) -> None:
    """Queue the self-report link the day before the session (issue: rating scales, item 6): the worker
    emails the instruments in KETACLINIC_PRE_SESSION_SCALES (default PHQ-9 + GAD-7, the issue's example)."""
    from django.conf import settings

    from ketaclinic.core import jobs

    instruments = list(settings.KETACLINIC_PRE_SESSION_SCALES)
    if not instruments:
        return
    jobs.enqueue(
        "measures.pre_session_link",
        {
            "patient_id": str(session.patient_id),
            "instruments": instruments,
            "purpose": f"day before course session {session.number}",
            "plan_session_id": str(session.pk),
            "session_start": session.start.isoformat(),
        },
        run_after=max(timezone.now(), session.start - timedelta(days=1)),
    )
