"""Questionnaire: the rating scales themselves (``clinical.instruments``), served read-only so that every
``QuestionnaireResponse.questionnaire`` resolves on this server (interop.md §1.6).

One Questionnaire per instrument, id = the instrument code (``phq9``, ``gad7``, ``madrs``, ``cadss`` …),
``url`` = the canonical ``codes.questionnaire_url(code)`` (``https://ketaclinic.org/fhir/Questionnaire/phq9``)
and ``version`` = the definition's version, so the canonical ``<url>|<version>`` a QuestionnaireResponse
names is found by ``GET Questionnaire/<code>`` (the canonical's last two segments) or by
``GET Questionnaire?url=<url>``. Only the current version of each definition is served; a response recorded
under an older version names that version in its canonical.

Codes (interop.md §1.6): ``code`` is the panel LOINC where the reference gives one (PHQ-9 44249-1, GAD-7
69737-5, PCL-5); an item with a LOINC code (PHQ-9 44250-9 … 44260-8, GAD-7 69725-0 … 69736-7) has that code
as its ``code`` *and* its ``linkId``, so a QuestionnaireResponse's items are identified by LOINC; other items
(MADRS, CADSS, … which have no LOINC, interop.md §1.6 ⚠) keep the instrument's item id as ``linkId``.
An item whose answers all carry LOINC answer codes (PHQ-9: LA6568-5, LA6569-3, LA6570-1, LA6571-9 — the US
Core example confirms the first three) is a ``choice`` with those codings as ``answerOption`` and the score
as their ``ordinalValue``; any other item is an ``integer`` between its low and high value
(``minValue``/``maxValue``); where those items share answer labels without codes (GAD-7: the reference gives
no LOINC answer codes for it), a first ``display`` item (linkId ``answers``) states them. ``text`` is the published wording where the definition stores it (PHQ-9, GAD-7), else the
item's short title. Skip logic (C-SSRS) is ``enableWhen``.

No patient compartment: any token whose scopes cover Questionnaire (``system/*.rs``, ``user/*.rs``,
``patient/*.rs`` or ``…/Questionnaire.rs``) reads every definition; the definitions hold no patient data, so
the compartment is not applied (``ResourceType.definitions``; services.py). They are not part of
``$everything`` or a bulk export, which carry patient data.
"""

from __future__ import annotations

import re
from typing import Any

from ketaclinic.clinical.instruments import INSTRUMENTS, Instrument, Item
from ketaclinic.clinical.instruments.model import ResponseOption
from ketaclinic.core.access import STAFF_ROLES
from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import ParamDef, ResourceType, token_matches


def link_id(item: Item) -> str:
    """The item's linkId: its LOINC code where it has one, else the instrument's item id."""
    return item.loinc.code if item.loinc is not None else item.id


def coded_answers(item: Item) -> bool:
    """Every answer of the item has a LOINC answer code (the item is a ``choice``)."""
    return bool(item.options) and all(o.loinc_answer is not None for o in item.options)


def answer(item: Item | None, value: int) -> dict[str, Any]:
    """A QuestionnaireResponse answer: the LOINC answer coding of ``value`` where the item has one, else
    ``valueInteger``."""
    if item is not None and coded_answers(item):
        for option in item.options:
            if option.value == value and option.loinc_answer is not None:
                return {"valueCoding": _answer_coding(option.loinc_answer.code, option.label)}
    return {"valueInteger": int(value)}


def _answer_coding(code: str, display: str) -> dict[str, Any]:
    return {"system": codes.LOINC, "code": code, "display": display}


def _option(option: ResponseOption) -> dict[str, Any]:
    """A coded answer option with its score as ``ordinalValue``."""
    assert option.loinc_answer is not None  # only items whose options are all coded are choices
    coding = _answer_coding(option.loinc_answer.code, option.label)
    coding["extension"] = [{"url": codes.ORDINAL_VALUE_EXTENSION, "valueDecimal": option.value}]
    return {"valueCoding": coding}


