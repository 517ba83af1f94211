"""US Core 6.1.0 (issue 16 point 5): what is claimed, that it is met, and that the checker catches what is not;
the served Questionnaires and the QuestionnaireResponses that point to them (interop.md §1.6)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.test import Client
from tests.fhir.conftest import at, phq9, read, search

from ketaclinic.interop.fhir import profiles

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
PHQ9_ITEMS = [
    "44250-9",
    "44255-8",
    "44259-0",
    "44254-1",
    "44251-7",
    "44258-2",
    "44252-5",
    "44253-3",
    "44260-8",
]
GAD7_ITEMS = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
PHQ_ANSWERS = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def test_capability_statement_claims_us_core_per_resource(db: Any) -> None:
    capability = Client().get("/fhir/metadata").json()
    assert capability["implementationGuide"] == [
        "http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core|6.1.0"
    ]
    assert "instantiates" not in capability  # see profiles.py / docs/operations.md: not every SHALL is met
    claimed = {r["type"]: r.get("supportedProfile", []) for r in capability["rest"][0]["resource"]}
    assert claimed["Patient"] == [f"{US_CORE}us-core-patient"]
    assert claimed["CarePlan"] == [f"{US_CORE}us-core-careplan"]
    assert claimed["Condition"] == [f"{US_CORE}us-core-condition-problems-health-concerns"]
    assert claimed["QuestionnaireResponse"] == [f"{US_CORE}us-core-questionnaireresponse"]
    assert f"{US_CORE}us-core-pulse-oximetry" in claimed["Observation"]
    assert f"{US_CORE}us-core-observation-screening-assessment" in claimed["Observation"]
    # No US Core profile exists for these (interop.md §1.1): nothing is claimed.
    for name in ("MedicationAdministration", "AdverseEvent", "Consent", "Questionnaire"):
        assert claimed[name] == []
    for entry in capability["rest"][0]["resource"]:
        assert entry["profile"] == f"http://hl7.org/fhir/StructureDefinition/{entry['type']}"
        # every profile the statement lists has rules in the checker
        assert all(url in profiles.RULES for url in entry.get("supportedProfile", []))


def test_every_resource_claims_what_the_capability_statement_lists_and_meets_it(
    org: Any, clinic: Any, courses: Any, nurse: Any, record_scale: Any, h: dict[str, str]
) -> None:
    record_scale(nurse, clinic.ann, "phq9", phq9(2, rest=1), at(3))
    listed = {
        r["type"]: set(r.get("supportedProfile", []))
        for r in Client().get("/fhir/metadata").json()["rest"][0]["resource"]
    }
    used: set[str] = set()
    for name in listed:
        for entry in search(h, f"/fhir/{name}?_count=100").get("entry", []):
            resource = entry["resource"]
            claims = set(resource.get("meta", {}).get("profile", []))
            assert claims <= listed[name], resource["id"]
            assert profiles.check(resource) == [], resource["id"]
            used |= claims
    # every listed profile is used by at least one resource of this clinic
    assert used == set().union(*listed.values())


def test_vital_sign_profiles_follow_the_code(org: Any, clinic: Any, h: dict[str, str]) -> None:
    pre = clinic.readings["pre"].pk
    expected = {
        "bp": "us-core-blood-pressure",
        "hr": "us-core-heart-rate",
        "spo2": "us-core-pulse-oximetry",
        "rr": "us-core-respiratory-rate",
        "temp": "us-core-body-temperature",
        "moaas": "us-core-observation-screening-assessment",
        "cadss": "us-core-observation-screening-assessment",
    }
    for kind, profile in expected.items():
        body = read(h, f"Observation/vs-{pre}-{kind}")
        assert body["meta"]["profile"] == [f"{US_CORE}{profile}"], kind
    spo2 = read(h, f"Observation/vs-{pre}-spo2")
    assert {c["code"] for c in spo2["code"]["coding"] if c["system"] == LOINC} >= {"2708-6", "59408-5"}
    # a reading with another code claims nothing (oximeter pulse rate, MAP alone: no US Core profile)
    assert profiles.vital_sign_profiles([{"system": LOINC, "code": "8889-8"}]) == []
    assert profiles.vital_sign_profiles([{"system": LOINC, "code": "59408-5"}]) == []  # 2708-6 missing


def _careplan(h: dict[str, str], courses: Any) -> dict[str, Any]:
    return read(h, f"CarePlan/{courses.plan.pk}")


def test_the_checker_refuses_what_a_profile_forbids(
    org: Any, clinic: Any, courses: Any, nurse: Any, record_scale: Any, h: dict[str, str]
) -> None:
    """Each rule can fail: break a served resource the way the issue found them broken and see it named."""
    plan = _careplan(h, courses)
    assert profiles.check(plan) == []
    for broken, expected in (
        ({k: v for k, v in plan.items() if k != "text"}, "text is required"),
        ({**plan, "text": {"status": "empty", "div": plan["text"]["div"]}}, "text.status is 'empty'"),
        ({**plan, "category": [{"text": "plan"}]}, "assess-plan"),
    ):
        problems = profiles.check(broken)
        assert any(expected in p for p in problems), (expected, problems)

    bp = read(h, f"Observation/vs-{clinic.readings['pre'].pk}-bp")
    assert profiles.check(bp) == []
    no_diastolic = copy.deepcopy(bp)
    no_diastolic["component"] = no_diastolic["component"][:1]
    assert any("8462-4" in p for p in profiles.check(no_diastolic))
    no_value = copy.deepcopy(bp)
    del no_value["component"][0]["valueQuantity"]
    assert any("8480-6 has no value" in p for p in profiles.check(no_value))

    spo2 = read(h, f"Observation/vs-{clinic.readings['pre'].pk}-spo2")
    one_code = {**spo2, "code": {"coding": [c for c in spo2["code"]["coding"] if c["code"] != "2708-6"]}}
    assert any("O2Sat" in p for p in profiles.check(one_code))
    wrong_unit = copy.deepcopy(spo2)
    wrong_unit["valueQuantity"]["code"] = "percent"
    assert any("valueQuantity.code" in p for p in profiles.check(wrong_unit))

    patient = read(h, f"Patient/{clinic.ann.pk}")
    assert profiles.check(patient) == []
    no_system = copy.deepcopy(patient)
    del no_system["identifier"][0]["system"]
    assert "us-core-patient: identifier.system is required (in identifier #1)" in profiles.check(no_system)
    assert any("gender" in p for p in profiles.check({k: v for k, v in patient.items() if k != "gender"}))

    scale = record_scale(nurse, clinic.ann, "phq9", phq9(1), at(4))
    answers = read(h, f"QuestionnaireResponse/{scale.pk}")
    assert profiles.check(answers) == []
    assert any("authored" in p for p in profiles.check({k: v for k, v in answers.items() if k != "authored"}))
    assert profiles.check({**patient, "meta": {"profile": [f"{US_CORE}us-core-goal"]}}) == [
        f"{US_CORE}us-core-goal is not a profile this server knows how to check"
    ]


def test_phq9_answers_use_loinc_items_and_answers_and_resolve(
    org: Any, nurse: Any, make_patient: Any, record_scale: Any, h: dict[str, str]
) -> None:
    patient = make_patient(nurse)
    answers = {str(n): (n - 1) % 4 for n in range(1, 10)}  # 0,1,2,3,0,1,2,3,0
    scale = record_scale(nurse, patient, "phq9", answers, at(5))
    body = read(h, f"QuestionnaireResponse/{scale.pk}")
    assert body["meta"]["profile"] == [f"{US_CORE}us-core-questionnaireresponse"]
    assert [i["linkId"] for i in body["item"]] == PHQ9_ITEMS
    codings = [i["answer"][0]["valueCoding"] for i in body["item"]]
    assert [c["code"] for c in codings] == [PHQ_ANSWERS[(n - 1) % 4] for n in range(1, 10)]
    assert {c["system"] for c in codings} == {LOINC}
    assert body["_questionnaire"]["extension"][0]["valueString"] == "PHQ-9"

    # The canonical resolves here: by its last two segments and by url search (with or without version).
    canonical = body["questionnaire"]
    url, _, version = canonical.partition("|")
    questionnaire = read(h, "/".join(url.split("/")[-2:]))
    assert (questionnaire["url"], questionnaire["version"]) == (url, version)
    found = search(h, f"/fhir/Questionnaire?url={canonical}")
    assert [e["resource"]["id"] for e in found["entry"]] == ["phq9"]
    # Every item of the response is an item of the Questionnaire, and every coded answer one of its options.
    items = {i["linkId"]: i for i in questionnaire["item"]}
    for item in body["item"]:
        options = [o["valueCoding"]["code"] for o in items[item["linkId"]]["answerOption"]]
        assert item["answer"][0]["valueCoding"]["code"] in options


def test_phq9_and_gad7_questionnaires_carry_the_loinc_codes(org: Any, h: dict[str, str]) -> None:
    phq = read(h, "Questionnaire/phq9")
    assert phq["code"][0]["code"] == "44249-1"
    assert [i["linkId"] for i in phq["item"]] == PHQ9_ITEMS
    assert [i["code"][0]["code"] for i in phq["item"]] == PHQ9_ITEMS
    first = phq["item"][0]
    assert first["type"] == "choice"
    assert [o["valueCoding"]["code"] for o in first["answerOption"]] == PHQ_ANSWERS
    assert [o["valueCoding"]["extension"][0]["valueDecimal"] for o in first["answerOption"]] == [0, 1, 2, 3]
    gad = read(h, "Questionnaire/gad7")
    assert gad["code"][0]["code"] == "69737-5"
    coded = [i for i in gad["item"] if i["type"] != "display"]
    assert [i["linkId"] for i in coded] == GAD7_ITEMS
    # No LOINC answer codes for GAD-7 in the reference: integers 0-3, labels stated once.
    assert {i["type"] for i in coded} == {"integer"}
    assert gad["item"][0]["type"] == "display" and "Nearly every day" in gad["item"][0]["text"]
    # Scales without LOINC keep local item ids under their local canonical (interop.md §1.6).
    for code in ("madrs", "cadss"):
        body = read(h, f"Questionnaire/{code}")
        assert body["url"] == f"https://ketaclinic.org/fhir/Questionnaire/{code}"
        assert "code" not in body and body["item"][0]["linkId"] == "1"
    by_code = search(h, f"/fhir/Questionnaire?code={LOINC}|44260-8")
    assert [e["resource"]["id"] for e in by_code["entry"]] == ["phq9"]
    assert Client().get("/fhir/Questionnaire/nothing", **h).status_code == 404


def test_questionnaires_have_no_patient_compartment(
    org: Any, nurse: Any, front_desk: Any, patient: Any, bearer: Any, outsider: Any
) -> None:
    """Definitions are read by any token whose scopes cover Questionnaire, in any context; not by others."""
    for headers in (
        bearer(org, "patient/*.rs", patient=patient),
        bearer(org, "user/Questionnaire.rs", acting_user=front_desk),
        bearer(org, "system/Questionnaire.r"),
        bearer(outsider.organization),
    ):
        assert Client().get("/fhir/Questionnaire/phq9", **headers).status_code == 200
    total = search(bearer(org, "patient/Questionnaire.rs", patient=patient), "/fhir/Questionnaire")["total"]
    assert total == 13  # every instrument
    refused = Client().get("/fhir/Questionnaire/phq9", **bearer(org, "system/Patient.rs"))
    assert refused.status_code == 403
    assert Client().get("/fhir/Questionnaire/phq9").status_code == 401
    # not patient data: not exported, not in $everything
    kickoff = Client().get("/fhir/$export?_type=Questionnaire", HTTP_PREFER="respond-async", **bearer(org))
    assert kickoff.status_code == 400 and "not patient data" in kickoff.json()["issue"][0]["diagnostics"]
    everything = Client().get(f"/fhir/Patient/{patient.pk}/$everything", **bearer(org)).json()
    assert all(e["resource"]["resourceType"] != "Questionnaire" for e in everything["entry"])


def test_fhirpath_invariants_agree_with_the_checker(org: Any, clinic: Any, h: dict[str, str]) -> None:
    """The published FHIRPath invariants (evaluated by fhirpathpy) hold on served resources and fail on the
    same broken copies the Python checker refuses."""
    from tests.fhir.test_conformance import invariant_failures

    bp = read(h, f"Observation/vs-{clinic.readings['pre'].pk}-bp")
    assert invariant_failures(bp) == [] and {i.key for i in profiles.invariants_for(bp)} == {
        "vs-1",
        "vs-2",
        "vs-3",
    }
    no_value = copy.deepcopy(bp)
    del no_value["component"][1]["valueQuantity"]
    assert invariant_failures(no_value) == ["vs-3"]
    assert any("vs-3" in p for p in profiles.check(no_value))
    hr = read(h, f"Observation/vs-{clinic.readings['pre'].pk}-hr")
    bare = {k: v for k, v in hr.items() if k != "valueQuantity"}
    assert invariant_failures(bare) == ["vs-2"] and any("vs-2" in p for p in profiles.check(bare))
    patient = read(h, f"Patient/{clinic.ann.pk}")
    assert invariant_failures(patient) == []
    nameless = {**patient, "name": [{"use": "official"}]}
    assert invariant_failures(nameless) == ["us-core-6"] and any(
        "us-core-6" in p for p in profiles.check(nameless)
    )
    questionnaire = read(h, "Questionnaire/gad7")
    assert invariant_failures(questionnaire) == []
    twice = copy.deepcopy(questionnaire)
    twice["item"][2]["linkId"] = twice["item"][1]["linkId"]
    twice["item"][0]["required"] = True
    assert invariant_failures(twice) == ["que-2", "que-6"]
