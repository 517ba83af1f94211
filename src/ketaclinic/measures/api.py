"""Rating-scale API: submit an administration for a patient and list a patient's administrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status

from ketaclinic.core.access import CLINICIANS, signed_in_user
from ketaclinic.core.api import api_roles
from ketaclinic.core.errors import fields_under
from ketaclinic.core.fields import Code
from ketaclinic.measures import services
from ketaclinic.measures.models import ScaleAdministration
from ketaclinic.patients import services as patients

router = Router(tags=["rating scales"])


class ScaleAdministrationIn(Schema):
    instrument: Code
    answers: dict[Code, int]
    administered_at: datetime | None = None
    session_id: UUID | None = None


class ScaleAdministrationOut(Schema):
    id: UUID
    instrument: str
    instrument_version: str
    answers: dict[str, int]
    total: float | None
    band: str
    subscores: dict[str, Any]
    flags: list[dict[str, Any]]
    entered_by_kind: str
    administered_at: datetime
    session_id: UUID | None


def _patient(request: HttpRequest, patient_id: UUID) -> Any:
    return patients.get_related_patient(
        user=signed_in_user(request), patient_id=patient_id, request=request, purpose="api scales"
    )


def _out(a: ScaleAdministration) -> dict[str, Any]:
    return {name: getattr(a, name) for name in ScaleAdministrationOut.model_fields}


@router.post("/{patient_id}/scales", response={201: ScaleAdministrationOut}, auth=api_roles(*CLINICIANS))
def submit(request: HttpRequest, patient_id: UUID, body: ScaleAdministrationIn) -> Status[dict[str, Any]]:
    patient = _patient(request, patient_id)
    # The answers are the body's ``answers`` object; instrument and administered_at are top-level fields.
    with fields_under("answers", keep={"instrument", "administered_at"}):
        saved = services.record_administration(
            user=signed_in_user(request),
            patient=patient,
            instrument=body.instrument,
            answers=body.answers,
            administered_at=body.administered_at,
            session_id=body.session_id,
            request=request,
            client="api",
        )
    return Status(201, _out(saved))


@router.get("/{patient_id}/scales", response=list[ScaleAdministrationOut], auth=api_roles(*CLINICIANS))
def list_scales(
    request: HttpRequest, patient_id: UUID, instrument: Code | None = None
) -> list[dict[str, Any]]:
    patient = _patient(request, patient_id)
    items = services.administrations(
        user=signed_in_user(request), patient=patient, request=request, instrument=instrument
    )
    return [_out(a) for a in items]
