"""Treatment API: protocols (list), plans (create, read, stop), the end-of-induction review (read, record),
course sessions (open at the chair, titrate the dose). Mounted at /api/treatment."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from ketaclinic.core.access import ADMIN, CLINICIANS, PRESCRIBER, signed_in_user
from ketaclinic.core.api import FieldErrors, api_roles
from ketaclinic.core.fields import Code, Reason
from ketaclinic.patients import services as patients
from ketaclinic.treatment import library, services
from ketaclinic.treatment.models import Plan

router = Router(tags=["treatment"])


class PlanIn(Schema):
    protocol: Code
    start: date
    preferred_time: time | None = None
    basis: Code = Field(default="actual", description="actual, ideal or adjusted (422 names the choices)")
    prescribed_amount: float | None = None
    concentration_mg_ml: float | None = None
    container_volume_ml: float | None = None
    dose_override_reason: Reason | None = None
    concurrent_course_reason: Reason | None = None


class PlanSessionOut(Schema):
    id: UUID
    number: int
    week: int
    phase_name: str
    start: datetime
    end: datetime
    chair: str | None
    dose_text: str
    dose_mg: float
    dose_reason: str
    phase_kind: str
    status: str


class PlanOut(Schema):
    id: UUID
    patient_id: UUID
    site: str
    protocol: dict[str, Any]
    screening_id: UUID
    screening_decision: str
    screening_override: str | None
    dose_mg: float
    dose: dict[str, Any]
    dose_override_reason: str
    second_person_required: bool
    verified_by: str | None
    verified_at: datetime | None
    conflicts: list[str]
    unscheduled: list[str]
    sessions: list[PlanSessionOut]
    created_at: datetime
    status: str
    stopped_at: datetime | None
    stopped_by: str | None
    stop_reason: str
    concurrent_reason: str
    proposals: list[dict[str, Any]]


class StopIn(Schema):
    reason: Reason


class StoppedOut(Schema):
    plan: PlanOut
    sessions_cancelled: list[int]
    sessions_open_at_chair: list[int]
    sessions_past_unrecorded: list[int]


class ProtocolOut(Schema):
    id: str
    version: int
    name: str
    drug: str
    route: str
    built_in: bool


def _out(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.pk,
        "patient_id": plan.patient_id,
        "site": plan.site.code,
        "protocol": {"id": plan.protocol_key, "version": plan.protocol_version},
        "screening_id": plan.screening_id,
        "screening_decision": plan.screening_decision,
        "screening_override": plan.screening_override.reason if plan.screening_override else None,
        "dose_mg": plan.dose_mg,
        "dose": plan.dose,
        "dose_override_reason": plan.dose_override_reason,
        "second_person_required": plan.second_person_required,
        "verified_by": plan.verified_by.get_username() if plan.verified_by else None,
        "verified_at": plan.verified_at,
        "conflicts": plan.conflicts,
        "unscheduled": plan.unscheduled,
        "sessions": [
            {
                "id": s.pk,
                "number": s.number,
                "week": s.week,
                "phase_name": s.phase_name,
                "start": s.start,
                "end": s.end,
                "chair": s.chair.label if s.chair else None,
                "dose_text": s.dose_text,
                "dose_mg": s.planned_dose_mg,
                "dose_reason": s.dose_reason,
                "phase_kind": s.phase_kind,
                "status": s.status,
            }
            for s in plan.sessions.select_related("chair", "plan").order_by("start", "number")
        ],
        "created_at": plan.created_at,
        "status": plan.status,
        "stopped_at": plan.stopped_at,
        "stopped_by": plan.stopped_by.get_username() if plan.stopped_by else None,
        "stop_reason": plan.stop_reason,
        "concurrent_reason": plan.concurrent_reason,
        "proposals": plan.proposals,
    }


@router.get("/protocols", response=list[ProtocolOut], auth=api_roles(ADMIN, *CLINICIANS))
def list_protocols(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "id": r.key,
            "version": r.version,
            "name": r.name,
            "drug": r.drug,
            "route": r.route,
            "built_in": r.built_in,
        }
        for r in library.latest_versions(signed_in_user(request))
    ]


@router.post("/patients/{patient_id}/plans", response={201: PlanOut}, auth=api_roles(PRESCRIBER))
def create_plan(request: HttpRequest, patient_id: UUID, body: PlanIn) -> Status[dict[str, Any]]:
    """Needs a signed, current screening that clears the protocol's drug (or a recorded override)."""
    patient = patients.get_related_patient(
        user=signed_in_user(request), patient_id=patient_id, request=request, purpose="api plan"
    )
    plan = services.create_plan(
        user=signed_in_user(request), patient=patient, data=body.dict(), request=request, client="api"
    )
    return Status(201, _out(plan))


