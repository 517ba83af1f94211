"""Opening a booked course session at the chair: the one path from a plan to a chairside session.

The plan page, the *Today* list and the JSON API all come here. A course session opens only when:
its course is active and the session still booked; now lies within the clinic's window around its booked
time (clinical/schedule_rules.open_window_problem: from ``KETACLINIC_COURSE_OPEN_BEFORE_MIN`` before it to
the end of its booked day; clinic default, unconfirmed); a maintenance session has an end-of-induction
review that decided to continue (clinical/schedule_review.py); and the chairside rules pass
(``chairside.services.schedule_session``: the one dose check on the session's dose — the plan's, or the
dose a prescriber titrated for this session, with that prescriber's reason — one session a day, and a chair
that holds no one else). Opening twice returns the session already opened.

``start_booked_session`` is the use case the edges call (the plan page and *Today*'s "Open session",
``POST /api/treatment/plan-sessions/{id}/open``): in one transaction it locks the course session, checks the
user may see it, finds the chair asked for at the session's site and opens it through
``open_course_session``. The database holds one treatment session per course session
(``TreatmentSession.planned_session``, a one-to-one key), so two nurses pressing "Open session" at once get
the same session: the second waits for the lock and finds the first one's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Chair, User
from ketaclinic.clinical.schedule_review import ReviewDecision
from ketaclinic.clinical.schedule_rules import open_window_problem
from ketaclinic.core.text import whole_number
from ketaclinic.treatment import rules
from ketaclinic.treatment.models import InductionReview, PlanSession, PlanStatus, SessionStatus
from ketaclinic.treatment.services import PlanValidationError, TreatmentError


def session_dose(row: PlanSession) -> tuple[float, str, User]:
    """(dose in mg, the prescriber's reason, who decided) for course session ``row``: a titrated dose, or the
    plan's dose."""
    plan = row.plan
    if row.dose_mg is not None and row.dose_set_by is not None:
        return row.dose_mg, row.dose_reason, row.dose_set_by
    return plan.dose_mg, plan.dose_override_reason, plan.created_by


def may_continue(plan: Any) -> bool:
    """Whether the course's latest end-of-induction review decided to continue into maintenance."""
    latest = InductionReview.objects.filter(plan=plan).order_by("-decided_at").first()
    return latest is not None and latest.decision == ReviewDecision.CONTINUE.value


class NoSuchCourseSession(TreatmentError):
    """The course session is not one the user may see (another organization, a site not theirs): the edges
    answer 404, as for a session that does not exist."""

    status = 404

    def __init__(self) -> None:
        super().__init__("No such session.")


class UnknownChair(PlanValidationError):
    """The chair asked for is not a chair at the course session's site: never opened elsewhere."""

    def __init__(self, raw: int | str, site_name: str) -> None:
        super().__init__({"chair": f"chair {raw!r} is not a chair at {site_name}."})
        self.raw = raw


def start_booked_session(
    *,
    user: User,
    session: PlanSession,
    chair_id: int | str | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    """Start (open at the chair) the booked course session ``session`` for ``user``, in the chair
    ``chair_id`` (a chair of the session's site; empty: its booked chair). One transaction; the opening is
    audited by ``chairside.services.schedule_session``. Returns (the treatment session, whether it was
    opened now: False when it was already open). Raises NoSuchCourseSession when the user may not see it,
    UnknownChair for a chair not at its site, TreatmentError / PlanValidationError naming what stops it,
    chairside.services.SessionError for the chairside rules; nothing is written then."""
    from ketaclinic.accounts.models import Chair
    from ketaclinic.patients.services import visible_patients

    if user.organization_id is None:
        raise NoSuchCourseSession()
    with transaction.atomic():
        row = (
            PlanSession.objects.select_for_update()
            .filter(pk=session.pk, organization_id=user.organization_id)
            .first()
        )
        if row is None or not visible_patients(user).filter(pk=row.patient_id).exists():
            raise NoSuchCourseSession()
        chair = None
        if chair_id is not None and str(chair_id).strip():
            raw = str(chair_id).strip()
            number = whole_number(raw)
            chair = Chair.objects.filter(pk=number, site_id=row.site_id).first() if number else None
            if chair is None:
                raise UnknownChair(raw, row.site.name)
        return open_course_session(user=user, session=row, chair=chair, request=request, now=now)


def open_course_session(
    *,
    user: User,
    session: PlanSession,
    chair: Chair | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> tuple[Any, bool]:
    """Open the chairside session of ``session`` (in ``chair`` if given, else its booked chair). Returns
    (the treatment session, whether it was opened now). Raises TreatmentError / PlanValidationError naming
    what stops it, or chairside.services.SessionInputError for the chairside rules."""
    with transaction.atomic():
        return _open(user=user, session=session, chair=chair, request=request, now=now)


def _open(
    *,
    user: User,
    session: PlanSession,
    chair: Chair | None,
    request: HttpRequest | None,
    now: datetime | None,
) -> tuple[Any, bool]:
    from ketaclinic.chairside import services as chairside
    from ketaclinic.chairside.models import TreatmentSession

    existing = TreatmentSession.objects.filter(planned_session=session).first()
    if existing is not None:
        return existing, False
    if session.status != SessionStatus.BOOKED:
        raise TreatmentError(f"Session {session.number} is {session.get_status_display().lower()}.")
    plan = session.plan
    if plan.status != PlanStatus.ACTIVE:
        raise TreatmentError("The course was stopped: its sessions are not opened.")
    moment = now or timezone.now()
    problem = open_window_problem(
        number=session.number,
        booked_start=session.start,
        now=moment,
        zone=session.site.zone,
        window=rules.open_window(),
    )
    if problem:
        raise PlanValidationError({"start": problem})
    if session.phase_kind == "maintenance" and not may_continue(plan):
        raise TreatmentError(
            f"Session {session.number} is a maintenance session: a prescriber records the end-of-induction "
            "review (the response and the decision to continue) before maintenance sessions open."
        )
    if chair is not None and (chair.site_id != session.site_id or not chair.active):
        raise PlanValidationError({"chair": f"{chair.label} is not an active chair at {session.site.name}"})
    if chair is not None and chair.pk != session.chair_id:
        from ketaclinic.treatment.services import chair_bookings

        held = chair_bookings(chair, session.start, session.end, exclude=session)
        if held:
            raise PlanValidationError(
                {"chair": f"{chair.label} is booked then ({'; '.join(held)}): choose another"}
            )
    dose_mg, reason, decided_by = session_dose(session)
    opened = chairside.schedule_session(
        user=user,
        patient=session.patient,
        protocol_id=plan.protocol_key,
        scheduled_at=session.start,
        planned_dose_mg=dose_mg,
        chair=chair or session.chair,
        planned_session_id=session.pk,
        dose_basis=str((plan.inputs or {}).get("basis") or "actual"),
        dose_override_reason=reason,
        dose_decided_by=decided_by,
        session_number=session.number,
        request=request,
    )
    if chair is not None and chair.pk != session.chair_id:
        session.chair = chair
        session.save(update_fields=["chair"])
    return opened, True
