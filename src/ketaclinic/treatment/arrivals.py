"""Arrivals: the front desk (or a nurse) marks a patient arrived from the home page's *Today* list, and the
chair's nurse sees "arrived HH:MM" on Today, on the session page and on the live board (issue 14 point 6).

Arriving is not a clinical check-in: the chairside session stays *scheduled* until the nurse checks the
patient in (chairside.services.transition), and nothing clinical is read or decided here. The arrival is kept
on the booking: a course session's on its ``PlanSession`` (the chairside session opened for it reads it from
there, so there is one place), a chair session outside a plan on its ``TreatmentSession``. It is marked on
the day of the booking only, once (a second mark is refused with who marked it and when), by the roles that
work the registry (front desk, nurses, prescribers) at the sites they cover. Every mark is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.core.access import PATIENT_REGISTRY
from ketaclinic.patients.services import visible_patients
from ketaclinic.treatment.models import PlanSession, PlanStatus, SessionStatus
from ketaclinic.treatment.services import NotFound, TreatmentError, scheduled_outside_plan

if TYPE_CHECKING:
    from ketaclinic.chairside.models import TreatmentSession

CATEGORY = "arrival"


class ArrivalRefused(TreatmentError):
    """Why the arrival cannot be marked (not today, already marked, already checked in, cancelled)."""

    status = 409


@dataclass(frozen=True)
class Arrival:
    at: datetime
    recorded_by: str  # who marked it (a display name)


def _arrival(at: datetime | None, by: User | None) -> Arrival | None:
    return Arrival(at, by.display_name if by is not None else "") if at is not None else None


def _today(site: Site, now: datetime) -> tuple[datetime, datetime]:
    day = timezone.localdate(now, site.zone)
    begin = datetime.combine(day, time.min, tzinfo=site.zone)
    return begin, begin + timedelta(days=1)


def _opened_for(plan_session: PlanSession) -> TreatmentSession | None:
    from ketaclinic.chairside.models import TreatmentSession

    return TreatmentSession.objects.filter(planned_session=plan_session).first()  # one: a one-to-one key


def load_booking(*, user: User, kind: str, booking_id: Any) -> PlanSession | TreatmentSession:
    """The course session (``kind`` "course") or chair session outside a plan ("session") the user may see;
    anything else (another site, another organization, a malformed id) is not found."""
    from ketaclinic.chairside.models import TreatmentSession

    visible = visible_patients(user)
    try:
        if kind == "course":
            row: PlanSession | TreatmentSession | None = (
                PlanSession.objects.filter(pk=booking_id, patient__in=visible)
                .select_related("patient", "site", "plan", "arrival_recorded_by")
                .first()
            )
        elif kind == "session":
            row = (
                TreatmentSession.objects.filter(pk=booking_id, patient__in=visible)
                .select_related("patient", "site", "arrival_recorded_by")
                .first()
            )
        else:
            row = None
    except (ValueError, TypeError):
        row = None
    if row is None or row.site not in covered_sites(user):
        raise NotFound("No such booking.")
    return row


def _refusal(booking: PlanSession | TreatmentSession, now: datetime) -> str | None:
    """Why ``booking`` cannot be marked arrived now (None when it can)."""
    from ketaclinic.chairside.models import Status

    start = booking.start if isinstance(booking, PlanSession) else booking.scheduled_at
    begin, finish = _today(booking.site, now)
    if isinstance(booking, PlanSession):
        if booking.status != SessionStatus.BOOKED:
            return f"Session {booking.number} is {booking.get_status_display().lower()}."
        if booking.plan.status != PlanStatus.ACTIVE:
            return "The course was stopped: this session does not take place."
        opened = _opened_for(booking)
        status = opened.status if opened is not None else Status.SCHEDULED
    else:
        status = booking.status
    if not begin <= start < finish:
        local = start.astimezone(booking.site.zone)
        return f"This session is booked for {local:%a} {local.day} {local:%b %H:%M}: arrival is marked on the day."
    if status != Status.SCHEDULED:
        return f"The patient is already {Status(status).label.lower()}: the nurse has taken over."
    if booking.arrived_at is not None:
        arrival = _arrival(booking.arrived_at, booking.arrival_recorded_by)
        assert arrival is not None
        local = arrival.at.astimezone(booking.site.zone)
        return f"Already marked arrived at {local:%H:%M} by {arrival.recorded_by}."
    return None


def may_mark_arrived(booking: PlanSession | TreatmentSession, now: datetime | None = None) -> bool:
    return _refusal(booking, now or timezone.now()) is None


def mark_arrived(
    *,
    user: User,
    booking: PlanSession | TreatmentSession,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Arrival:
    """Record that the patient of today's ``booking`` is here (front desk, nurses, prescribers of the site).
    A chairside session opened for a course session is marked on its course session. Not a check-in: no
    status changes. Refused (ArrivalRefused, 409) when the booking is not today, was cancelled, the patient
    is already checked in, or the arrival was already marked. Audited."""
    from ketaclinic.chairside.models import TreatmentSession

    if user.role not in PATIENT_REGISTRY:
        raise ArrivalRefused("Only the front desk, nurses and prescribers mark arrivals.")
    if booking.site not in covered_sites(user):
        raise NotFound("No such booking.")
    if isinstance(booking, TreatmentSession) and booking.planned_session_id is not None:
        booking = PlanSession.objects.select_related("patient", "site", "plan", "arrival_recorded_by").get(
            pk=booking.planned_session_id
        )
    now = now or timezone.now()
    problem = _refusal(booking, now)
    if problem:
        raise ArrivalRefused(problem)
    model = type(booking)
    if (
        model.objects.filter(pk=booking.pk, arrived_at__isnull=True).update(
            arrived_at=now, arrival_recorded_by=user
        )
        != 1
    ):  # a colleague marked it at the same moment
        booking.refresh_from_db()
        raise ArrivalRefused(_refusal(booking, now) or "Someone marked this arrival at the same moment.")
    booking.arrived_at, booking.arrival_recorded_by = now, user
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=booking.patient,
        object_type=model.__name__,
        object_id=booking.pk,
        before={"arrived_at": None},
        after={"arrived_at": now.isoformat()},
        request=request,
        detail="patient arrived (not a clinical check-in)",
    )
    return Arrival(now, user.display_name)


def arrival_of(session: TreatmentSession) -> Arrival | None:
    """When the patient of a chairside session arrived: its own mark, or its course session's."""
    if session.planned_session_id is None:
        return _arrival(session.arrived_at, session.arrival_recorded_by)
    row = (
        PlanSession.objects.filter(pk=session.planned_session_id)
        .select_related("arrival_recorded_by")
        .only("arrived_at", "arrival_recorded_by")
        .first()
    )
    return _arrival(row.arrived_at, row.arrival_recorded_by) if row is not None else None


