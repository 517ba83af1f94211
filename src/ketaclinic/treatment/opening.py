"""Opening a booked course session at the chair: the one path from a plan to a chairside session.

The plan page, the *Today* list and the JSON API all come here. A course session opens only when:
its course is active and the session still booked; now lies within the clinic's window around its booked
time (clinical/schedule_rules.open_window_problem: from ``KETACLINIC_COURSE_OPEN_BEFORE_MIN`` before it to
the end of its booked day; clinic default, unconfirmed); a maintenance session has an end-of-induction
review that decided to continue (clinical/schedule_review.py); and the chairside rules pass
(``chairside.services.schedule_session``: the one dose check on the session's dose — the plan's, or the
dose a prescriber titrated for this session, with that prescriber's reason — one session a day, and a chair
that holds no one else). Opening twice returns the session already opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Chair, User
from ketaclinic.clinical.schedule_review import ReviewDecision
from ketaclinic.clinical.schedule_rules import open_window_problem
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
    from ketaclinic.chairside import services as chairside
    from ketaclinic.chairside.models import TreatmentSession

    existing = TreatmentSession.objects.filter(planned_session_id=session.pk).first()
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
