"""MedicationAdministration (R4) from dose events (``chairside.Administration``; interop.md §1.4).

R4 elements: ``context`` → the session's Encounter, ``effective[x]`` (not R5's ``encounter``/``occurence``).

* A nasal device, an IM injection or a sublingual dose is one resource with ``effectiveDateTime`` and
  ``dosage.dose`` in mg.
* An infusion is a run of segments at a constant rate: the start and every rate change are each one
  resource with ``effectivePeriod`` from its time to the next rate change or the stop, and
  ``dosage.rateQuantity`` in ``mL/h`` (the rate in mg/h, when recorded, is in ``dosage.text``). Rate
  changes are ``partOf`` the start. The stop row is the end of the last segment, not a resource of its own.
  A segment with no end yet is ``in-progress`` while the session is active, ``stopped`` if the session was
  stopped, else ``completed``.

``medicationCodeableConcept``: the product as text, a local drug code (``codes.DRUG_SYSTEM``) and, for
esketamine only, the RxNorm codes interop.md §1.3 marks ✓ (SCDF 2201623 *esketamine Nasal Spray*, SBDF
2201625 *esketamine Nasal Spray [Spravato]*). Racemic ketamine gets no RxCUI: 6130 is ⚠ unconfirmed there,
and interop.md says never to hard-code unverified RxCUIs. ``dosage.route`` is the SNOMED CT route of
interop.md §1.4. ``performer``: who gave the dose (function ``performer``) and, for IV/IM, who verified it
(``verifier``), by display.

Administrations are never edited: ``meta.lastUpdated`` (``_lastUpdated``, ``_since``) is the entry time
(``recorded_at``), so a dose charted late for an earlier time is still found by an incremental export.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, When

from ketaclinic.chairside.models import ACTIVE_STATUSES, Administration, Status
from ketaclinic.chairside.models import AdministrationKind as Kind
from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    DateSpan,
    ParamDef,
    ResourceType,
    Source,
    any_of,
    instant,
    matching_codes,
    token_matches,
)

# interop.md §1.4 (SNOMED CT route codes, ✓)
ROUTES: dict[str, tuple[str, str]] = {
    "iv": ("47625008", "Intravenous route"),
    "im": ("78421000", "Intramuscular route"),
    "intranasal": ("46713006", "Nasal route"),
    "sublingual": ("37839007", "Sublingual route"),
}
# interop.md §1.3 (RxNorm, ✓ only)
RXNORM_CODES: dict[str, tuple[tuple[str, str], ...]] = {
    "esketamine": (
        ("2201623", "esketamine Nasal Spray"),
        ("2201625", "esketamine Nasal Spray [Spravato]"),
    ),
}
DRUG_DISPLAY: dict[str, str] = {
    "ketamine": "Ketamine (racemic)",
    "esketamine": "Esketamine",
}
INFUSION = (Kind.INFUSION_START, Kind.RATE_CHANGE)
# FHIR status -> the rows that have it (the same rule as ``AdministrationSource.status``)
_OPEN_SEGMENT = Q(kind__in=INFUSION, segment_end__isnull=True)
STATUS_ROWS: dict[str, Q] = {
    "in-progress": _OPEN_SEGMENT & Q(session__status__in=ACTIVE_STATUSES),
    "stopped": _OPEN_SEGMENT & Q(session__status=Status.STOPPED),
    "completed": ~_OPEN_SEGMENT | Q(session__status=Status.DISCHARGED),
}


def medication_codings(drug: str) -> list[dict[str, str]]:
    codings = [{"system": codes.RXNORM, "code": c, "display": d} for c, d in RXNORM_CODES.get(drug, ())]
    codings.append({"system": codes.DRUG_SYSTEM, "code": drug, "display": DRUG_DISPLAY.get(drug, drug)})
    return codings


def _mg(value: Any) -> dict[str, Any]:
    return {"value": float(value), "unit": "mg", "system": codes.UCUM, "code": "mg"}


def _number(value: Any) -> str:
    return f"{value.normalize():f}" if value is not None else ""


class AdministrationSource(Source):
    model = Administration
    patient_field = "session__patient_id"
    updated_field = "recorded_at"  # never edited: the entry is the last change
    # effective[x]: a point for a single dose, the segment's period for an infusion (open while running)
    date_fields = {"effective-time": DateSpan("at", "effective_end")}
    sort_fields = {"_id": "pk", "_lastUpdated": "recorded_at", "effective-time": "at"}
    reference_fields = {"context": "session_id"}
    created_field = "recorded_at"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        later = Administration.objects.filter(
            session=OuterRef("session"),
            kind__in=[Kind.RATE_CHANGE, Kind.INFUSION_STOP],
            at__gt=OuterRef("at"),
        ).order_by("at", "pk")
        start = Administration.objects.filter(session=OuterRef("session"), kind=Kind.INFUSION_START)
        return (
            Administration.objects.filter(organization_id=organization_id)
            .exclude(kind=Kind.INFUSION_STOP)
            .select_related("session", "given_by", "verified_by")
            .annotate(
                segment_end=Subquery(later.values("at")[:1]),
                infusion_start=Subquery(start.order_by("at", "pk").values("pk")[:1]),
            )
            .annotate(effective_end=Case(When(kind__in=INFUSION, then=F("segment_end")), default=F("at")))
        )

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "code":
            drugs = [
                drug
                for drug in DRUG_DISPLAY
                if any(
                    token_matches(t, c["system"], c["code"]) for t in tokens for c in medication_codings(drug)
                )
            ]
            return qs.filter(drug__in=drugs)
        if flt.name == "status":
            wanted = [STATUS_ROWS[c] for c in matching_codes(tokens, codes.MED_ADMIN_STATUS, STATUS_ROWS)]
            return qs.filter(any_of(wanted))
        return qs.none()

    def status(self, a: Any) -> str:
        if a.kind not in INFUSION or a.segment_end is not None:
            return "completed"
        if a.session.status in ACTIVE_STATUSES:
            return "in-progress"
        return "stopped" if a.session.status == Status.STOPPED else "completed"

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        a: Any = obj  # Administration annotated by queryset()
        route_code, route_display = ROUTES[a.session.route]
        product = a.product or DRUG_DISPLAY.get(a.drug, a.drug)
        strength = f"{_number(a.concentration_mg_ml)} mg/mL" if a.concentration_mg_ml is not None else ""
        if strength and strength not in product:  # a stock lot's product usually names its strength already
            product = f"{product} {strength}"
        dosage: dict[str, Any] = {
            "route": {
                "coding": [{"system": codes.SNOMED, "code": route_code, "display": route_display}],
                "text": a.session.get_route_display(),
            }
        }
        text = [a.get_kind_display()]
        if a.device_number is not None:
            text.append(f"device {a.device_number}")
        if a.dose_mg is not None:
            dosage["dose"] = _mg(a.dose_mg)
            text.append(f"{_number(a.dose_mg)} mg")
        if a.rate_ml_per_h is not None:
            dosage["rateQuantity"] = {
                "value": float(a.rate_ml_per_h),
                "unit": "mL/h",
                "system": codes.UCUM,
                "code": "mL/h",
            }
            text.append(f"{_number(a.rate_ml_per_h)} mL/h")
        if a.rate_mg_per_h is not None:
            text.append(f"{_number(a.rate_mg_per_h)} mg/h")
        dosage["text"] = ", ".join(text)
        performers = [{"function": _function("performer"), "actor": {"display": a.given_by.display_name}}]
        if a.verified_by is not None:
            performers.append(
                {"function": _function("verifier"), "actor": {"display": a.verified_by.display_name}}
            )
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": str(a.pk),
            "meta": {"lastUpdated": instant(a.recorded_at)},
            "status": self.status(a),
            "medicationCodeableConcept": {"coding": medication_codings(a.drug), "text": product},
            "subject": {"reference": f"Patient/{a.session.patient_id}"},
            "context": {"reference": f"Encounter/{a.session_id}"},
            "performer": performers,
            "dosage": dosage,
        }
        if a.kind in INFUSION:
            period = {"start": instant(a.at)}
            if a.segment_end is not None:
                period["end"] = instant(a.segment_end)
            resource["effectivePeriod"] = period
            if a.kind == Kind.RATE_CHANGE and a.infusion_start is not None:
                resource["partOf"] = [{"reference": f"MedicationAdministration/{a.infusion_start}"}]
        else:
            resource["effectiveDateTime"] = instant(a.at)
        notes = [n for n in (a.warning, a.note) if n]
        if notes:
            resource["note"] = [{"text": n} for n in notes]
        return resource


def _function(code: str) -> dict[str, Any]:
    return {"coding": [{"system": codes.MED_ADMIN_PERFORM_FUNCTION, "code": code, "display": code.title()}]}


MEDICATION_ADMINISTRATION = ResourceType(
    name="MedicationAdministration",
    sources=(AdministrationSource(),),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "code": ParamDef(
            ParamType.TOKEN,
            f"The drug: {codes.RXNORM}|2201623 (esketamine) or {codes.DRUG_SYSTEM}|ketamine / |esketamine.",
        ),
        "effective-time": ParamDef(
            ParamType.DATE,
            "When the dose was given, or the infusion segment's period (open while it runs); R4 matching.",
        ),
        "context": ParamDef(
            ParamType.REFERENCE, "The session's Encounter: Encounter/<id>.", "Encounter", "context"
        ),
        "status": ParamDef(ParamType.TOKEN, "completed, in-progress or stopped."),
    },
    sort_keys=("_id", "_lastUpdated", "effective-time"),
    documentation=(
        "Doses given during treatment sessions: nasal devices, injections, sublingual doses, and infusion "
        "segments at a constant rate."
    ),
)