def _item(instrument: Instrument, item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {"linkId": link_id(item), "text": item.text or item.title}
    if item.loinc is not None:
        coding = {"system": codes.LOINC, "code": item.loinc.code}
        if item.loinc.display:
            coding["display"] = item.loinc.display
        entry["code"] = [coding]
    if coded_answers(item):
        entry["type"] = "choice"
        entry["answerOption"] = [_option(o) for o in item.options]
    else:
        entry["type"] = "integer"
        entry["extension"] = [
            {"url": codes.MIN_VALUE_EXTENSION, "valueInteger": item.low},
            {"url": codes.MAX_VALUE_EXTENSION, "valueInteger": item.high},
        ]
    entry["required"] = item.asked_if is None
    if item.asked_if is not None:
        other_id, value = item.asked_if
        other = instrument.item(other_id)
        condition: dict[str, Any] = {"question": link_id(other), "operator": "="}
        condition.update({f"answer{k[len('value') :]}": v for k, v in answer(other, value).items()})
        entry["enableWhen"] = [condition]
    return entry


def _legend(item: Item) -> str:
    return "; ".join(f"{o.value} = {o.label}" for o in item.options)


def to_fhir(instrument: Instrument) -> dict[str, Any]:
    items = [_item(instrument, item) for item in instrument.items]
    labelled = [i for i in instrument.items if i.options and not coded_answers(i)]
    if labelled and all(_legend(i) == _legend(labelled[0]) for i in labelled):
        items.insert(0, {"linkId": "answers", "text": f"Answers: {_legend(labelled[0])}", "type": "display"})
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.code,
        "url": codes.questionnaire_url(instrument.code),
        "version": instrument.version,
        "name": re.sub(r"[^A-Za-z0-9]", "", instrument.name.title()) or instrument.code.upper(),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "ketaclinic",
        "description": f"{instrument.form}. Source of the definition: {instrument.source}.",
        "item": items,
    }
    if instrument.loinc_panel is not None:
        panel = {"system": codes.LOINC, "code": instrument.loinc_panel.code}
        if instrument.loinc_panel.display:
            panel["display"] = instrument.loinc_panel.display
        resource["code"] = [panel]
    return resource


DEFINITIONS: tuple[dict[str, Any], ...] = tuple(to_fhir(i) for i in INSTRUMENTS.values())


PUBLICATION_STATUS = "http://hl7.org/fhir/publication-status"


def definitions() -> tuple[dict[str, Any], ...]:
    return DEFINITIONS


def matches(resource: dict[str, Any], flt: Filter) -> bool:
    """Does ``resource`` match one search filter (its values OR-ed)?"""
    if flt.name == "url":
        return any(str(v).split("|", 1)[0] == resource["url"] for v in flt.values)
    tokens = [v for v in flt.values if isinstance(v, Token)]
    if flt.name == "_id":
        return any(t.code == resource["id"] for t in tokens)
    if flt.name == "code":
        pairs = [(c["system"], c["code"]) for c in resource.get("code", [])]
        pairs += [(c["system"], c["code"]) for i in resource["item"] for c in i.get("code", [])]
        return any(token_matches(t, s, c) for t in tokens for s, c in pairs)
    if flt.name == "version":
        return any(t.code == resource["version"] for t in tokens)
    if flt.name == "status":  # R4 publication-status; system| and |code forms as for any token
        return any(token_matches(t, PUBLICATION_STATUS, resource["status"]) for t in tokens)
    return False


QUESTIONNAIRE = ResourceType(
    name="Questionnaire",
    sources=(),
    params={
        "_id": ParamDef(ParamType.TOKEN, "The instrument code, e.g. phq9."),
        "url": ParamDef(ParamType.URI, f"The canonical URL, e.g. {codes.questionnaire_url('phq9')}."),
        "code": ParamDef(
            ParamType.TOKEN, "A LOINC code of the form or of one of its items, e.g. http://loinc.org|44249-1."
        ),
        "version": ParamDef(ParamType.TOKEN, "The definition's version."),
        "status": ParamDef(ParamType.TOKEN, "Always active."),
    },
    sort_keys=("_id",),
    documentation=(
        "The rating scales (PHQ-9, GAD-7 with LOINC item codes; MADRS, CADSS and the others with local item "
        "ids), read-only definitions with no patient data: every QuestionnaireResponse.questionnaire resolves "
        "here."
    ),
    user_roles=STAFF_ROLES,
    definitions=definitions,
    matches=matches,
)
