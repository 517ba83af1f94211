"""Condition from the latest intake version: codes, statuses, ids, search parameters, isolation.

Data: tests/fhir/courses.py (Cara: signed intake with TRD, MDD with suicidal ideation, PTSD; Dan: unsigned
intake v2 with CRPS, fibromyalgia, neuropathic pain; another organization's patient).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from tests.fhir.conftest import ids, iso, read

from ketaclinic.assessment import services as assessment
from ketaclinic.interop.fhir.resources.condition import KINDS

SCT = "http://snomed.info/sct"
LOCAL = "https://ketaclinic.org/fhir/CodeSystem/condition"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def cond(intake: Any, *suffixes: str) -> list[str]:
    return [f"{intake.pk}-{s}" for s in suffixes]


def cara_ids(courses: Any) -> list[str]:
    return cond(courses.cara_intake, "370143000", "6471006", "47505003", "trd")


def dan_ids(courses: Any) -> list[str]:
    return cond(courses.dan_intake, "128200000", "203082005", "247398009")


def test_kinds_follow_the_indication_codes() -> None:
    by_suffix = {k.suffix: k for k in KINDS}
    # 7 SNOMED CT concepts of interop.md §1.2 (MDD shared by "mdd" and "mdd_suicidal_ideation") + TRD.
    assert set(by_suffix) == {
        "370143000",
        "767631007",
        "47505003",
        "128200000",
        "203082005",
        "247398009",
        "6471006",
        "trd",
    }
    assert by_suffix["370143000"].keys == ("mdd", "mdd_suicidal_ideation")
    assert by_suffix["6471006"].keys == ("mdd_suicidal_ideation",)
    assert [(c["system"], c["code"]) for c in by_suffix["trd"].codings] == [
        (SCT, "370143000"),
        (LOCAL, "trd"),
    ]
    assert by_suffix["trd"].keys == ("trd",)


def test_one_condition_per_diagnosis_of_the_latest_intake(courses: Any, h: dict[str, str]) -> None:
    assert sorted(ids(h, f"/fhir/Condition?patient={courses.cara.pk}")) == sorted(cara_ids(courses))
    # Dan's intake v2 replaces v1: only v2's three diagnoses, v1's ids are gone.
    assert sorted(ids(h, f"/fhir/Condition?patient={courses.dan.pk}")) == sorted(dan_ids(courses))
    old = cond(courses.dan_old_intake, "128200000")[0]
    assert Client().get(f"/fhir/Condition/{old}", **h).status_code == 404


def test_trd_carries_mdd_and_the_local_code(courses: Any, h: dict[str, str]) -> None:
    intake = courses.cara_intake
    trd = read(h, f"Condition/{intake.pk}-trd")
    assert trd["code"] == {
        "coding": [
            {"system": SCT, "code": "370143000", "display": "Major depressive disorder (disorder)"},
            {"system": LOCAL, "code": "trd", "display": "Treatment-resistant depression"},
        ],
        "text": "Treatment-resistant depression",
    }
    assert "no pre-coordinated SNOMED CT concept" in trd["note"][0]["text"]
    assert trd["clinicalStatus"]["coding"][0]["code"] == "active"
    assert trd["verificationStatus"]["coding"] == [
        {"system": VER, "code": "confirmed", "display": "Confirmed"}
    ]
    assert trd["category"] == [
        {"coding": [{"system": CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}]}
    ]
    assert trd["subject"] == {"reference": f"Patient/{courses.cara.pk}"}
    assert trd["recordedDate"] == iso(intake.created_at)
    assert trd["meta"]["lastUpdated"] == iso(intake.signed_at)  # signed after it was entered
    assert trd["recorder"] == {"display": intake.created_by.display_name}
    assert trd["asserter"] == {"display": intake.signed_by.display_name}
    si = read(h, f"Condition/{intake.pk}-6471006")
    assert [c["code"] for c in si["code"]["coding"]] == ["6471006"] and "note" not in si
    ptsd = read(h, f"Condition/{intake.pk}-47505003")
    assert ptsd["code"]["text"] == "Post-traumatic stress disorder"


def test_unsigned_intake_is_provisional_until_signed(
    courses: Any, h: dict[str, str], prescriber: Any
) -> None:
    fibro = dan_ids(courses)[1]
    body = read(h, f"Condition/{fibro}")
    assert body["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert "asserter" not in body
    assert body["meta"]["lastUpdated"] == iso(courses.dan_intake.created_at)
    assert sorted(ids(h, "/fhir/Condition?verification-status=provisional")) == sorted(dan_ids(courses))
    assessment.sign_intake(user=prescriber, intake=courses.dan_intake)
    assert read(h, f"Condition/{fibro}")["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert ids(h, "/fhir/Condition?verification-status=provisional") == []
    assert len(ids(h, f"/fhir/Condition?verification-status={VER}|confirmed")) == 7


@pytest.mark.parametrize(
    "query,expected",
    [
        # MDD: Cara's MDD (from MDD with suicidal ideation) and her TRD, which also carries 370143000.
        (f"code={SCT}|370143000", {"cara:370143000", "cara:trd"}),
        (f"code={LOCAL}|trd", {"cara:trd"}),
        ("code=6471006", {"cara:6471006"}),
        (f"code={SCT}|203082005,{SCT}|47505003", {"dan:203082005", "cara:47505003"}),
        (f"code={LOCAL}|370143000", set()),
        (f"category={CATEGORY}|problem-list-item", "all"),
        ("category=encounter-diagnosis", set()),
        ("clinical-status=active", "all"),
        ("clinical-status=resolved", set()),
    ],
)
def test_token_searches(courses: Any, h: dict[str, str], query: str, expected: Any) -> None:
    every = set(cara_ids(courses)) | set(dan_ids(courses))
    if expected != "all":
        intakes = {"cara": courses.cara_intake, "dan": courses.dan_intake}
        expected = {f"{intakes[e.split(':')[0]].pk}-{e.split(':')[1]}" for e in expected}
    else:
        expected = every
    assert set(ids(h, f"/fhir/Condition?{query}&_count=100")) == expected


def test_id_last_updated_and_recorded_date(courses: Any, h: dict[str, str]) -> None:
    trd = f"{courses.cara_intake.pk}-trd"
    assert ids(h, f"/fhir/Condition?_id={trd}") == [trd]
    assert ids(h, f"/fhir/Condition?_id={courses.cara_intake.pk}-767631007") == []  # not a diagnosis of hers
    hour_ago = iso(timezone.now() - timedelta(hours=1))
    assert len(ids(h, f"/fhir/Condition?_lastUpdated=ge{hour_ago}")) == 7
    assert ids(h, f"/fhir/Condition?_lastUpdated=lt{hour_ago}") == []
    assert len(ids(h, f"/fhir/Condition?recorded-date=ge{hour_ago}&patient={courses.dan.pk}")) == 3
    # Sorted by id across the per-concept sources: the server's order is the ids' order.
    listed = ids(h, "/fhir/Condition?_count=100&_sort=_id")
    assert listed == sorted(listed) and len(listed) == 7
    first, second = (
        ids(h, "/fhir/Condition?_count=4&_sort=_id"),
        ids(h, "/fhir/Condition?_count=4&_sort=_id&_offset=4"),
    )
    assert first + second == listed


def test_another_organizations_conditions_are_invisible(
    courses: Any, h: dict[str, str], other_org: Any, bearer: Any
) -> None:
    theirs = cond(courses.theirs_intake, "trd", "47505003")
    for fhir_id in theirs:
        assert Client().get(f"/fhir/Condition/{fhir_id}", **h).status_code == 404
        assert ids(h, f"/fhir/Condition?_id={fhir_id}") == []
    assert ids(h, f"/fhir/Condition?patient={courses.theirs_patient.pk}") == []
    other = bearer(other_org)
    assert sorted(ids(other, "/fhir/Condition")) == sorted(theirs)
    assert Client().get(f"/fhir/Condition/{cara_ids(courses)[0]}", **other).status_code == 404


def test_a_patient_token_sees_its_own_conditions(courses: Any, org: Any, bearer: Any) -> None:
    dan = bearer(org, "patient/*.rs", patient=courses.dan)
    assert sorted(ids(dan, "/fhir/Condition")) == sorted(dan_ids(courses))
    assert Client().get(f"/fhir/Condition/{cara_ids(courses)[0]}", **dan).status_code == 404


def test_user_scopes_follow_the_staff_role(
    courses: Any, org: Any, bearer: Any, nurse: Any, front_desk: Any
) -> None:
    as_nurse = bearer(org, "user/*.rs", acting_user=nurse)
    assert len(ids(as_nurse, "/fhir/Condition?_count=100")) == 7
    assert ids(as_nurse, "/fhir/CarePlan") == [str(courses.plan.pk)]
    as_front_desk = bearer(org, "user/*.rs", acting_user=front_desk)
    for rtype in ("Condition", "CarePlan"):
        assert Client().get(f"/fhir/{rtype}", **as_front_desk).status_code == 403, rtype  # clinicians only
    conditions_only = bearer(org, "system/Condition.rs")
    assert Client().get("/fhir/CarePlan", **conditions_only).status_code == 403
