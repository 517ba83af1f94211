"""MedicationAdministration (R4) from dose events: devices, infusion segments, codes, search parameters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from tests.fhir.conftest import ids, iso, read

from ketaclinic.chairside import services

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DRUG = "https://ketaclinic.org/fhir/CodeSystem/drug"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
M = timedelta(minutes=1)


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def ma(clinic: Any, *keys: str) -> list[str]:
    return [str(clinic.doses[k].pk) for k in keys]


def test_nasal_devices(clinic: Any, h: dict[str, str], nurse: Any) -> None:
    for n, key in enumerate(("d1", "d2", "d3")):
        resource = read(h, f"MedicationAdministration/{clinic.doses[key].pk}")
        assert resource["status"] == "completed"
        assert resource["effectiveDateTime"] == iso(clinic.t0 + 5 * n * M)  # devices at t0, +5, +10 min
        assert "effectivePeriod" not in resource
        assert resource["subject"] == {"reference": f"Patient/{clinic.ann.pk}"}
        assert resource["context"] == {"reference": f"Encounter/{clinic.sessions['esk'].pk}"}  # R4: context
        medication = resource["medicationCodeableConcept"]
        assert medication["text"] == "Spravato 28 mg"
        assert [(c["system"], c["code"]) for c in medication["coding"]] == [
            (RXNORM, "2201623"),  # SCDF esketamine Nasal Spray (interop.md §1.3 ✓)
            (RXNORM, "2201625"),  # SBDF esketamine Nasal Spray [Spravato] (✓)
            (DRUG, "esketamine"),
        ]
        dosage = resource["dosage"]
        assert dosage["route"]["coding"] == [{"system": SNOMED, "code": "46713006", "display": "Nasal route"}]
        assert dosage["dose"] == {"value": 28.0, "unit": "mg", "system": UCUM, "code": "mg"}
        assert "rateQuantity" not in dosage
        assert dosage["text"] == f"Nasal spray device, device {n + 1}, 28 mg"
        assert resource["performer"] == [
            {
                "function": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/med-admin-perform-function",
                            "code": "performer",
                            "display": "Performer",
                        }
                    ]
                },
                "actor": {"display": nurse.display_name},
            }
        ]


def test_infusion_segments_with_a_rate_change(clinic: Any, h: dict[str, str], prescriber: Any) -> None:
    start = read(h, f"MedicationAdministration/{clinic.doses['start'].pk}")
    slower = read(h, f"MedicationAdministration/{clinic.doses['slower'].pk}")
    t1 = clinic.t1
    # Started at t1 at 150 mL/h, slowed at t1+15 to 100 mL/h, stopped at t1+45.
    assert start["effectivePeriod"] == {"start": iso(t1), "end": iso(t1 + 15 * M)}
    assert slower["effectivePeriod"] == {"start": iso(t1 + 15 * M), "end": iso(t1 + 45 * M)}
    assert start["status"] == slower["status"] == "completed"
    assert start["dosage"]["rateQuantity"] == {"value": 150.0, "unit": "mL/h", "system": UCUM, "code": "mL/h"}
    assert slower["dosage"]["rateQuantity"]["value"] == 100.0
    assert start["dosage"]["dose"]["value"] == 35.0 and "dose" not in slower["dosage"]
    assert start["dosage"]["route"]["coding"][0]["code"] == "47625008"  # IV
    assert slower["partOf"] == [{"reference": f"MedicationAdministration/{clinic.doses['start'].pk}"}]
    assert "partOf" not in start
    assert slower["dosage"]["text"] == "Infusion rate changed, 100 mL/h, 35 mg/h"  # 35 mg in 100 mL
    assert slower["note"] == [{"text": "BP 168/98"}]
    # Racemic ketamine: text and the local code only (RxCUI 6130 is unconfirmed in interop.md §1.3).
    assert start["medicationCodeableConcept"] == {
        "coding": [{"system": DRUG, "code": "ketamine", "display": "Ketamine (racemic)"}],
        "text": "Ketamine HCl 10 mg/mL",
    }
    assert [p["function"]["coding"][0]["code"] for p in start["performer"]] == ["performer", "verifier"]
    assert start["performer"][1]["actor"] == {"display": prescriber.display_name}
    # The stop is the end of the last segment, not an administration of its own.
    stop = clinic.doses["stop"].pk
    assert Client().get(f"/fhir/MedicationAdministration/{stop}", **h).status_code == 404


def test_a_running_infusion_is_in_progress_then_stopped_with_the_session(
    clinic: Any, h: dict[str, str], nurse: Any
) -> None:
    running = read(h, f"MedicationAdministration/{clinic.doses['running'].pk}")
    assert running["status"] == "in-progress"
    assert running["effectivePeriod"] == {"start": iso(clinic.t2)}  # no end yet
    session = clinic.sessions["running"]
    session.refresh_from_db()
    services.transition(
        user=nurse, session=session, to="stopped", reason="Line infiltrated, infusion abandoned"
    )
    assert read(h, f"MedicationAdministration/{clinic.doses['running'].pk}")["status"] == "stopped"
    assert ids(h, "/fhir/MedicationAdministration?status=stopped") == ma(clinic, "running")
    encounter = read(h, f"Encounter/{session.pk}")
    assert encounter["status"] == "finished"  # stopped after the first dose
    assert encounter["extension"][0]["valueString"] == "Line infiltrated, infusion abandoned"


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"code": f"{RXNORM}|2201623"}, ["d1", "d2", "d3"]),
        ({"code": "2201625"}, ["d1", "d2", "d3"]),
        ({"code": f"{DRUG}|ketamine"}, ["start", "slower", "running"]),
        ({"code": f"{RXNORM}|6130"}, []),  # the unconfirmed ketamine RxCUI is never emitted
        ({"status": "in-progress"}, ["running"]),
        ({"status": "completed"}, ["d1", "d2", "d3", "start", "slower"]),
        ({"status": "stopped"}, []),
        ({"effective-time": "ge{t1}"}, ["start", "slower", "running"]),
        ({"effective-time": "lt{t0+5}"}, ["d1"]),
        ({"patient": "{ben}"}, ["running"]),
    ],
)
def test_search_parameters(
    clinic: Any, h: dict[str, str], query: dict[str, str], expected: list[str]
) -> None:
    values = {
        "t1": iso(clinic.t1),
        "t0+5": iso(clinic.t0 + 5 * M),
        "ben": str(clinic.ben.pk),
    }
    params = {k: v.format(**values) for k, v in query.items()}
    found = ids(h, f"/fhir/MedicationAdministration?{urlencode({**params, '_sort': 'effective-time'})}")
    assert found == ma(clinic, *expected)


def test_sort_and_last_updated(clinic: Any, h: dict[str, str]) -> None:
    order = ["d1", "d2", "d3", "start", "slower", "running"]
    assert ids(h, "/fhir/MedicationAdministration?_sort=-effective-time") == ma(clinic, *order[::-1])
    # lastUpdated is the entry time: the second nasal dose was charted an hour after everything else.
    from ketaclinic.chairside.models import Administration

    entered = clinic.t2
    Administration.objects.update(recorded_at=entered)
    Administration.objects.filter(pk=clinic.doses["d2"].pk).update(recorded_at=entered + 60 * M)
    found = ids(h, f"/fhir/MedicationAdministration?_lastUpdated=gt{iso(entered)}&_sort=_lastUpdated")
    assert found == ma(clinic, "d2")
    assert ids(h, "/fhir/MedicationAdministration?_sort=_lastUpdated")[-1] == ma(clinic, "d2")[0]
    meta = read(h, f"MedicationAdministration/{clinic.doses['d2'].pk}")["meta"]
    assert meta["lastUpdated"] == iso(entered + 60 * M)