def booking_arrival(booking: PlanSession | TreatmentSession) -> Arrival | None:
    return _arrival(booking.arrived_at, booking.arrival_recorded_by)


@dataclass(frozen=True)
class Waiting:
    """A patient who arrived today and is not yet checked in (the live board's waiting line)."""

    chair: str
    patient_name: str
    mrn: str
    start: datetime
    arrived_at: datetime
    session_id: Any  # the chairside session, when one was opened (the nurse checks in there)


def waiting_today(site: Site, now: datetime | None = None) -> list[Waiting]:
    """Today's arrivals at ``site`` whose session is not under way yet, by arrival time: course sessions still
    booked (not opened, or opened and still scheduled) and chair sessions outside a plan still scheduled."""
    from ketaclinic.chairside.models import Status, TreatmentSession

    begin, finish = _today(site, now or timezone.now())
    courses = list(
        PlanSession.objects.filter(
            site=site,
            status=SessionStatus.BOOKED,
            plan__status=PlanStatus.ACTIVE,
            start__gte=begin,
            start__lt=finish,
            arrived_at__isnull=False,
        ).select_related("patient", "chair")
    )
    opened = {
        t.planned_session_id: t
        for t in TreatmentSession.objects.filter(planned_session_id__in=[c.pk for c in courses])
    }
    out = []
    for row in courses:
        session = opened.get(row.pk)
        if session is not None and session.status != Status.SCHEDULED:
            continue
        assert row.arrived_at is not None
        out.append(
            Waiting(
                row.chair.label if row.chair else "No chair",
                f"{row.patient.family_name}, {row.patient.given_name}",
                row.patient.mrn,
                row.start,
                row.arrived_at,
                session.pk if session is not None else None,
            )
        )
    for t in (
        scheduled_outside_plan(site, begin, finish)
        .filter(arrived_at__isnull=False)
        .select_related("patient", "chair")
    ):
        assert t.arrived_at is not None
        out.append(
            Waiting(
                t.chair.label if t.chair else "No chair",
                f"{t.patient.family_name}, {t.patient.given_name}",
                t.patient.mrn,
                t.scheduled_at,
                t.arrived_at,
                t.pk,
            )
        )
    return sorted(out, key=lambda w: (w.arrived_at, w.chair))


def waiting_signature(site: Site, now: datetime | None = None) -> tuple[Any, ...]:
    """Changes whenever the waiting line would (someone arrives, is checked in, or moves chair)."""
    return tuple((w.chair, str(w.session_id), w.mrn, w.arrived_at) for w in waiting_today(site, now))
