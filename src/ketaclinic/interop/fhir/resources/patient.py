"""Patient (interop.md §1.1: US Core Patient; identifier = the clinic's MRN)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from ketaclinic.core.access import PATIENT_REGISTRY
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    any_of,
    instant,
)
from ketaclinic.patients.models import Patient


class PatientSource(Source):
    model = Patient
    patient_field = "pk"
    updated_field = "updated_at"
    date_fields = {"birthdate": "date_of_birth"}
    sort_fields = {"_id": "pk", "_lastUpdated": "updated_at", "birthdate": "date_of_birth"}

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return Patient.objects.filter(organization_id=organization_id).select_related("organization")

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "gender":
            return qs.filter(sex__in=[t.code for t in tokens if t.code])
        if flt.name == "identifier":
            parts: list[Q] = []
            for t in tokens:
                if t.system is not None and not t.system.startswith(f"{codes.LOCAL_BASE}/sid/mrn/"):
                    continue
                q = Q(mrn=t.code) if t.code else Q()
                if t.system:
                    q &= Q(organization__slug=t.system.rsplit("/", 1)[-1])
                parts.append(q)
            return qs.filter(any_of(parts))
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        p: Any = obj  # Patient
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": str(p.pk),
            "meta": {
                "versionId": str(p.version),
                "lastUpdated": instant(p.updated_at),
                "profile": [profiles.PATIENT],
            },
            "identifier": [
                {
                    "use": "usual",
                    "type": {
                        "coding": [
                            {
                                "system": codes.V2_IDENTIFIER_TYPE,
                                "code": "MR",
                                "display": "Medical record number",
                            }
                        ]
                    },
                    "system": codes.mrn_system(p.organization.slug),
                    "value": p.mrn,
                }
            ],
            "active": True,
            "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
            "gender": p.sex,
            "birthDate": p.date_of_birth.isoformat(),
            "managingOrganization": {"display": p.organization.name},
        }
        telecom = []
        if p.phone:
            telecom.append({"system": "phone", "value": p.phone})
        if p.email:
            telecom.append({"system": "email", "value": p.email})
        if telecom:
            resource["telecom"] = telecom
        if p.address:
            resource["address"] = [{"text": p.address}]
        if p.emergency_contact_name or p.emergency_contact_phone:
            contact: dict[str, Any] = {}
            if p.emergency_contact_relation:
                contact["relationship"] = [{"text": p.emergency_contact_relation}]
            if p.emergency_contact_name:
                contact["name"] = {"text": p.emergency_contact_name}
            if p.emergency_contact_phone:
                contact["telecom"] = [{"system": "phone", "value": p.emergency_contact_phone}]
            resource["contact"] = [contact]
        return resource


PATIENT = ResourceType(
    name="Patient",
    sources=(PatientSource(),),
    params={
        **COMMON_PARAMS,
        "identifier": ParamDef(ParamType.TOKEN, "Medical record number: <mrn system>|<mrn> or <mrn>."),
        "birthdate": ParamDef(ParamType.DATE, "Date of birth (prefixes eq, ge, le, gt, lt)."),
        "gender": ParamDef(ParamType.TOKEN, "Administrative gender: female, male, other, unknown."),
    },
    sort_keys=("_id", "_lastUpdated", "birthdate"),
    documentation="Patients registered at the organization's sites.",
    user_roles=PATIENT_REGISTRY,
)
