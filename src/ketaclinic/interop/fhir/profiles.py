"""The US Core profiles this server claims, and a small checker for what each profile requires.

**Which US Core.** US Core **6.1.0** (STU6.1, https://hl7.org/fhir/us/core/STU6.1/): the version the ONC
certification criteria of 2025-2026 name, and the one the Inferno US Core test kit runs as its 6.1.0 suite.
interop.md §1.1 names US Core as the target (current 8.0.1); every profile below has the same canonical URL
and the same mandatory elements in 6.1.0 and later, so a receiver on a later US Core reads these resources
too. Canonical URLs are unversioned (``http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient``);
the CapabilityStatement names the version in ``implementationGuide``.

**What is claimed** (``meta.profile`` of each resource and ``supportedProfile`` in the CapabilityStatement):

==========================  ================================================================================
resource                    profile
==========================  ================================================================================
Patient                     us-core-patient
Condition                   us-core-condition-problems-health-concerns (intake diagnoses, problem-list-item)
Observation, vital signs    us-core-blood-pressure (85354-9), us-core-heart-rate (8867-4),
                            us-core-pulse-oximetry (59408-5 + 2708-6), us-core-respiratory-rate (9279-1),
                            us-core-body-temperature (8310-5); by the Observation's LOINC code, so a
                            reading with any other code (MAP alone, oximeter pulse rate) claims none
Observation, survey         us-core-observation-screening-assessment (scale totals, chairside MOAA/S, CADSS)
QuestionnaireResponse       us-core-questionnaireresponse
CarePlan                    us-core-careplan
Encounter                   us-core-encounter
MedicationAdministration    none: US Core has no MedicationAdministration profile (interop.md §1.1 ⚠;
                            QI-Core's is not claimed either)
AdverseEvent, Consent       none in US Core (interop.md §1.1)
Questionnaire               none: US Core 6.1.0 profiles QuestionnaireResponse only (SDC covers authoring)
==========================  ================================================================================

**How they are checked.** The HL7 Java validator cannot be installed here (interop.md §2.5), so
``check(resource)`` tests every profile the resource claims against ``RULES``: the profile's mandatory
elements (minimum cardinality 1, evaluated wherever the parent element is present), its fixed codes and
required slices, and the invariants named below. The rules are data, transcribed from the US Core 6.1.0
StructureDefinitions (URL per profile in ``SOURCES``) as the Inferno US Core test kit lists them for 6.1.0
(``inferno-framework/us-core-test-kit``, ``lib/us_core_test_kit/generated/v6.1.0/<profile>/metadata.yml``:
``mandatory_elements``, ``must_supports.slices`` and the ``fixed_value`` of each element). It does not check
terminology bindings beyond the fixed codes, nor must-support elements that may be absent. Structure is
checked separately with fhir.resources R4B and fhirclient's R4 models (tests/fhir/test_conformance.py).

Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

US_CORE_VERSION: Final = "6.1.0"
US_CORE_IG: Final = "http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core"
_SD: Final = "http://hl7.org/fhir/us/core/StructureDefinition/"
_PAGES: Final = "https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-"

PATIENT: Final = f"{_SD}us-core-patient"
CONDITION_PROBLEMS: Final = f"{_SD}us-core-condition-problems-health-concerns"
ENCOUNTER: Final = f"{_SD}us-core-encounter"
CARE_PLAN: Final = f"{_SD}us-core-careplan"
QUESTIONNAIRE_RESPONSE: Final = f"{_SD}us-core-questionnaireresponse"
SCREENING_ASSESSMENT: Final = f"{_SD}us-core-observation-screening-assessment"
BLOOD_PRESSURE: Final = f"{_SD}us-core-blood-pressure"
HEART_RATE: Final = f"{_SD}us-core-heart-rate"
PULSE_OXIMETRY: Final = f"{_SD}us-core-pulse-oximetry"
RESPIRATORY_RATE: Final = f"{_SD}us-core-respiratory-rate"
BODY_TEMPERATURE: Final = f"{_SD}us-core-body-temperature"

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
CAREPLAN_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"

DATA_ABSENT_REASON: Final = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

# The vital-signs profile of an Observation, by the LOINC code that identifies it (US Core 6.1.0: each
# vital-sign profile fixes Observation.code; pulse oximetry fixes two codings, 59408-5 and 2708-6).
VITAL_SIGN_PROFILES: Final[Mapping[str, str]] = {
    "85354-9": BLOOD_PRESSURE,
    "8867-4": HEART_RATE,
    "59408-5": PULSE_OXIMETRY,
    "9279-1": RESPIRATORY_RATE,
    "8310-5": BODY_TEMPERATURE,
}

# What the CapabilityStatement lists per resource type (``supportedProfile``); types not named claim none.
SUPPORTED: Final[Mapping[str, tuple[str, ...]]] = {
    "Patient": (PATIENT,),
    "Condition": (CONDITION_PROBLEMS,),
    "Observation": (
        BLOOD_PRESSURE,
        HEART_RATE,
        PULSE_OXIMETRY,
        RESPIRATORY_RATE,
        BODY_TEMPERATURE,
        SCREENING_ASSESSMENT,
    ),
    "QuestionnaireResponse": (QUESTIONNAIRE_RESPONSE,),
    "CarePlan": (CARE_PLAN,),
    "Encounter": (ENCOUNTER,),
}


def vital_sign_profiles(codings: Iterable[Mapping[str, str]]) -> list[str]:
    """The US Core vital-sign profile an Observation with these ``code.coding`` conforms to (or none)."""
    loinc = {c.get("code") for c in codings if c.get("system") == LOINC}
    found = [url for code, url in VITAL_SIGN_PROFILES.items() if code in loinc]
    if PULSE_OXIMETRY in found and "2708-6" not in loinc:  # the profile needs both codings
        found.remove(PULSE_OXIMETRY)
    return found


# --- the checker -----------------------------------------------------------------------------------------


def values(node: Any, path: str) -> list[Any]:
    """Every value at a dotted ``path`` below ``node`` (lists are flattened at every step)."""
    current = node if isinstance(node, list) else [node]
    for part in path.split(".") if path else []:
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, Mapping) and part in item:
                value = item[part]
                nxt.extend(value if isinstance(value, list) else [value])
        current = nxt
    return current


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


@dataclass(frozen=True)
class Rule:
    """One requirement of a profile; ``test`` returns the problems found (empty when it holds)."""

    text: str
    test: Callable[[Mapping[str, Any]], list[str]]


def required(path: str) -> Rule:
    """``path`` has minimum cardinality 1 wherever its parent element is present (a mandatory element)."""
    parent, _, leaf = path.rpartition(".")

    def test(resource: Mapping[str, Any]) -> list[str]:
        missing = [n for n, node in enumerate(values(resource, parent)) if not _present(values(node, leaf))]
        return [f"{path} is required" + (f" (in {parent} #{n + 1})" if parent else "") for n in missing]

    return Rule(f"{path} 1..*", test)


def required_one_of(paths: Sequence[str], label: str) -> Rule:
    """One of ``paths`` (the choices of an ``[x]`` element, e.g. effectiveDateTime/effectivePeriod)."""

    def test(resource: Mapping[str, Any]) -> list[str]:
        return [] if any(_present(values(resource, p)) for p in paths) else [f"{label} is required"]

    return Rule(f"{label} 1..1", test)


def has_coding(path: str, system: str, codes: Sequence[str], label: str) -> Rule:
    """A CodeableConcept at ``path`` carries a coding of ``system`` with one of ``codes`` (a required slice
    or a fixed code)."""

    def test(resource: Mapping[str, Any]) -> list[str]:
        codings = values(resource, f"{path}.coding")
        if any(c.get("system") == system and c.get("code") in codes for c in codings):
            return []
        return [f"{path} needs a coding {system}|{' or '.join(codes)} ({label})"]

    return Rule(f"{path} has {system}|{'/'.join(codes)}", test)


def one_of(path: str, allowed: Sequence[str]) -> Rule:
    """Every value at ``path`` is one of ``allowed`` (a fixed value or a required binding's codes)."""

    def test(resource: Mapping[str, Any]) -> list[str]:
        return [
            f"{path} is {v!r}, not one of {', '.join(allowed)}"
            for v in values(resource, path)
            if v not in allowed
        ]

    return Rule(f"{path} in {allowed}", test)


def component_quantity(code: str, unit: str) -> Rule:
    """The component with LOINC ``code`` exists (a 1..1 slice) and has a UCUM ``unit`` value or a
    dataAbsentReason (US Core blood pressure: systolic and diastolic slices)."""

    def test(resource: Mapping[str, Any]) -> list[str]:
        found = [
            c
            for c in values(resource, "component")
            if any(x.get("system") == LOINC and x.get("code") == code for x in values(c, "code.coding"))
        ]
        if len(found) != 1:
            return [f"component {code}: {len(found)} found, exactly 1 is required"]
        quantity = found[0].get("valueQuantity")
        if quantity is None:
            return [] if _present(found[0].get("dataAbsentReason")) else [f"component {code} has no value"]
        if quantity.get("system") != UCUM or quantity.get("code") != unit:
            return [f"component {code} is not in UCUM {unit}"]
        return []

    return Rule(f"component {code} 1..1 in {unit}", test)


def _vs2(resource: Mapping[str, Any]) -> list[str]:
    """R4 vitalsigns vs-2: without component or hasMember, a value[x] or a dataAbsentReason is present."""
    if _present(resource.get("component")) or _present(resource.get("hasMember")):
        return []
    if any(k.startswith("value") for k in resource) or _present(resource.get("dataAbsentReason")):
        return []
    return ["vs-2: no value[x] and no dataAbsentReason"]


def _vs3(resource: Mapping[str, Any]) -> list[str]:
    """R4 vitalsigns vs-3: a component without a value has a dataAbsentReason."""
    return [
        f"vs-3: component #{n + 1} has neither value[x] nor dataAbsentReason"
        for n, c in enumerate(values(resource, "component"))
        if not any(k.startswith("value") for k in c) and not _present(c.get("dataAbsentReason"))
    ]


def _us_core_6(resource: Mapping[str, Any]) -> list[str]:
    """US Core Patient us-core-6: each name has a family or a given name, xor a data-absent-reason."""
    bad = []
    for n, name in enumerate(values(resource, "name")):
        named = _present(name.get("family")) or _present(name.get("given"))
        absent = any(e.get("url") == DATA_ABSENT_REASON for e in values(name, "extension"))
        if named == absent:
            bad.append(n)
    return [f"us-core-6: name #{n + 1} needs family or given, xor a data-absent-reason" for n in bad]


def _problem_or_concern(resource: Mapping[str, Any]) -> list[str]:
    """The us-core category slice (1..*): problem-list-item or health-concern."""
    allowed = {(CONDITION_CATEGORY, "problem-list-item"), (US_CORE_CONDITION_CATEGORY, "health-concern")}
    if any((c.get("system"), c.get("code")) in allowed for c in values(resource, "category.coding")):
        return []
    return ["category needs problem-list-item or health-concern (us-core slice 1..*)"]


def _narrative(resource: Mapping[str, Any]) -> list[str]:
    """txt-1/txt-2 in short: the narrative is an XHTML div with content."""
    div = values(resource, "text.div")
    if div and not (str(div[0]).startswith('<div xmlns="http://www.w3.org/1999/xhtml"') and len(div[0]) > 60):
        return ["text.div is not an XHTML div with content"]
    return []


def _quantity_rules(unit_codes: Sequence[str]) -> list[Rule]:
    return [
        one_of("valueQuantity.system", (UCUM,)),
        one_of("valueQuantity.code", unit_codes),
    ]


_VITAL_SIGNS: Final[tuple[Rule, ...]] = (
    # US Core Vital Signs (6.1.0) on the R4 vitalsigns profile: Inferno's mandatory_elements for each
    # vital-sign profile, the VSCat slice, and the invariants vs-2 and vs-3.
    required("status"),
    required("category"),
    has_coding("category", OBSERVATION_CATEGORY, ("vital-signs",), "VSCat slice"),
    required("code"),
    required("subject"),
    required_one_of(("effectiveDateTime", "effectivePeriod"), "effective[x]"),
    required("valueQuantity.value"),
    required("valueQuantity.unit"),
    required("valueQuantity.system"),
    required("valueQuantity.code"),
    required("component.code"),
    Rule("vs-2", _vs2),
    Rule("vs-3", _vs3),
)

RULES: Final[Mapping[str, tuple[Rule, ...]]] = {
    PATIENT: (
        required("identifier"),
        required("identifier.system"),
        required("identifier.value"),
        required("name"),
        required("gender"),
        required("telecom.system"),
        required("telecom.value"),
        required("communication.language"),
        one_of("gender", ("male", "female", "other", "unknown")),
        Rule("us-core-6", _us_core_6),
    ),
    CONDITION_PROBLEMS: (
        required("category"),
        Rule("category us-core slice", _problem_or_concern),
        required("code"),
        required("subject"),
    ),
    ENCOUNTER: (
        required("identifier.system"),
        required("identifier.value"),
        required("status"),
        required("class"),
        required("type"),
        required("subject"),
        required("location.location"),
    ),
    CARE_PLAN: (
        required("text"),
        required("text.status"),
        required("text.div"),
        one_of("text.status", ("generated", "additional")),  # US Core Narrative Status (required binding)
        Rule("narrative", _narrative),
        required("status"),
        required("intent"),
        required("category"),
        has_coding("category", CAREPLAN_CATEGORY, ("assess-plan",), "AssessPlan slice 1..1"),
        required("subject"),
        required("activity.detail.status"),
    ),
    QUESTIONNAIRE_RESPONSE: (
        required("questionnaire"),
        required("status"),
        required("subject"),
        required("authored"),
        required("item.linkId"),
    ),
    SCREENING_ASSESSMENT: (
        required("status"),
        required("category"),
        # The survey slice is must-support (0..1); every screening Observation here is a survey.
        has_coding("category", OBSERVATION_CATEGORY, ("survey",), "survey slice"),
        required("code"),
        required("subject"),
        required("component.code"),
    ),
    BLOOD_PRESSURE: (
        *_VITAL_SIGNS,
        has_coding("code", LOINC, ("85354-9",), "fixed code"),
        required("component"),
        component_quantity("8480-6", "mm[Hg]"),
        component_quantity("8462-4", "mm[Hg]"),
    ),
    HEART_RATE: (
        *_VITAL_SIGNS,
        has_coding("code", LOINC, ("8867-4",), "fixed code"),
        *_quantity_rules(("/min",)),
    ),
    PULSE_OXIMETRY: (
        *_VITAL_SIGNS,
        required("code.coding"),
        has_coding("code", LOINC, ("59408-5",), "PulseOx slice"),
        has_coding("code", LOINC, ("2708-6",), "O2Sat slice"),
        *_quantity_rules(("%",)),
    ),
    RESPIRATORY_RATE: (
        *_VITAL_SIGNS,
        has_coding("code", LOINC, ("9279-1",), "fixed code"),
        *_quantity_rules(("/min",)),
    ),
    BODY_TEMPERATURE: (
        *_VITAL_SIGNS,
        has_coding("code", LOINC, ("8310-5",), "fixed code"),
        *_quantity_rules(("Cel", "[degF]")),
    ),
}

# Where each profile's rules come from (US Core 6.1.0 StructureDefinition pages).
SOURCES: Final[Mapping[str, str]] = {url: f"{_PAGES}{url.rsplit('/', 1)[-1]}.html" for url in RULES}


# --- invariants as FHIRPath ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invariant:
    """A FHIRPath invariant of a profile or of the base resource, as its StructureDefinition states it:
    ``expression`` must be true for every element at ``context`` (evaluate ``<context>.all(<expression>)``).

    The checker above has Python equivalents for the US Core and vital-sign ones (``_us_core_6``, ``_vs2``,
    ``_vs3``); the conformance tests evaluate these expressions themselves with fhirpathpy, so the
    equivalents are checked against the published text."""

    key: str
    context: str
    expression: str
    source: str


_R4_VITALSIGNS: Final = "http://hl7.org/fhir/R4/vitalsigns.html (US Core vital-sign profiles derive from it)"
_R4_QUESTIONNAIRE: Final = "http://hl7.org/fhir/R4/questionnaire.html"
_ITEMS: Final = "Questionnaire.repeat(item)"
_VITAL_INVARIANTS: Final = (
    Invariant(
        "vs-1", "Observation.effective", "($this as dateTime).toString().length() >= 8", _R4_VITALSIGNS
    ),
    Invariant(
        "vs-2",
        "Observation",
        "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())",
        _R4_VITALSIGNS,
    ),
    Invariant("vs-3", "Observation.component", "value.exists() or dataAbsentReason.exists()", _R4_VITALSIGNS),
)
INVARIANTS: Final[Mapping[str, tuple[Invariant, ...]]] = {
    PATIENT: (
        Invariant(
            "us-core-6",
            "Patient.name",
            "(family.exists() or given.exists()) xor extension.where(url='http://hl7.org/fhir/StructureDefinition/"
            "data-absent-reason').exists()",
            f"{_PAGES}us-core-patient.html",
        ),
    ),
    **{url: _VITAL_INVARIANTS for url in VITAL_SIGN_PROFILES.values()},
    # Base R4 invariants of the one resource this server authors beyond the patient record.
    "Questionnaire": (
        Invariant("que-0", "Questionnaire", "name.matches('[A-Z]([A-Za-z0-9_]){0,254}')", _R4_QUESTIONNAIRE),
        Invariant(
            "que-1",
            _ITEMS,
            "(type='group' implies item.empty().not()) and (type='display' implies item.empty())",
            _R4_QUESTIONNAIRE,
        ),
        Invariant("que-2", "Questionnaire", "descendants().linkId.isDistinct()", _R4_QUESTIONNAIRE),
        Invariant("que-3", _ITEMS, "type!='display' or code.empty()", _R4_QUESTIONNAIRE),
        Invariant("que-4", _ITEMS, "answerOption.empty() or answerValueSet.empty()", _R4_QUESTIONNAIRE),
        Invariant(
            "que-5",
            _ITEMS,
            "(type ='choice' or type = 'open-choice' or type = 'decimal' or type = 'integer' or type = 'date' or "
            "type = 'dateTime' or type = 'time' or type = 'string' or type = 'quantity') or "
            "(answerValueSet.empty() and answerOption.empty())",
            _R4_QUESTIONNAIRE,
        ),
        Invariant(
            "que-6", _ITEMS, "type!='display' or (required.empty() and repeats.empty())", _R4_QUESTIONNAIRE
        ),
        Invariant(
            "que-12", _ITEMS, "enableWhen.count() > 2 implies enableBehavior.exists()", _R4_QUESTIONNAIRE
        ),
    ),
}


def invariants_for(resource: Mapping[str, Any]) -> list[Invariant]:
    """The invariants of the profiles ``resource`` claims and of its base type (where listed here)."""
    keys = [*values(resource, "meta.profile"), str(resource.get("resourceType"))]
    return [inv for key in keys for inv in INVARIANTS.get(key, ())]


def check_profile(resource: Mapping[str, Any], profile: str) -> list[str]:
    """The problems of ``resource`` against one profile (an unknown profile is itself a problem)."""
    rules = RULES.get(profile)
    if rules is None:
        return [f"{profile} is not a profile this server knows how to check"]
    return [f"{profile.rsplit('/', 1)[-1]}: {p}" for rule in rules for p in rule.test(resource)]


def check(resource: Mapping[str, Any]) -> list[str]:
    """The problems of ``resource`` against every profile its ``meta.profile`` claims."""
    return [p for profile in values(resource, "meta.profile") for p in check_profile(resource, profile)]
