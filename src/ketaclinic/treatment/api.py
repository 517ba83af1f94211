"""Treatment API: protocols (list), plans (create, read, stop). Mounted at /api/treatment."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from ketaclinic.core.access import ADMIN, CLINICIANS, PRESCRIBER, signed_in_user
from ketaclinic.core.api import FieldErrors, api_roles
from ketaclinic.patients import services as patients
from ketaclinic.treatment import library, services
from ketaclinic.treatment.models import Plan

router = Router(tags=["treatment"])


class PlanIn(Schema):
    protocol: str
    start: date
    preferred_time: time | None = None
    basis: str = "actual"
    prescribed_amount: float | None = None
    concentration_mg_ml: float | None = None
    container_volume_ml: float | None = None
    dose_override_reason: str | None = None


class SessionOut(Schema):
    id: UUID
    number: int
    week: int
    phase_name: str
    start: datetime
    end: datetime
    chair: str | None
    dose_text: str
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
    sessions: list[SessionOut]
    created_at: datetime
    status: str
    stopped_at: datetime | None
    stopped_by: str | None
    stop_reason: str


class StopIn(Schema):
    reason: str


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
                "status": s.status,
            }
            for s in plan.sessions.select_related("chair").order_by("number")
        ],
        "created_at": plan.created_at,
        "status": plan.status,
        "stopped_at": plan.stopped_at,
        "stopped_by": plan.stopped_by.get_username() if plan.stopped_by else None,
        "stop_reason": plan.stop_reason,
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
    try:
        patient = patients.get_patient(
            user=signed_in_user(request),
            patient_id=patient_id,
            request=request,
            purpose="api plan",
        )
    except (patients.PatientNotFound, patients.OutsideYourSites):
        raise HttpError(404, "No such patient.") from None
    try:
        plan = services.create_plan(
            user=signed_in_user(request),
            patient=patient,
            data=body.dict(),
            request=request,
            client="api",
        )
    except services.PlanValidationError as exc:
        raise FieldErrors(exc.errors) from None
    except services.TreatmentError as exc:
        raise HttpError(403, exc.message) from None
    return Status(201, _out(plan))


@router.get("/plans/{plan_id}", response=PlanOut, auth=api_roles(*CLINICIANS))
def read_plan(request: HttpRequest, plan_id: UUID) -> dict[str, Any]:
    try:
        plan = services.get_plan(user=signed_in_user(request), plan_id=plan_id, request=request, client="api")
    except services.NotFound:
        raise HttpError(404, "No such plan.") from None
    return _out(plan)


@router.post("/plans/{plan_id}/stop", response=StoppedOut, auth=api_roles(PRESCRIBER))
def stop_plan(request: HttpRequest, plan_id: UUID, body: StopIn) -> dict[str, Any]:
    """Stop a course: the plan is cancelled with the reason; booked sessions still to come that nobody
    opened at the chair are cancelled. 422 without a reason, 409 when it was already stopped."""
    user = signed_in_user(request)
    try:
        plan = services.get_plan(user=user, plan_id=plan_id, request=request, client="api")
    except services.NotFound:
        raise HttpError(404, "No such plan.") from None
    try:
        result = services.stop_course(user=user, plan=plan, reason=body.reason, request=request, client="api")
    except services.PlanValidationError as exc:
        raise FieldErrors(exc.errors) from None
    except services.TreatmentError as exc:
        raise HttpError(409, exc.message) from None
    return {
        "plan": _out(result.plan),
        "sessions_cancelled": result.cancelled,
        "sessions_open_at_chair": result.open_at_chair,
        "sessions_past_unrecorded": result.past_unrecorded,
    }
