"""QuestionnaireResponse: the answers of one rating-scale administration (interop.md §1.6).

``questionnaire`` is the local canonical ``<QUESTIONNAIRE_BASE>/<instrument>|<definition version>``
(interop.md §1.6: "local CodeSystem + canonical Questionnaire URL"), served by this server as the
Questionnaire ``<instrument>`` (resources/questionnaire.py), with its name as the ``display`` extension.
Items follow that Questionnaire: ``linkId`` is the item's LOINC code where it has one (PHQ-9 44250-9 …,
GAD-7 69725-0 …; interop.md §1.6), else the instrument's item id; the answer is the LOINC answer coding where
the item has them (PHQ-9: LA6568-5 …), else the stored value as ``valueInteger``; ``text`` is the item's short
title (the published wording is in the Questionnaire). Profile: US Core QuestionnaireResponse (profiles.py).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.params import Filter, ParamType
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    instant,
)
from ketaclinic.interop.fhir.resources.questionnaire import answer, link_id
from ketaclinic.measures.models import ScaleAdministration


class ScaleAnswersSource(Source):
    model = ScaleAdministration
    updated_field = "created_at"
    date_fields = {"authored": "administered_at"}
    created_field = "created_at"
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
            item = instrument.item(item_id) if instrument is not None and item_id in order else None
            entry: dict[str, Any] = {
                "linkId": link_id(item) if item is not None else str(item_id),
                "answer": [answer(item, int(value))],
            }
            if item is not None:
                entry["text"] = item.title
            items.append(entry)
        resource: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse",
            "id": self.fhir_id(a),
            "meta": {"lastUpdated": instant(a.created_at), "profile": [profiles.QUESTIONNAIRE_RESPONSE]},
            "questionnaire": f"{codes.questionnaire_url(a.instrument)}|{a.instrument_version}",
            "_questionnaire": {
                "extension": [
                    {
                        "url": codes.DISPLAY_EXTENSION,
                        "valueString": instrument.name if instrument is not None else a.instrument,
                    }
                ]
            },
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
