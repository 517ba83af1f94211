"""The resource types this server offers, in CapabilityStatement order.

Only types backed by a table are listed; a new type is one module (see ``base.py``) and one entry here.
"""

from __future__ import annotations

from ketaclinic.interop.fhir.params import Include, ParamType
from ketaclinic.interop.fhir.resources.adverse_event import ADVERSE_EVENT
from ketaclinic.interop.fhir.resources.base import ResourceType
from ketaclinic.interop.fhir.resources.care_plan import CARE_PLAN
from ketaclinic.interop.fhir.resources.condition import CONDITION
from ketaclinic.interop.fhir.resources.consent import CONSENT
from ketaclinic.interop.fhir.resources.device import DEVICE
from ketaclinic.interop.fhir.resources.encounter import ENCOUNTER
from ketaclinic.interop.fhir.resources.medication_administration import MEDICATION_ADMINISTRATION
from ketaclinic.interop.fhir.resources.observation import OBSERVATION
from ketaclinic.interop.fhir.resources.patient import PATIENT
from ketaclinic.interop.fhir.resources.questionnaire import QUESTIONNAIRE
from ketaclinic.interop.fhir.resources.questionnaire_response import QUESTIONNAIRE_RESPONSE

REGISTRY: dict[str, ResourceType] = {
    rt.name: rt
    for rt in (
        PATIENT,
        CONDITION,
        OBSERVATION,
        QUESTIONNAIRE_RESPONSE,
        MEDICATION_ADMINISTRATION,
        ENCOUNTER,
        CARE_PLAN,
        ADVERSE_EVENT,
        CONSENT,
        QUESTIONNAIRE,
        DEVICE,
    )
}


def include_options(rtype: ResourceType) -> list[Include]:
    """The _include values of ``rtype`` (its reference parameters) and its _revinclude values (every
    type's reference parameters that point to it)."""
    forward = [
        Include(rtype.name, name, reverse=False)
        for name, p in rtype.params.items()
        if p.type is ParamType.REFERENCE and p.path
    ]
    backward = [
        Include(other.name, name, reverse=True)
        for other in REGISTRY.values()
        for name, p in other.params.items()
        if p.type is ParamType.REFERENCE and p.path and p.target == rtype.name
    ]
    return forward + backward


__all__ = ["REGISTRY", "ResourceType", "include_options"]
