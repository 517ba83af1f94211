"""Observation from chairside readings: one resource per measurement kind, merged with the score table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from tests.fhir.conftest import ids, iso, read, search

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://ketaclinic.org/fhir/CodeSystem/instrument"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
M = timedelta(minutes=1)
# The kinds each reading holds (tests/fhir/sessions.py).
KINDS = {
    "pre": ["bp", "hr", "spo2", "rr", "temp", "moaas", "cadss"],
    "r40": ["bp", "hr", "spo2", "rr", "moaas", "cadss"],
    "r60": ["bp", "hr", "moaas", "cadss"],
    "r85": ["bp", "hr", "moaas", "cadss"],
    "r118": ["bp", "hr", "moaas", "cadss"],
    "iv_pre": ["bp", "hr", "spo2", "rr"],
    "ben": ["bp"],
}
ORDER = ["pre", "r40", "r60", "r85", "r118", "iv_pre", "ben"]  # by time
VITAL = {"bp", "hr", "spo2", "rr", "temp"}


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def vs(clinic: Any, key: str, kind: str) -> str:
    return f"vs-{clinic.readings[key].pk}-{kind}"


def having(clinic: Any, wanted: set[str], rows: list[str] = ORDER) -> list[str]:
    """Ids of the given kinds in time order (then by id within one reading, as the server sorts ties)."""
    found = []
    for key in rows:
        found += sorted(vs(clinic, key, k) for k in KINDS[key] if k in wanted)
    return found


def _q(**params: str) -> str:
    return urlencode(params)


def test_one_reading_becomes_one_observation_per_kind(clinic: Any, h: dict[str, str]) -> None:
    pre = {k: read(h, f"Observation/{vs(clinic, 'pre', k)}") for k in KINDS["pre"]}
    for kind, resource in pre.items():
        assert resource["status"] == "final"
        assert resource["subject"] == {"reference": f"Patient/{clinic.ann.pk}"}
        assert resource["encounter"] == {"reference": f"Encounter/{clinic.sessions['esk'].pk}"}
        assert resource["effectiveDateTime"] == iso(clinic.t0 - 10 * M)
        category = "vital-signs" if kind in VITAL else "survey"
        assert resource["category"][0]["coding"][0]["system"] == CATEGORY
        assert resource["category"][0]["coding"][0]["code"] == category
    bp = pre["bp"]
    assert [c["code"] for c in bp["code"]["coding"]] == ["85354-9"] and "valueQuantity" not in bp
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in bp["component"]] == [
        ("8480-6", {"value": 128, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}),
        ("8462-4", {"value": 82, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}),
    ]

    def value(kind: str) -> tuple[list[tuple[str, str]], Any, str]:
        resource = pre[kind]
        coding = [(c["system"], c["code"]) for c in resource["code"]["coding"]]
        return coding, resource["valueQuantity"]["value"], resource["valueQuantity"]["code"]

    assert value("hr") == ([(LOINC, "8867-4")], 72, "/min")
    assert value("spo2") == ([(LOINC, "2708-6"), (LOINC, "59408-5")], 98, "%")  # both, as US Core asks
    assert value("rr") == ([(LOINC, "9279-1")], 14, "/min")
    assert value("temp") == ([(LOINC, "8310-5")], 36.6, "Cel")
    assert value("moaas") == ([(LOCAL, "moaas-total")], 5, "{score}")  # no LOINC: local code
    assert value("cadss") == ([(LOCAL, "cadss-total")], 0, "{score}")


def test_kinds_not_measured_yield_no_resource(clinic: Any, h: dict[str, str]) -> None:
    r40 = clinic.readings["r40"].pk
    for fhir_id in (
        f"vs-{r40}-temp",  # no temperature at 40 min
        f"vs-{clinic.readings['ben'].pk}-hr",
        f"vs-{r40}-bogus",
        "vs-not-a-uuid-bp",
        f"vital-{r40}-bp",
    ):
        assert Client().get(f"/fhir/Observation/{fhir_id}", **h).status_code == 404, fhir_id


def test_a_missing_half_of_the_pressure_is_marked_absent(clinic: Any, h: dict[str, str], nurse: Any) -> None:
    from ketaclinic.chairside import services
    from ketaclinic.clinical.vitals import VitalReading

    row = services.record_observation(
        user=nurse,
        session=clinic.sessions["running"],
        reading=VitalReading(taken_at=clinic.t2 + M, sbp_mmhg=130),
    )
    bp = read(h, f"Observation/vs-{row.pk}-bp")
    systolic, diastolic = bp["component"]
    assert systolic["valueQuantity"]["value"] == 130
    assert "valueQuantity" not in diastolic
    assert diastolic["dataAbsentReason"]["coding"][0]["code"] == "not-performed"


def test_every_kind_of_every_reading_is_served(clinic: Any, h: dict[str, str]) -> None:
    everything = set(KINDS["pre"])
    body = search(h, "/fhir/Observation?_count=100&_sort=date")
    # 7 + 6 + 4 + 4 + 4 + 4 + 1 = 30 resources from 7 readings
    assert body["total"] == 30
    assert [e["resource"]["id"] for e in body["entry"]] == having(clinic, everything)


@pytest.mark.parametrize(
    "category,wanted",
    [
        ("vital-signs", VITAL),
        (f"{CATEGORY}|vital-signs", VITAL),
        ("survey", {"moaas", "cadss"}),
        ("vital-signs,survey", VITAL | {"moaas", "cadss"}),
        ("http://example.org|vital-signs", set()),
    ],
)
def test_category(clinic: Any, h: dict[str, str], category: str, wanted: set[str]) -> None:
    # vital-signs: 5 + 4 + 2 + 2 + 2 + 4 + 1 = 20; survey: 2 × 5 = 10
    found = ids(h, f"/fhir/Observation?{_q(category=category, _sort='date', _count='100')}")
    assert found == having(clinic, wanted)


@pytest.mark.parametrize(
    "code,wanted",
    [
        (f"{LOINC}|8867-4", {"hr"}),
        ("8867-4", {"hr"}),
        (f"{LOINC}|59408-5", {"spo2"}),
        (f"{LOINC}|2708-6", {"spo2"}),
        (f"{LOINC}|85354-9", {"bp"}),
        (f"{LOINC}|8480-6", set()),  # a component code is not the Observation's code
        (f"{LOINC}|9279-1,{LOINC}|8310-5", {"rr", "temp"}),
        (f"{LOCAL}|moaas-total", {"moaas"}),
        ("http://snomed.info/sct|8867-4", set()),
    ],
)
def test_code(clinic: Any, h: dict[str, str], code: str, wanted: set[str]) -> None:
    found = ids(h, f"/fhir/Observation?{_q(code=code, _sort='date', _count='100')}")
    assert found == having(clinic, wanted)


def test_searches_span_scores_and_readings(
    clinic: Any, h: dict[str, str], nurse: Any, record_scale: Any
) -> None:
    """A CADSS administered as a rating scale and CADSS totals on the readings share one local code."""
    cadss = record_scale(nurse, clinic.ann, "cadss", {str(i): 1 for i in range(1, 24)}, clinic.t0 + 50 * M)
    phq9 = record_scale(
        nurse, clinic.ann, "phq9", {**{str(i): 1 for i in range(1, 9)}, "9": 0}, clinic.t0 - 60 * M
    )
    score_cadss, score_phq9 = f"score-{cadss.pk}", f"score-{phq9.pk}"
    found = ids(h, f"/fhir/Observation?{_q(code=f'{LOCAL}|cadss-total', _sort='date')}")
    # chairside CADSS at t0-10, t0+40, then the scale at t0+50, then t0+60, +85, +118
    chairside = having(clinic, {"cadss"})
    assert found == chairside[:2] + [score_cadss] + chairside[2:]
    assert read(h, f"Observation/{score_cadss}")["valueQuantity"]["value"] == 23  # 23 items × 1
    survey = ids(h, f"/fhir/Observation?{_q(category='survey', _sort='date', _count='100')}")
    assert survey == [score_phq9, *having(clinic, {"moaas", "cadss"}, ORDER[:2]), score_cadss] + having(
        clinic, {"moaas", "cadss"}, ORDER[2:]
    )
    assert ids(h, f"/fhir/Observation?{_q(category='vital-signs', _count='100')}").count(score_phq9) == 0


def test_paging_walks_both_tables_once_in_date_order(
    clinic: Any, h: dict[str, str], nurse: Any, record_scale: Any
) -> None:
    score = record_scale(
        nurse, clinic.ann, "phq9", {**{str(i): 2 for i in range(1, 9)}, "9": 0}, clinic.t0 + 41 * M
    )
    url = f"/fhir/Observation?patient={clinic.ann.pk}&_sort=date&_count=7"
    seen: list[str] = []
    pages = 0
    while url:
        body = search(h, url)
        assert body["total"] == 30  # Ann: 29 readings' resources (30 - Ben's 1) + 1 score
        seen += [e["resource"]["id"] for e in body.get("entry", [])]
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), "")
        pages += 1
    assert pages == 5  # 30 in pages of 7: 7 + 7 + 7 + 7 + 2
    everything = set(KINDS["pre"])
    rows = ORDER[:-1]
    assert seen == having(clinic, everything, rows[:2]) + [f"score-{score.pk}"] + having(
        clinic, everything, rows[2:]
    )


def test_date_and_last_updated(clinic: Any, h: dict[str, str]) -> None:
    between = _q(date=f"ge{iso(clinic.t0 + 40 * M)}", _sort="date")
    # the 40 and 60 minute readings: 6 + 4 resources
    found = ids(h, f"/fhir/Observation?{between}&date=lt{iso(clinic.t0 + 61 * M)}")
    assert found == having(clinic, set(KINDS["pre"]), ["r40", "r60"])
    # _lastUpdated is the entry time: the 40-minute readings were charted a day late, and an
    # incremental search after everything else was entered finds them (and only them).
    from ketaclinic.chairside.models import Observation

    entered = clinic.t2
    Observation.objects.update(recorded_at=entered)
    Observation.objects.filter(pk=clinic.readings["r40"].pk).update(recorded_at=entered + 24 * 60 * M)
    recent = ids(h, f"/fhir/Observation?{_q(_lastUpdated=f'gt{iso(entered)}', _sort='date')}")
    assert recent == having(clinic, set(KINDS["pre"]), ["r40"])
    assert read(h, f"Observation/{vs(clinic, 'r40', 'bp')}")["meta"]["lastUpdated"] == iso(
        entered + 24 * 60 * M
    )
    assert read(h, f"Observation/{vs(clinic, 'ben', 'bp')}")["meta"]["lastUpdated"] == iso(entered)
    last = ids(h, f"/fhir/Observation?{_q(_sort='_lastUpdated', _count='100')}")
    assert set(last[-len(KINDS["r40"]) :]) == set(having(clinic, set(KINDS["pre"]), ["r40"]))


def test_id_and_patient(clinic: Any, h: dict[str, str]) -> None:
    wanted = [vs(clinic, "pre", "temp"), vs(clinic, "ben", "bp")]
    assert sorted(ids(h, f"/fhir/Observation?_id={','.join(wanted)}")) == sorted(wanted)
    assert ids(h, f"/fhir/Observation?subject=Patient/{clinic.ben.pk}") == [vs(clinic, "ben", "bp")]
