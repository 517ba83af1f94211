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
    matching_codes,
)
from ketaclinic.patients.matching import normalize, prefix_upper_bound
from ketaclinic.patients.models import Patient, Sex

# R4 string search on HumanName (search.html §3.1.1.4.13): family and given are matched on their normalized
# columns (patients.matching.normalize: lower case, accents and punctuation folded), so the default
# starts-with is an index range scan; :contains looks inside; :exact compares the stored text as written.
NAME_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("family", "given"),
    "family": ("family",),
    "given": ("given",),
}


def _starts_with(field: str, term: str) -> Q:
    upper = prefix_upper_bound(term)
    condition = Q(**{f"{field}__gte": term})
    return condition & Q(**{f"{field}__lt": upper}) if upper is not None else condition


def name_q(parts: tuple[str, ...], value: str, modifier: str) -> Q:
    """One value of name/family/given: ``modifier`` "" (starts with), "contains" or "exact"."""
    if modifier == "exact":
        return any_of([Q(**{f"{part}_name": value}) for part in parts])
    term = normalize(value)
    if not term:
        return Q(pk__in=[])
    if modifier == "contains":
        return any_of([Q(**{f"{part}_norm__contains": term}) for part in parts])
    return any_of([_starts_with(f"{part}_norm", term) for part in parts])


class PatientSource(Source):
    model = Patient
    patient_field = "pk"
    updated_field = "updated_at"
    date_fields = {"birthdate": "date_of_birth"}
    sort_fields = {"_id": "pk", "_lastUpdated": "updated_at", "birthdate": "date_of_birth"}
    created_field = "created_at"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return Patient.objects.filter(organization_id=organization_id).select_related("organization")

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        if flt.name in NAME_FIELDS:
            values = [v for v in flt.values if isinstance(v, str)]
            return qs.filter(any_of([name_q(NAME_FIELDS[flt.name], v, flt.modifier) for v in values]))
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "gender":  # R4 administrative-gender; our sex values are its codes
            return qs.filter(sex__in=matching_codes(tokens, codes.ADMINISTRATIVE_GENDER, Sex.values))
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
        "gender": ParamDef(
            ParamType.TOKEN,
            "Administrative gender (http://hl7.org/fhir/administrative-gender): female, male, other, unknown.",
        ),
        "name": ParamDef(
            ParamType.STRING,
            "Family or given name starts with (case and accents ignored); :contains, :exact.",
        ),
        "family": ParamDef(ParamType.STRING, "Family name starts with; :contains, :exact."),
        "given": ParamDef(ParamType.STRING, "Given name starts with; :contains, :exact."),
    },
    sort_keys=("_id", "_lastUpdated", "birthdate"),
    documentation="Patients registered at the organization's sites.",
    user_roles=PATIENT_REGISTRY,
)