@router.get("/plans/{plan_id}", response=PlanOut, auth=api_roles(*CLINICIANS))
def read_plan(request: HttpRequest, plan_id: UUID) -> dict[str, Any]:
    return _out(_plan(request, plan_id))


@router.post("/plans/{plan_id}/stop", response=StoppedOut, auth=api_roles(PRESCRIBER))
def stop_plan(request: HttpRequest, plan_id: UUID, body: StopIn) -> dict[str, Any]:
    """Stop a course: the plan is cancelled with the reason; booked sessions still to come that nobody
    opened at the chair are cancelled. 422 without a reason, 409 when it was already stopped."""
    user = signed_in_user(request)
    plan = _plan(request, plan_id)
    result = services.stop_course(user=user, plan=plan, reason=body.reason, request=request, client="api")
    return {
        "plan": _out(result.plan),
        "sessions_cancelled": result.cancelled,
        "sessions_open_at_chair": result.open_at_chair,
        "sessions_past_unrecorded": result.past_unrecorded,
    }


# --- the end-of-induction review, opening and titrating course sessions -------------------------------------


class ReviewIn(Schema):
    decision: Code = Field(description="continue, stop or extend (422 names the choices)")
    reason: Reason = ""
    scale: Code = ""
    phases: list[int] = []  # optional maintenance phases to book (the others are always booked)
    cadences: dict[int, Code] = {}  # phase index -> cadence text, e.g. {"2": "weekly"}
    extra_sessions: int = 0


def _response(r: Any) -> dict[str, Any]:
    return {
        "scale": r.scale,
        "instrument": r.instrument,
        "name": r.name,
        "baseline": {"at": r.baseline.at, "total": r.baseline.total} if r.baseline else None,
        "latest": {"at": r.latest.at, "total": r.latest.total} if r.latest else None,
        "percent_change": r.percent_change,
        "rule": r.rule_label,
        "rule_source": r.rule_source,
        "rule_confirmed": r.rule_confirmed,
        "met": r.met,
        "remission": r.remission,
        "summary": r.summary,
    }


def _review(v: Any) -> dict[str, Any]:
    return {
        "id": str(v.pk),
        "decision": v.decision,
        "scale": v.scale,
        "summary": v.summary,
        "response_met": v.response_met,
        "rule": v.rule,
        "rule_source": v.rule_source,
        "reason": v.reason,
        "phases": v.phases,
        "sessions_booked": v.sessions_booked,
        "decided_by": v.decided_by.get_username(),
        "decided_at": v.decided_at,
    }


def _plan(request: HttpRequest, plan_id: UUID) -> Plan:
    return services.get_plan(user=signed_in_user(request), plan_id=plan_id, request=request, client="api")


