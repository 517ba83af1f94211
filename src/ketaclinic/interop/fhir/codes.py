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
V2_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
SMART_CAPABILITIES: Final = "http://terminology.hl7.org/CodeSystem/restful-security-service"

LOCAL_BASE: Final = "https://ketaclinic.org/fhir"
# Local code system: "<instrument>-total" is the total score of a rating scale with no LOINC code.
INSTRUMENT_SYSTEM: Final = f"{LOCAL_BASE}/CodeSystem/instrument"
QUESTIONNAIRE_BASE: Final = f"{LOCAL_BASE}/Questionnaire"


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
