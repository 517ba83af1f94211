"""Per-session dose titration: a prescriber sets the dose of a booked course session (esketamine 56 ↔ 84 mg,
an IV dose within its limits), with a reason, for that session or that one and every later one.

Before issue 14 every session opened with session 1's dose. The dose goes through the one dose check
(clinical/dose_check.check_session_dose) for the session's own dose rule (``Protocol.dose_for_session``),
the patient's charted weight and the plan's weight basis: a hard limit refuses it; outside the usual range
(esketamine 28 mg, an IV dose past the soft limit) the prescriber's reason stands as the decision. The
session then opens with that dose and reason (treatment/opening.py), and the check runs again at the chair.
Every change is audited with the dose before and after.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical.dose_check import MIN_REASON_CHARS, Decided, check_session_dose, unresolved
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.treatment import library
from ketaclinic.treatment.models import PlanSession, PlanStatus, SessionStatus
from ketaclinic.treatment.services import CATEGORY, PlanValidationError, TreatmentError, TreatmentForbidden


def set_session_dose(
    *,
    user: User,
    session: PlanSession,
    dose_mg: float,
    reason: str,
    later: bool = False,
    request: HttpRequest | None = None,
    client: str = "",
) -> list[PlanSession]:
    """Titrate course session ``session`` (and, with ``later``, every later booked session of the course
    not yet opened) to ``dose_mg``. Returns the sessions changed."""
    from ketaclinic.chairside.models import TreatmentSession
    from ketaclinic.chairside.services import body_of, dose_rule_for, finding_errors

    if user.role != PRESCRIBER:
        raise TreatmentForbidden("Only a prescriber may change a session's dose.")
    plan = session.plan
    if plan.status != PlanStatus.ACTIVE:
        raise TreatmentError("The course was stopped: its doses cannot change.")
    text = reason.strip()
    errors: dict[str, str] = {}
    if len(text) < MIN_REASON_CHARS:
        errors["reason"] = f"say why the dose changes (at least {MIN_REASON_CHARS} characters)"
    if session.status != SessionStatus.BOOKED:
        errors["session"] = f"session {session.number} is {session.get_status_display().lower()}"
    if errors:
        raise PlanValidationError(errors)
    opened = set(
        TreatmentSession.objects.filter(planned_session__plan=plan).values_list(
            "planned_session_id", flat=True
        )
    )
    if session.pk in opened:
        raise PlanValidationError(
            {"session": f"session {session.number} is already open at the chair: its dose is decided there"}
        )
    rows = [session]
    if later:
        rows += [
            r
            for r in plan.sessions.filter(status=SessionStatus.BOOKED, start__gt=session.start).order_by(
                "start"
            )
            if r.pk not in opened
        ]
    protocol = library.as_protocol(plan.protocol)
    body = body_of(plan.patient)
    basis = str((plan.inputs or {}).get("basis") or "actual")
    for row in rows:
        verdict = check_session_dose(
            protocol=protocol,
            rule=dose_rule_for(protocol, row.number),
            dose_mg=dose_mg,
            body=body,
            basis=basis,
        )
        left = unresolved(verdict.findings, Decided(prescriber_reason=text, by_prescriber=True))
        if left:
            found = finding_errors(left, {}, reason_field="reason", is_prescriber=True)
            raise PlanValidationError({"dose_mg": f"Session {row.number}: " + " ".join(found.values())})
    now = timezone.now()
    for row in rows:
        before: dict[str, Any] = {"dose_mg": row.dose_mg if row.dose_mg is not None else plan.dose_mg}
        row.dose_mg, row.dose_reason, row.dose_set_by, row.dose_set_at = dose_mg, text, user, now
        row.save(update_fields=["dose_mg", "dose_reason", "dose_set_by", "dose_set_at"])
        audit.record(
            user=user,
            action=Action.CHANGE,
            category=CATEGORY,
            patient=plan.patient,
            object_type="PlanSession",
            object_id=row.pk,
            before=before,
            after={"dose_mg": dose_mg, "reason": text, "session": row.number},
            request=request,
            client=client,
            detail="session dose titrated",
        )
    return rows
