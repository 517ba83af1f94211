"""Observation: rating-scale total scores and the chairside readings (vital signs, MOAA/S, CADSS).

Score pattern (interop.md §1.6, US Core 6+): category ``survey``, code = the total-score LOINC where the
reference gives one (PHQ-9 44261-6, GAD-7 70274-6, PCL-5 101698-9) plus always the local code
``<instrument>-total`` in ``codes.INSTRUMENT_SYSTEM``; ``valueQuantity`` in UCUM ``{score}``;
``derivedFrom`` the QuestionnaireResponse holding the answers. Instruments without a total (C-SSRS
screener, BPI-SF) yield no score Observation; their answers are in the QuestionnaireResponse.

Chairside readings (interop.md §1.5): one source per measurement kind (resources/vital_signs.py, ids
``vs-<uuid>-<kind>``), each answering ``code`` and ``category`` for its own rows; monitor readings
(resources/monitor_readings.py, ids ``mon-<id>``); search, paging, ``$everything`` and ``$export`` merge
them with the scores in sort order (tests/fhir/test_vital_signs.py, test_device_data.py).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    instant,
    token_matches,
)
from ketaclinic.interop.fhir.resources.monitor_readings import MONITOR_READINGS
from ketaclinic.interop.fhir.resources.vital_signs import READING_SOURCES
from ketaclinic.measures.models import ScaleAdministration

SURVEY = codes.SURVEY


def _instruments_for(tokens: list[Token]) -> set[str]:
    found: set[str] = set()
    for instrument in codes.instruments_with_total():
        for coding in codes.total_codings(instrument):
            if any(token_matches(t, coding["system"], coding["code"]) for t in tokens):
                found.add(instrument.code)
    return found


class ScaleScoreSource(Source):
    """Total scores of ScaleAdministration rows (ids ``score-<administration uuid>``)."""

    model = ScaleAdministration
    prefix = "score"
    updated_field = "created_at"  # administrations are never edited
    date_fields = {"date": "administered_at"}
    sort_fields = {"_id": "pk", "_lastUpdated": "created_at", "date": "administered_at"}
    reference_fields = {"derived-from": "pk"}  # the QuestionnaireResponse shares the administration's id
    created_field = "created_at"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return ScaleAdministration.objects.filter(organization_id=organization_id, total__isnull=False)

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "code":
            return qs.filter(instrument__in=_instruments_for(tokens))
        if flt.name == "category":
            if any(token_matches(t, codes.OBSERVATION_CATEGORY, SURVEY) for t in tokens):
                return qs
            return qs.none()
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        a: Any = obj  # ScaleAdministration
        instrument = INSTRUMENTS.get(a.instrument)
        coding = (
            codes.total_codings(instrument)
            if instrument is not None
            else [{"system": codes.INSTRUMENT_SYSTEM, "code": codes.total_code(a.instrument)}]
        )
        name = instrument.name if instrument is not None else a.instrument
        total = a.total if a.total is not None else 0.0
        value: int | float = int(total) if float(total).is_integer() else total
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self.fhir_id(a),
            "meta": {"lastUpdated": instant(a.created_at), "profile": [profiles.SCREENING_ASSESSMENT]},
            "status": "final",
            "category": [
                {"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": SURVEY, "display": "Survey"}]}
            ],
            "code": {"coding": coding, "text": f"{name} total score"},
            "subject": {"reference": f"Patient/{a.patient_id}"},
            "effectiveDateTime": instant(a.administered_at),
            "issued": instant(a.created_at),
            "valueQuantity": {"value": value, "unit": "{score}", "system": codes.UCUM, "code": "{score}"},
            "derivedFrom": [{"reference": f"QuestionnaireResponse/{a.pk}"}],
        }
        if a.band:
            resource["interpretation"] = [{"text": a.band}]
        if a.entered_by_kind == "patient":
            resource["performer"] = [{"reference": f"Patient/{a.patient_id}"}]
        return resource


OBSERVATION = ResourceType(
    name="Observation",
    sources=(ScaleScoreSource(), *READING_SOURCES, MONITOR_READINGS),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "code": ParamDef(ParamType.TOKEN, "What was observed: system|code (e.g. http://loinc.org|44261-6)."),
        "date": ParamDef(
            ParamType.DATE, "When it was observed (prefixes eq, ne, ge, le, gt, lt, sa, eb, ap)."
        ),
        "encounter": ParamDef(
            ParamType.REFERENCE,
            "The session of a chairside reading: Encounter/<id>.",
            "Encounter",
            "encounter",
        ),
        "derived-from": ParamDef(
            ParamType.REFERENCE,
            "The answers a score was computed from: QuestionnaireResponse/<id>.",
            "QuestionnaireResponse",
            "derivedFrom",
        ),
        "category": ParamDef(
            ParamType.TOKEN,
            "Category: vital-signs (chairside and monitor readings) or survey (scale scores, MOAA/S, CADSS).",
        ),
        "component-code": ParamDef(
            ParamType.TOKEN,
            "A component's code: the blood-pressure panel's 8480-6, 8462-4 and (monitor panels) 8478-0.",
        ),
        "combo-code": ParamDef(
            ParamType.TOKEN,
            "The code or a component's code (e.g. http://loinc.org|8478-0: every mean pressure).",
        ),
        "device": ParamDef(
            ParamType.REFERENCE, "The monitor that measured it: Device/<id>.", "Device", "device"
        ),
    },
    sort_keys=("_id", "_lastUpdated", "date"),
    documentation=(
        "Rating-scale total scores and chairside MOAA/S and CADSS (category survey); chairside vital signs "
        "(category vital-signs: BP panel, heart rate, SpO2, respiratory rate, temperature); every value a "
        "bedside monitor sent, at full precision, with its Device (ids mon-<id>: BP panel with the mean "
        "pressure, heart and pulse rate, SpO2, perfusion index and the other MDC-coded values)."
    ),
)
