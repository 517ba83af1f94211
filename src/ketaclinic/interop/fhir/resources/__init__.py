"""The resource types this server offers, in CapabilityStatement order.

Only types backed by a table are listed. Condition, MedicationAdministration, Encounter, CarePlan,
AdverseEvent and Consent join here (one module each, see ``base.py``) once their tables exist.
"""

from __future__ import annotations

from ketaclinic.interop.fhir.resources.base import ResourceType
from ketaclinic.interop.fhir.resources.observation import OBSERVATION
from ketaclinic.interop.fhir.resources.patient import PATIENT
from ketaclinic.interop.fhir.resources.questionnaire_response import QUESTIONNAIRE_RESPONSE

REGISTRY: dict[str, ResourceType] = {rt.name: rt for rt in (PATIENT, OBSERVATION, QUESTIONNAIRE_RESPONSE)}

__all__ = ["REGISTRY", "ResourceType"]
