"""The resource types this server offers, in CapabilityStatement order.

Only types backed by a table are listed; a new type is one module (see ``base.py``) and one entry here.
"""

from __future__ import annotations

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

__all__ = ["REGISTRY", "ResourceType"]
