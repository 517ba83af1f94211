"""The resource types this server offers, in CapabilityStatement order.

Only types backed by a table are listed. Condition and CarePlan join here (one module each, see
``base.py``) once their tables exist.
"""

from __future__ import annotations

from ketaclinic.interop.fhir.resources.adverse_event import ADVERSE_EVENT
from ketaclinic.interop.fhir.resources.base import ResourceType
from ketaclinic.interop.fhir.resources.consent import CONSENT
from ketaclinic.interop.fhir.resources.encounter import ENCOUNTER
from ketaclinic.interop.fhir.resources.medication_administration import MEDICATION_ADMINISTRATION
from ketaclinic.interop.fhir.resources.observation import OBSERVATION
from ketaclinic.interop.fhir.resources.patient import PATIENT
from ketaclinic.interop.fhir.resources.questionnaire_response import QUESTIONNAIRE_RESPONSE

REGISTRY: dict[str, ResourceType] = {
    rt.name: rt
    for rt in (
        PATIENT,
        OBSERVATION,
        QUESTIONNAIRE_RESPONSE,
        MEDICATION_ADMINISTRATION,
        ENCOUNTER,
        ADVERSE_EVENT,
        CONSENT,
    )
}

__all__ = ["REGISTRY", "ResourceType"]
