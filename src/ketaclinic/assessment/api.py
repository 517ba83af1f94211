"""Assessment API: intakes (create a version, read) and screenings (run, read). Mounted at /api/assessment."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status

from ketaclinic.assessment import services
from ketaclinic.assessment.intake_data import coded_diagnoses
from ketaclinic.assessment.models import Intake, Screening
from ketaclinic.clinical.conditions import Drug
from ketaclinic.core.access import CLINICIANS, PRESCRIBER, signed_in_user
from ketaclinic.core.api import api_roles
from ketaclinic.core.errors import fields_under
from ketaclinic.patients import services as patients

router = Router(tags=["assessment"])


class IntakeIn(Schema):
    base_version: int | None = None
    data: dict[str, Any]


class IntakeOut(Schema):
    id: UUID
    patient_id: UUID
    version: int
    data: dict[str, Any]
    coded_diagnoses: list[dict[str, Any]]
    age_years: int | None
    fingerprint: str
    created_at: datetime
    created_by: str
    signed_by: str | None
    signed_at: datetime | None


class ScreeningOut(Schema):
    id: UUID
    patient_id: UUID
    intake_id: UUID
    intake_version: int
    fingerprint: str
    stale: bool
    decisions: dict[str, str]
    findings: list[dict[str, Any]]
    trd: dict[str, Any] | None
    created_at: datetime
    signed_by: str | None
    signed_at: datetime | None
    overrides: list[dict[str, Any]]
    overridable: dict[str, bool]


def _patient(request: HttpRequest, patient_id: UUID) -> Any:
    return patients.get_related_patient(
        user=signed_in_user(request), patient_id=patient_id, request=request, purpose="api assessment"
    )


def _intake_out(i: Intake) -> dict[str, Any]:
    return {
        "id": i.pk,
        "patient_id": i.patient_id,
        "version": i.version,
        "data": i.data,
        "coded_diagnoses": coded_diagnoses(i.data),
        "age_years": i.age_years,
        "fingerprint": i.fingerprint,
        "created_at": i.created_at,
        "created_by": i.created_by.get_username(),
        "signed_by": i.signed_by.get_username() if i.signed_by else None,
        "signed_at": i.signed_at,
    }


def _screening_out(s: Screening) -> dict[str, Any]:
    return {
        "id": s.pk,
        "patient_id": s.patient_id,
        "intake_id": s.intake_id,
        "intake_version": s.intake.version,
        "fingerprint": s.fingerprint,
        "stale": services.is_stale(s),
        "decisions": s.decisions,
        "findings": s.findings,
        "trd": s.trd,
        "created_at": s.created_at,
        "signed_by": s.signed_by.get_username() if s.signed_by else None,
        "signed_at": s.signed_at,
        "overrides": [
            {
                "drug": o.drug,
                "reason": o.reason,
                "by": o.overridden_by.get_username(),
                "at": o.overridden_at.isoformat(),
                # False for an override of a label contraindication made before those were refused.
                "counts": services.effective_override(s, Drug(o.drug)) is not None,
            }
            for o in s.overrides.select_related("overridden_by")
        ],
        # drug -> may a prescriber override its not-eligible decision (false: eligible, or absolute).
        "overridable": {
            d.value: services.override_check_for(s, d).overridable for d in Drug if d.value in s.decisions
        },
    }


@router.post("/patients/{patient_id}/intakes", response={201: IntakeOut}, auth=api_roles(*CLINICIANS))
def create_intake(request: HttpRequest, patient_id: UUID, body: IntakeIn) -> Status[dict[str, Any]]:
    """Save a new intake version. ``base_version`` is the version you started from (omit for the first)."""
    patient = _patient(request, patient_id)
    with fields_under("data", keep={"base_version"}):  # the answers are the body's ``data`` object
        intake = services.save_intake(
            user=signed_in_user(request),
            patient=patient,
            data=body.data,
            base_version=body.base_version,
            request=request,
            client="api",
        )
    return Status(201, _intake_out(intake))


@router.get("/patients/{patient_id}/intakes/latest", response=IntakeOut, auth=api_roles(*CLINICIANS))
def latest_intake(request: HttpRequest, patient_id: UUID) -> dict[str, Any]:
    patient = _patient(request, patient_id)
    intake = services.latest_intake(patient)
    if intake is None:
        raise services.NotFound("No intake yet.")
    intake = services.get_intake(
        user=signed_in_user(request), intake_id=intake.pk, request=request, client="api"
    )
    return _intake_out(intake)


@router.get("/intakes/{intake_id}", response=IntakeOut, auth=api_roles(*CLINICIANS))
def read_intake(request: HttpRequest, intake_id: UUID) -> dict[str, Any]:
    intake = services.get_intake(
        user=signed_in_user(request), intake_id=intake_id, request=request, client="api"
    )
    return _intake_out(intake)


@router.post("/intakes/{intake_id}/sign", response=IntakeOut, auth=api_roles(PRESCRIBER))
def sign_intake(request: HttpRequest, intake_id: UUID) -> dict[str, Any]:
    intake = services.get_intake(
        user=signed_in_user(request), intake_id=intake_id, request=request, client="api"
    )
    services.sign_intake(user=signed_in_user(request), intake=intake, request=request, client="api")
    return _intake_out(intake)


@router.post("/patients/{patient_id}/screenings", response={201: ScreeningOut}, auth=api_roles(*CLINICIANS))
def run_screening(request: HttpRequest, patient_id: UUID) -> Status[dict[str, Any]]:
    """Screen the patient's latest signed intake with the pure engine and store the result."""
    patient = _patient(request, patient_id)
    screening = services.run_screening(
        user=signed_in_user(request), patient=patient, request=request, client="api"
    )
    return Status(201, _screening_out(screening))


@router.get("/screenings/{screening_id}", response=ScreeningOut, auth=api_roles(*CLINICIANS))
def read_screening(request: HttpRequest, screening_id: UUID) -> dict[str, Any]:
    screening = services.get_screening(
        user=signed_in_user(request), screening_id=screening_id, request=request, client="api"
    )
    return _screening_out(screening)