@router.get("/plans/{plan_id}/review", response=dict[str, Any], auth=api_roles(*CLINICIANS))
def read_review(request: HttpRequest, plan_id: UUID) -> dict[str, Any]:
    """Whether the review is due, the response on each of the protocol's scales by its own rule, the
    maintenance phases proposed and not booked, the induction sessions that may be made up, past reviews."""
    from ketaclinic.treatment.review import review_state

    plan = _plan(request, plan_id)
    state = review_state(user=signed_in_user(request), plan=plan, request=request)
    return {
        "due": state.due,
        "responses": [_response(r) for r in state.responses],
        "maintenance": state.maintenance,
        "extendable": state.extendable,
        "reviews": [_review(v) for v in state.reviews],
        "may_open_maintenance": state.may_open_maintenance,
    }


@router.post("/plans/{plan_id}/review", response={201: dict[str, Any]}, auth=api_roles(PRESCRIBER))
def record_review(request: HttpRequest, plan_id: UUID, body: ReviewIn) -> Status[dict[str, Any]]:
    """Record the end-of-induction review and carry out the decision: continue (books the maintenance),
    stop the course, or extend the induction within the protocol's limits. 422 names the field."""
    from ketaclinic.treatment.review import record_review as record

    plan = _plan(request, plan_id)
    review = record(
        user=signed_in_user(request),
        plan=plan,
        decision=body.decision,
        reason=body.reason,
        scale=body.scale,
        phases=body.phases,
        cadences=body.cadences,
        extra_sessions=body.extra_sessions,
        request=request,
        client="api",
    )
    plan.refresh_from_db()
    return Status(201, {"review": _review(review), "plan": _out(plan)})


def _plan_session(request: HttpRequest, session_id: UUID) -> Any:
    from ketaclinic.treatment.models import PlanSession

    user = signed_in_user(request)
    row = (
        PlanSession.objects.filter(
            pk=session_id, organization_id=user.org_id, patient__in=patients.visible_patients(user)
        )
        .select_related("plan", "site", "patient", "chair")
        .first()
    )
    if row is None:
        raise services.NotFound("No such session.")
    return row


class DoseIn(Schema):
    dose_mg: float
    reason: Reason
    later: bool = False


@router.post("/plan-sessions/{session_id}/dose", response=list[PlanSessionOut], auth=api_roles(PRESCRIBER))
def titrate(request: HttpRequest, session_id: UUID, body: DoseIn) -> list[dict[str, Any]]:
    """Set a booked session's dose (and every later one's with ``later``) with a reason: the one dose check
    for the session's dose rule; 422 names the limit."""
    from ketaclinic.treatment.titration import set_session_dose

    row = _plan_session(request, session_id)
    changed = set_session_dose(
        user=signed_in_user(request),
        session=row,
        dose_mg=body.dose_mg,
        reason=body.reason,
        later=body.later,
        request=request,
        client="api",
    )
    by_id = {s["id"]: s for s in _out(row.plan)["sessions"]}
    return [by_id[r.pk] for r in changed]


class OpenIn(Schema):
    chair_id: int | None = None


@router.post(
    "/plan-sessions/{session_id}/open",
    response={200: dict[str, Any], 201: dict[str, Any]},
    auth=api_roles(*CLINICIANS),
)
def open_session(request: HttpRequest, session_id: UUID, body: OpenIn) -> Status[dict[str, Any]]:
    """Open the chairside session of a booked course session (within its window, after the review for a
    maintenance session, in a chair that holds no one else); 200 when it was already open."""
    from ketaclinic.accounts.models import Chair
    from ketaclinic.core.text import whole_number
    from ketaclinic.treatment.opening import start_booked_session

    row = _plan_session(request, session_id)
    number = whole_number(str(body.chair_id)) if body.chair_id is not None else None
    if body.chair_id is not None and not (
        number and Chair.objects.filter(pk=number, site_id=row.site_id).exists()
    ):
        raise FieldErrors({"chair_id": "is not a chair at the session's site"})
    session, new = start_booked_session(
        user=signed_in_user(request), session=row, chair_id=body.chair_id, request=request
    )
    return Status(
        201 if new else 200,
        {"session_id": str(session.pk), "chair": session.chair.label if session.chair else None},
    )
