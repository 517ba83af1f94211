"""Code systems and canonical URLs the API emits (interop.md §1).

Standard systems where a code exists (LOINC for PHQ-9, GAD-7 and PCL-5 totals, interop.md §1.6); a local
code system with a canonical URL where none does (MADRS, CADSS, QIDS-SR16, YMRS… — interop.md §1.6 says
"use a local CodeSystem + canonical Questionnaire URL"). Local URLs live under ``LOCAL_BASE``.
"""

from __future__ import annotations

from typing import Final

from ketaclinic.clinical.instruments import INSTRUMENTS, Instrument

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS: Final = "vital-signs"
SURVEY: Final = "survey"
V2_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
SMART_CAPABILITIES: Final = "http://terminology.hl7.org/CodeSystem/restful-security-service"
SNOMED: Final = "http://snomed.info/sct"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ADMINISTRATIVE_GENDER: Final = "http://hl7.org/fhir/administrative-gender"
ENCOUNTER_STATUS: Final = "http://hl7.org/fhir/encounter-status"
MED_ADMIN_STATUS: Final = "http://terminology.hl7.org/CodeSystem/medication-admin-status"
MED_ADMIN_PERFORM_FUNCTION: Final = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
AE_SERIOUSNESS: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_SEVERITY: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_STATE: Final = "http://hl7.org/fhir/consent-state-codes"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER_STATUS: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
REQUEST_STATUS: Final = "http://hl7.org/fhir/request-status"
REQUEST_INTENT: Final = "http://hl7.org/fhir/request-intent"

LOCAL_BASE: Final = "https://ketaclinic.org/fhir"
# Local code system: "<instrument>-total" is the total score of a rating scale with no LOINC code.
INSTRUMENT_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/instrument"
QUESTIONNAIRE_BASE: Final = f"{LOCAL_BASE}/Questionnaire"
# Local code systems for clinic concepts without a confirmed standard code (interop.md §1.1, §1.3, §5):
# treatment protocols (Encounter.type), drugs without a confirmed RxCUI (racemic ketamine: RxCUI 6130 is
# ⚠ unconfirmed in interop.md §1.3, so it is never emitted), adverse-event terms (the label's terms;
# no MedDRA in the reference), and the consent category and policy (LOINC 59284-0 is ⚠ in interop.md §1.1).
PROTOCOL_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/protocol"
DRUG_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/drug"
ADVERSE_EVENT_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/adverse-event"
CONSENT_CATEGORY_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/consent-category"
CONSENT_POLICY_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/consent-policy"
# Indications with no confirmed pre-coordinated SNOMED CT concept (treatment-resistant depression,
# interop.md §1.2 ⚠): the local code is the indication's key with hyphens (``trd``).
CONDITION_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/condition"
# Identifier system of treatment sessions (Encounter.identifier; US Core Encounter must-support): the
# session's uuid, unique across organizations.
SESSION_SYSTEM: Final = f"{LOCAL_BASE}/sid/treatment-session"
# US Core CarePlan category (interop.md §1.1: US Core CarePlan; the profile's AssessPlan slice).
CAREPLAN_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
# R4 core extensions used by the served Questionnaires and QuestionnaireResponses.
DISPLAY_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/display"
ORDINAL_VALUE_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_EXTENSION: Final = "http://hl7.org/fhir/StructureDefinition/maxValue"
# Local extensions (Extension.url is required; each carries a string the R4 resource has no element for).
EXTENSION_BASE: Final = f"{LOCAL_BASE}/StructureDefinition"
STOP_REASON_EXTENSION: Final = f"{EXTENSION_BASE}/session-stop-reason"
ACTION_TAKEN_EXTENSION: Final = f"{EXTENSION_BASE}/adverse-event-action-taken"


def mrn_system(organization_slug: str) -> str:
    """Identifier system of a clinic's medical record numbers (local: one namespace per organization)."""
    return f"{LOCAL_BASE}/sid/mrn/{organization_slug}"


def questionnaire_url(instrument: str) -> str:
    return f"{QUESTIONNAIRE_BASE}/{instrument}"


def total_code(instrument: str) -> str:
    return f"{instrument}-total"


def total_codings(instrument: Instrument) -> list[dict[str, str]]:
    """LOINC first when the reference gives a total-score code, then always the local code."""
    codings: list[dict[str, str]] = []
    if instrument.loinc_total is not None:
        coding = {"system": LOINC, "code": instrument.loinc_total.code}
        if instrument.loinc_total.display:
            coding["display"] = instrument.loinc_total.display
        codings.append(coding)
    codings.append(
        {
            "system": INSTRUMENT_SYSTEM,
            "code": total_code(instrument.code),
            "display": f"{instrument.name} total score",
        }
    )
    return codings


def instruments_with_total() -> list[Instrument]:
    """Instruments whose administrations yield a total (and so a score Observation)."""
    return [i for i in INSTRUMENTS.values() if i.total_rule.value != "none"]
