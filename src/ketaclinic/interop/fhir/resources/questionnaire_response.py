"""QuestionnaireResponse: the answers of one rating-scale administration (interop.md §1.6).

``questionnaire`` is the local canonical ``<QUESTIONNAIRE_BASE>/<instrument>|<definition version>``
(interop.md §1.6: "local CodeSystem + canonical Questionnaire URL"). Each answer is the item's stored
value as ``valueInteger``, ``linkId`` = the item id, ``text`` = the item's short title (the published
wording is not re-emitted).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    instant,
)
from ketaclinic.measures.models import ScaleAdministration


class ScaleAnswersSource(Source):
    model = ScaleAdministration
    updated_field = "created_at"
    date_fields = {"authored": "administered_at"}
    sort_fields = {"_id": "pk", "_lastUpdated": "created_at", "authored": "administered_at"}

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        if flt.name == "questionnaire":
            wanted = {str(v).split("|", 1)[0] for v in flt.values}
            return qs.filter(instrument__in=[c for c in INSTRUMENTS if codes.questionnaire_url(c) in wanted])
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        a: Any = obj  # ScaleAdministration
        instrument = INSTRUMENTS.get(a.instrument)
        order = {item.id: n for n, item in enumerate(instrument.items)} if instrument else {}
        items = []
        for item_id, value in sorted(a.answers.items(), key=lambda kv: (order.get(kv[0], 999), kv[0])):
            entry: dict[str, Any] = {"linkId": str(item_id), "answer": [{"valueInteger": int(value)}]}
            if instrument is not None and item_id in order:
                entry["text"] = instrument.item(item_id).title
            items.append(entry)
        resource: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse",
            "id": self.fhir_id(a),
            "meta": {"lastUpdated": instant(a.created_at)},
            "questionnaire": f"{codes.questionnaire_url(a.instrument)}|{a.instrument_version}",
            "status": "completed",
            "subject": {"reference": f"Patient/{a.patient_id}"},
            "authored": instant(a.administered_at),
            "item": items,
        }
        if a.entered_by_kind == "patient":
            resource["source"] = {"reference": f"Patient/{a.patient_id}"}
        return resource


QUESTIONNAIRE_RESPONSE = ResourceType(
    name="QuestionnaireResponse",
    sources=(ScaleAnswersSource(),),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "authored": ParamDef(ParamType.DATE, "When the answers were given (prefixes eq, ge, le, gt, lt)."),
        "questionnaire": ParamDef(
            ParamType.URI, f"The rating scale's canonical URL, e.g. {codes.questionnaire_url('phq9')}."
        ),
    },
    sort_keys=("_id", "_lastUpdated", "authored"),
    documentation="Answers to rating scales (one per administration).",
)
