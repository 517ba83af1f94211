"""Treatment-session API: schedule, read, move through the lifecycle, post readings in idempotent batches,
record doses and acknowledge alerts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Header, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from ketaclinic.chairside import services
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.clinical.vitals import VitalReading
from ketaclinic.core.access import CLINICIANS
from ketaclinic.core.api import FieldErrors, api_roles
from ketaclinic.patients import services as patients

router = Router(tags=["treatment sessions"])


class SessionIn(Schema):
    patient_id: UUID
    protocol_id: str
    planned_dose_mg: Decimal
    scheduled_at: datetime
    chair_id: int | None = None
    chair_override_reason: str = Field(
        default="",
        description="Needed only when the chair is taken at that time (422 on this field names what holds "
        "it): why to use it anyway",
    )


class SessionOut(Schema):
    id: UUID
    patient_id: UUID
    protocol_id: str
    drug: str
    route: str
    planned_dose_mg: Decimal
    scheduled_at: datetime
    status: str
    dose_started_at: datetime | None
    discharged_at: datetime | None
    version: int


class TransitionIn(Schema):
    to: str
    version: int
    reason: str = ""


class ReadingIn(Schema):
    observed_at: datetime
    sbp_mmhg: int | None = None
    dbp_mmhg: int | None = None
    hr_bpm: int | None = None
    spo2_pct: int | None = None
    rr_per_min: int | None = None
    temp_c: float | None = None
    moaas: int | None = None
    cadss_total: int | None = None


class BatchIn(Schema):
    idempotency_key: str | None = Field(default=None, description="Or the Idempotency-Key header")
    readings: list[ReadingIn]


class BatchOut(Schema):
    batch: str
    stored: int
    duplicate: bool


class AdministrationIn(Schema):
    kind: str
    at: datetime | None = None
    product: str = ""
    concentration_mg_ml: Decimal | None = None
    lot: str = ""
    expiry: date | None = None
    dose_mg: Decimal | None = None
    rate_ml_per_h: Decimal | None = None
    verified_by: int | None = None
    note: str = ""


class AcknowledgeIn(Schema):
    note: str


def _out(session: TreatmentSession) -> dict[str, Any]:
    return {name: getattr(session, name) for name in SessionOut.model_fields}


def _session(request: HttpRequest, session_id: UUID, purpose: str) -> TreatmentSession:
    try:
        return services.get_session(
            user=request.user, session_id=session_id, request=request, purpose=purpose
        )  # type: ignore[arg-type]
    except services.SessionNotFound:
        raise HttpError(404, "No such session.") from None


def _raise(exc: services.SessionError) -> None:
    if isinstance(exc, services.SessionConflict):
        raise HttpError(409, str(exc)) from None
    if isinstance(exc, services.SessionInputError):
        raise FieldErrors(exc.errors) from None
    raise HttpError(409, str(exc)) from None


@router.post("", response={201: SessionOut}, auth=api_roles(*CLINICIANS))
def create(request: HttpRequest, body: SessionIn) -> Status[dict[str, Any]]:
    from ketaclinic.accounts.models import Chair

    try:
        patient = patients.get_patient(
            user=request.user,
            patient_id=body.patient_id,
            request=request,  # type: ignore[arg-type]
            purpose="api schedule",
        )
    except (patients.PatientNotFound, patients.OutsideYourSites):
        raise HttpError(404, "No such patient.") from None
    chair = Chair.objects.filter(pk=body.chair_id, site=patient.site).first() if body.chair_id else None
    try:
        session = services.schedule_session(
            user=request.user,
            patient=patient,
            protocol_id=body.protocol_id,  # type: ignore[arg-type]
            scheduled_at=body.scheduled_at,
            planned_dose_mg=body.planned_dose_mg,
            chair=chair,
            chair_override_reason=body.chair_override_reason,
            request=request,
        )
    except services.SessionError as exc:
        _raise(exc)
    return Status(201, _out(session))


@router.get("/{session_id}", response=SessionOut, auth=api_roles(*CLINICIANS))
def read(request: HttpRequest, session_id: UUID) -> dict[str, Any]:
    return _out(_session(request, session_id, "api read"))


@router.post("/{session_id}/transition", response=SessionOut, auth=api_roles(*CLINICIANS))
def move(request: HttpRequest, session_id: UUID, body: TransitionIn) -> dict[str, Any]:
    session = _session(request, session_id, "api transition")
    try:
        services.transition(
            user=request.user,
            session=session,
            to=body.to,
            expected_version=body.version,  # type: ignore[arg-type]
            reason=body.reason,
            request=request,
        )
    except services.SessionError as exc:
        _raise(exc)
    return _out(session)


@router.post(
    "/{session_id}/observations", response={201: BatchOut, 200: BatchOut}, auth=api_roles(*CLINICIANS)
)
def observations(
    request: HttpRequest,
    session_id: UUID,
    body: BatchIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Status[dict[str, Any]]:
    """Post readings in a batch. Resending the same idempotency key stores nothing twice (200, duplicate=true)."""
    session = _session(request, session_id, "api observations")
    key = (idempotency_key or body.idempotency_key or "").strip()
    readings = [
        VitalReading(taken_at=r.observed_at, **r.model_dump(exclude={"observed_at"})) for r in body.readings
    ]
    try:
        batch, created = services.ingest_batch(
            user=request.user,
            session=session,
            key=key,
            readings=readings,  # type: ignore[arg-type]
            request=request,
        )
    except services.SessionError as exc:
        _raise(exc)
    return Status(
        201 if created else 200, {"batch": batch.key, "stored": batch.count, "duplicate": not created}
    )


@router.post("/{session_id}/administrations", response={201: dict[str, Any]}, auth=api_roles(*CLINICIANS))
def administer(request: HttpRequest, session_id: UUID, body: AdministrationIn) -> Status[dict[str, Any]]:
    from ketaclinic.accounts.models import User

    session = _session(request, session_id, "api administration")
    verifier = (
        User.objects.filter(pk=body.verified_by, organization_id=session.organization_id).first()
        if body.verified_by
        else None
    )
    try:
        admin = services.record_administration(
            user=request.user,
            session=session,
            kind=body.kind,
            at=body.at,
            product=body.product,  # type: ignore[arg-type]
            concentration_mg_ml=body.concentration_mg_ml,
            lot=body.lot,
            expiry=body.expiry,
            dose_mg=body.dose_mg,
            rate_ml_per_h=body.rate_ml_per_h,
            verified_by=verifier,
            note=body.note,
            request=request,
        )
    except services.SessionError as exc:
        _raise(exc)
    return Status(
        201, {"id": str(admin.pk), "kind": admin.kind, "warning": admin.warning, "status": session.status}
    )


@router.post(
    "/{session_id}/alerts/{alert_id}/acknowledge", response=dict[str, Any], auth=api_roles(*CLINICIANS)
)
def acknowledge(request: HttpRequest, session_id: UUID, alert_id: int, body: AcknowledgeIn) -> dict[str, Any]:
    _session(request, session_id, "api acknowledge")
    try:
        alert = services.acknowledge_alert(
            user=request.user, alert_id=alert_id, note=body.note, request=request
        )  # type: ignore[arg-type]
    except services.SessionError as exc:
        _raise(exc)
    return {
        "id": alert.pk,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
    }
