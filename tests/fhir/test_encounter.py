"""Encounter from treatment sessions: status from the lifecycle, period, protocol, search parameters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from tests.fhir.conftest import ids, iso, read

from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.interop.fhir.resources.encounter import encounter_status

PROTOCOL = "https://ketaclinic.org/fhir/CodeSystem/protocol"
STOP_REASON = "https://ketaclinic.org/fhir/StructureDefinition/session-stop-reason"
M = timedelta(minutes=1)


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def enc(clinic: Any, *keys: str) -> list[str]:
    return [str(clinic.sessions[k].pk) for k in keys]


@pytest.mark.parametrize(
    "status,dose_started,expected",
    [
        ("scheduled", False, "planned"),
        ("checked_in", False, "arrived"),
        ("pre_dose", False, "arrived"),
        ("dosing", True, "in-progress"),
        ("monitoring", True, "in-progress"),
        ("recovery", True, "in-progress"),
        ("discharged", True, "finished"),
        ("stopped", False, "cancelled"),  # stopped before any dose: the treatment did not happen
        ("stopped", True, "finished"),  # stopped after dosing: treated, ended early
    ],
)
def test_status_follows_the_lifecycle(status: str, dose_started: bool, expected: str) -> None:
    assert encounter_status(status, dose_started) == expected


def test_each_session_maps_to_an_encounter(clinic: Any, h: dict[str, str], site: Any, org: Any) -> None:
    esk = read(h, f"Encounter/{clinic.sessions['esk'].pk}")
    assert esk["status"] == "finished"
    assert esk["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    }
    assert esk["type"][0]["coding"][0]["system"] == PROTOCOL
    assert esk["type"][0]["coding"][0]["code"] == "esk-trd-label"
    assert esk["subject"] == {"reference": f"Patient/{clinic.ann.pk}"}
    # Checked in at t0-25 min, discharged at t0+121 min.
    assert esk["period"] == {"start": iso(clinic.t0 - 25 * M), "end": iso(clinic.t0 + 121 * M)}
    assert esk["location"] == [{"location": {"display": site.name}}]
    assert esk["serviceProvider"] == {"display": org.name}
    assert "extension" not in esk
    assert esk["meta"]["versionId"] == str(TreatmentSession.objects.get(pk=clinic.sessions["esk"].pk).version)

    iv = read(h, f"Encounter/{clinic.sessions['iv'].pk}")
    assert iv["status"] == "finished"  # stopped after the infusion
    assert iv["period"] == {"start": iso(clinic.t1 - 15 * M), "end": iso(clinic.t1 + 50 * M)}
    assert iv["extension"] == [{"url": STOP_REASON, "valueString": "Patient felt unwell, left with escort"}]

    cancelled = read(h, f"Encounter/{clinic.sessions['cancelled'].pk}")
    assert cancelled["status"] == "cancelled"
    assert cancelled["period"] == {"start": iso(clinic.sessions["cancelled"].scheduled_at)}  # never arrived
    assert cancelled["extension"][0]["valueString"] == "Patient cancelled by phone"

    planned = read(h, f"Encounter/{clinic.sessions['planned'].pk}")
    assert planned["status"] == "planned"
    assert planned["period"] == {"start": iso(clinic.sessions["planned"].scheduled_at)}

    running = read(h, f"Encounter/{clinic.sessions['running'].pk}")
    assert running["status"] == "in-progress"
    assert running["period"] == {"start": iso(clinic.t2 - 10 * M)}  # checked in 10 min before the infusion
    assert running["subject"] == {"reference": f"Patient/{clinic.ben.pk}"}


def test_read_has_the_session_version_as_etag(clinic: Any, h: dict[str, str]) -> None:
    session = TreatmentSession.objects.get(pk=clinic.sessions["planned"].pk)
    response = Client().get(f"/fhir/Encounter/{session.pk}", **h)
    assert response["ETag"] == f'W/"{session.version}"' == 'W/"1"'  # scheduled, never changed


@pytest.mark.parametrize(
    "query,expected",
    [
        ("status=finished", ["esk", "iv"]),
        ("status=http://hl7.org/fhir/encounter-status|cancelled", ["cancelled"]),
        ("status=in-progress,planned", ["running", "planned"]),
        ("status=arrived", []),
        ("status=http://example.org/other|finished", []),  # right code, wrong system
        ("class=AMB", ["cancelled", "esk", "iv", "running", "planned"]),
        ("class=http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP", []),
        (f"type={PROTOCOL}|iv-trd-elektd", ["iv", "running"]),
        ("type=esk-trd-label&status=finished", ["esk"]),  # AND of two parameters
    ],
)
def test_token_parameters(clinic: Any, h: dict[str, str], query: str, expected: list[str]) -> None:
    assert ids(h, f"/fhir/Encounter?{query}&_sort=date") == enc(clinic, *expected)


def test_patient_date_and_sort(clinic: Any, h: dict[str, str]) -> None:
    assert ids(h, f"/fhir/Encounter?patient=Patient/{clinic.ben.pk}") == enc(clinic, "running")
    # Starts: cancelled t0-1 d (scheduled), esk t0-25 (the day before), iv t1-15, running t2-10 (now-30),
    # planned now+2 d.
    everything = ["cancelled", "esk", "iv", "running", "planned"]
    assert ids(h, "/fhir/Encounter?_sort=date") == enc(clinic, *everything)
    assert ids(h, "/fhir/Encounter?_sort=-date") == enc(clinic, *everything[::-1])
    assert ids(h, f"/fhir/Encounter?date=lt{iso(clinic.t0)}&_sort=date") == enc(clinic, "cancelled", "esk")
    # ge the check-in minute of the IV session: the periods reaching past it (issue 16: R4 period
    # matching). The cancelled session never arrived and its period has no end, so R4 reads it as open,
    # like the running and the planned one; esk ended at t0+121, before.
    assert ids(h, f"/fhir/Encounter?date=ge{iso(clinic.t1 - 15 * M)}&_sort=date") == enc(
        clinic, "cancelled", "iv", "running", "planned"
    )
    # eq: the searched interval must contain the whole period; the check-in second alone does not.
    assert ids(h, f"/fhir/Encounter?date={iso(clinic.t0 - 25 * M)}") == []
    assert ids(h, f"/fhir/Encounter?date=sa{iso(clinic.t1)}&_sort=date") == enc(clinic, "running", "planned")


def test_last_updated_is_the_latest_status_change(clinic: Any, h: dict[str, str]) -> None:
    """Sessions were created two days before t0 (set here); a status change after that moves lastUpdated."""
    created = clinic.t0 - timedelta(days=2)
    TreatmentSession.objects.filter(organization=clinic.ann.organization).update(created_at=created)
    # Last changes: esk discharged t0+121, iv stopped t1+50, running dosing at t2,
    # cancelled stopped t0-1 d 2 h (after creation), planned never changed (creation).
    assert ids(h, f"/fhir/Encounter?_lastUpdated=ge{iso(clinic.t0)}&_sort=_lastUpdated") == enc(
        clinic, "esk", "iv", "running"
    )
    # Before t0-1 d: planned (t0-2 d) and cancelled (t0-1 d 2 h).
    assert ids(
        h, f"/fhir/Encounter?_lastUpdated=lt{iso(clinic.t0 - timedelta(days=1))}&_sort=_lastUpdated"
    ) == enc(clinic, "planned", "cancelled")
    esk = read(h, f"Encounter/{clinic.sessions['esk'].pk}")
    assert esk["meta"]["lastUpdated"] == iso(clinic.t0 + 121 * M)
    planned = read(h, f"Encounter/{clinic.sessions['planned'].pk}")
    assert planned["meta"]["lastUpdated"] == iso(created)


def test_unknown_ids_are_404(clinic: Any, h: dict[str, str]) -> None:
    for fhir_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", str(clinic.sessions["theirs"].pk)):
        assert Client().get(f"/fhir/Encounter/{fhir_id}", **h).status_code == 404
