"""Patient registry API. Search is a POST so that names and birth dates never appear in URLs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from ketaclinic.accounts.models import Site, User
from ketaclinic.core.access import PATIENT_REGISTRY, signed_in_user
from ketaclinic.core.api import FieldErrors, api_roles
from ketaclinic.core.fields import Bounded, Code, Reason
from ketaclinic.patients import services
from ketaclinic.patients.models import Patient

router = Router(tags=["patients"])


class PatientOut(Schema):
    id: UUID
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    site: str
    phone: str
    email: str
    address: str
    emergency_contact_name: str
    emergency_contact_phone: str
    emergency_contact_relation: str
    escort_name: str
    escort_phone: str
    weight_kg: float | None
    height_cm: float | None
    bmi: float | None
    age_range_reason: str = Field(
        description="Why the clinic treats this patient outside its age range, if so"
    )
    version: int


class PatientIn(Schema):
    given_name: Annotated[str, Bounded(100)] = Field(min_length=1)
    family_name: Annotated[str, Bounded(100)] = Field(min_length=1)
    date_of_birth: date
    sex: Code
    mrn: Annotated[str, Bounded(40)] = ""
    site: Code | None = Field(default=None, description="Site code; defaults to your site")
    phone: Annotated[str, Bounded(40)] = ""
    email: Annotated[str, Bounded(254)] = ""
    address: Annotated[str, Bounded(300)] = ""
    emergency_contact_name: Annotated[str, Bounded(200)] = ""
    emergency_contact_phone: Annotated[str, Bounded(40)] = ""
    emergency_contact_relation: Annotated[str, Bounded(60)] = ""
    escort_name: Annotated[str, Bounded(200)] = ""
    escort_phone: Annotated[str, Bounded(40)] = ""
    weight_kg: float | None = None
    height_cm: float | None = None
    not_a_duplicate_reason: Reason = Field(
        default="",
        description="Needed only when a patient with the same date of birth and matching names exists: why "
        "this is a different person (otherwise 422 on this field, naming the patients you may open)",
    )
    outside_age_range_reason: Reason = Field(
        default="",
        description="Needed only when the patient is outside the clinic's age range (default 18 and over): why "
        "the clinic treats this patient (otherwise 422 on this field, naming the range)",
    )


class PatientPatch(Schema):
    version: int = Field(description="The version you read; a mismatch answers 409")
    not_a_duplicate_reason: Reason | None = Field(
        default=None,
        description="Needed only when a changed name or birth date matches another patient: why this is a "
        "different person (otherwise 422 on this field)",
    )
    outside_age_range_reason: Reason | None = Field(
        default=None,
        description="Needed only when a changed birth date is outside the clinic's age range (otherwise 422)",
    )
    given_name: Annotated[str, Bounded(100)] | None = None
    family_name: Annotated[str, Bounded(100)] | None = None
    date_of_birth: date | None = None
    sex: Code | None = None
    mrn: Annotated[str, Bounded(40)] | None = None
    site: Code | None = None
    phone: Annotated[str, Bounded(40)] | None = None
    email: Annotated[str, Bounded(254)] | None = None
    address: Annotated[str, Bounded(300)] | None = None
    emergency_contact_name: Annotated[str, Bounded(200)] | None = None
    emergency_contact_phone: Annotated[str, Bounded(40)] | None = None
    emergency_contact_relation: Annotated[str, Bounded(60)] | None = None
    escort_name: Annotated[str, Bounded(200)] | None = None
    escort_phone: Annotated[str, Bounded(40)] | None = None
    weight_kg: float | None = None
    height_cm: float | None = None


class SearchIn(Schema):
    name: Annotated[str, Bounded(200)] = ""
    mrn: Annotated[str, Bounded(40)] = ""
    date_of_birth: date | None = None
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=25, ge=1, le=100)


class SearchOut(Schema):
    total: int
    page: int
    pages: int
    patients: list[PatientOut]


def _out(patient: Patient) -> dict[str, Any]:
    size = services.body_size(patient)
    data = {name: getattr(patient, name) for name in PatientOut.model_fields if hasattr(patient, name)}
    data.update(
        site=patient.site.code,
        weight_kg=float(patient.weight_kg) if patient.weight_kg is not None else None,
        height_cm=float(patient.height_cm) if patient.height_cm is not None else None,
        bmi=round(size.bmi, 1) if size else None,
    )
    return data


def _site_ref(user: User, code: str | None) -> Site | None:
    if code is None:
        return None
    site = Site.objects.filter(organization_id=user.org_id, code=code).first()
    if site is None:
        raise FieldErrors({"site": f"{code!r} is not a site code of your organization"})
    return site


def _load(request: HttpRequest, patient_id: UUID) -> Patient:
    return services.get_patient(
        user=signed_in_user(request), patient_id=patient_id, request=request, purpose="api"
    )


@router.post("/search", response=SearchOut, auth=api_roles(*PATIENT_REGISTRY))
def search(request: HttpRequest, body: SearchIn) -> dict[str, Any]:
    page = services.search_patients(
        user=signed_in_user(request),
        name=body.name,
        mrn=body.mrn,
        date_of_birth=body.date_of_birth,
        page=body.page,
        page_size=body.page_size,
        request=request,
    )
    return {
        "total": page.total,
        "page": page.page,
        "pages": page.pages,
        "patients": [_out(p) for p in page.patients],
    }


@router.post("", response={201: PatientOut}, auth=api_roles(*PATIENT_REGISTRY))
def create(request: HttpRequest, body: PatientIn) -> Status[dict[str, Any]]:
    data = body.model_dump()
    reason = data.pop("not_a_duplicate_reason")
    age_reason = data.pop("outside_age_range_reason")
    user = signed_in_user(request)
    site = _site_ref(user, data.pop("site"))
    if site is not None:
        data["site"] = site
    patient = services.create_patient(
        user=user,
        data=data,
        not_a_duplicate_reason=reason,
        outside_age_range_reason=age_reason,
        request=request,
    )
    return Status(201, _out(patient))


@router.get("/{patient_id}", response=PatientOut, auth=api_roles(*PATIENT_REGISTRY))
def read(request: HttpRequest, patient_id: UUID) -> dict[str, Any]:
    return _out(_load(request, patient_id))


@router.patch("/{patient_id}", response={200: PatientOut}, auth=api_roles(*PATIENT_REGISTRY))
def update(request: HttpRequest, patient_id: UUID, body: PatientPatch) -> dict[str, Any]:
    patient = _load(request, patient_id)
    data = body.model_dump(exclude_unset=True)
    version = data.pop("version")
    reason = data.pop("not_a_duplicate_reason", "")
    age_reason = data.pop("outside_age_range_reason", "")
    user = signed_in_user(request)
    if "site" in data:
        data["site"] = _site_ref(user, data["site"])
    services.update_patient(
        user=user,
        patient=patient,
        data=data,
        expected_version=version,
        not_a_duplicate_reason=reason or "",
        outside_age_range_reason=age_reason or "",
        request=request,
    )
    return _out(patient)
