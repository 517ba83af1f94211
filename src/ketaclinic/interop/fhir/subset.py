"""``_summary`` and ``_elements`` (R4 search.html §3.1.1.5.8-9): subsets of a resource, tagged SUBSETTED.

Pure: no Django. The tables are the R4 base definitions' top-level elements marked "summary" (Σ) and the
mandatory ones (min 1), for the types this server serves (checked against fhir.resources' R4B models in
tests/fhir/test_params.py; R4B did not change them for these types). A choice element is written ``x[x]``
and covers every ``xType`` key. Subsetting works on top-level elements: a summary element is kept whole.

* ``_summary=true``: id, meta, implicitRules and the summary and mandatory elements;
* ``_summary=text``: id, meta, text and the mandatory elements;
* ``_summary=data``: everything but ``text``;
* ``_summary=false``: the whole resource; ``_summary=count``: no resources (services.py).
* ``_elements=a,b``: id, meta, the named elements and the mandatory ones (R4: servers SHOULD return
  mandatory elements, so a subset stays a valid resource); applied to the matches, not to included
  resources (R4 leaves that to the server).

A subset resource carries ``meta.tag`` SUBSETTED (v3-ObservationValue), as R4 asks, so a client never takes
it for the whole resource.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

SUBSETTED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
ALWAYS: Final = frozenset({"resourceType", "id", "meta", "implicitRules"})

SUMMARY: Final[Mapping[str, frozenset[str]]] = {
    "Patient": frozenset(
        {
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceased[x]",
            "address",
            "managingOrganization",
            "link",
        }
    ),
    "Observation": frozenset(
        {
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "code",
            "subject",
            "focus",
            "encounter",
            "effective[x]",
            "issued",
            "performer",
            "value[x]",
            "hasMember",
            "derivedFrom",
            "component",
        }
    ),
    "Encounter": frozenset(
        {
            "identifier",
            "status",
            "class",
            "type",
            "serviceType",
            "subject",
            "episodeOfCare",
            "participant",
            "appointment",
            "reasonCode",
            "reasonReference",
            "diagnosis",
        }
    ),
    "MedicationAdministration": frozenset(
        {"instantiates", "partOf", "status", "medication[x]", "subject", "effective[x]", "performer"}
    ),
    "Condition": frozenset(
        {
            "identifier",
            "clinicalStatus",
            "verificationStatus",
            "code",
            "bodySite",
            "subject",
            "encounter",
            "onset[x]",
            "recordedDate",
            "recorder",
            "asserter",
        }
    ),
    "CarePlan": frozenset(
        {
            "identifier",
            "instantiatesCanonical",
            "instantiatesUri",
            "basedOn",
            "replaces",
            "partOf",
            "status",
            "intent",
            "category",
            "title",
            "description",
            "subject",
            "encounter",
            "period",
            "created",
            "author",
            "addresses",
        }
    ),
    "AdverseEvent": frozenset(
        {
            "identifier",
            "actuality",
            "category",
            "event",
            "subject",
            "encounter",
            "date",
            "detected",
            "recordedDate",
            "resultingCondition",
            "location",
            "seriousness",
            "severity",
            "outcome",
            "recorder",
            "contributor",
            "suspectEntity",
            "subjectMedicalHistory",
            "referenceDocument",
            "study",
        }
    ),
    "Consent": frozenset(
        {
            "identifier",
            "status",
            "scope",
            "category",
            "patient",
            "dateTime",
            "performer",
            "organization",
            "source[x]",
            "policyRule",
            "verification",
            "provision",
        }
    ),
    "QuestionnaireResponse": frozenset(
        {
            "identifier",
            "basedOn",
            "partOf",
            "questionnaire",
            "status",
            "subject",
            "encounter",
            "authored",
            "author",
            "source",
        }
    ),
}
MANDATORY: Final[Mapping[str, frozenset[str]]] = {
    "Observation": frozenset({"status", "code"}),
    "Encounter": frozenset({"status", "class"}),
    "MedicationAdministration": frozenset({"status", "medication[x]", "subject", "effective[x]"}),
    "Condition": frozenset({"subject"}),
    "CarePlan": frozenset({"status", "intent", "subject"}),
    "AdverseEvent": frozenset({"actuality", "subject"}),
    "Consent": frozenset({"status", "scope", "category"}),
    "QuestionnaireResponse": frozenset({"status"}),
    "Questionnaire": frozenset({"status"}),
    "Device": frozenset(),
    "Patient": frozenset(),
}


def _covers(names: Iterable[str], key: str) -> bool:
    for name in names:
        if name == key:
            return True
        if name.endswith("[x]") and re.fullmatch(re.escape(name[:-3]) + r"[A-Z]\w*", key):
            return True
    return False


def _keep(resource: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    wanted = [*ALWAYS, *names]
    kept = {k: copy.deepcopy(v) for k, v in resource.items() if _covers(wanted, k)}
    if len(kept) == len(resource):
        return kept
    meta = kept.setdefault("meta", {})
    meta["tag"] = [*meta.get("tag", []), dict(SUBSETTED)]
    return kept


def summarize(resource: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """The resource as ``_summary=<mode>`` asks (``true``, ``text``, ``data``; ``false``/"" whole)."""
    rtype = resource.get("resourceType", "")
    mandatory = MANDATORY.get(rtype, frozenset())
    if mode == "true":
        if rtype not in SUMMARY:  # a type without a table: served whole rather than guessed at
            return dict(resource)
        return _keep(resource, SUMMARY[rtype] | mandatory)
    if mode == "text":
        return _keep(resource, {"text", *mandatory})
    if mode == "data":
        return _keep(resource, [k for k in resource if k != "text"])
    return dict(resource)


def elements(resource: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The resource with only ``names`` (top-level; ``value`` or ``value[x]`` names a choice) and the
    mandatory elements."""
    rtype = resource.get("resourceType", "")
    expanded = set(names) | {f"{n}[x]" for n in names if "[" not in n}
    return _keep(resource, expanded | MANDATORY.get(rtype, frozenset()))
