"""A real FHIR client (fhirpy's SyncFHIRClient) searches and pages through the running server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhirpy import SyncFHIRClient
from tests.fhir.conftest import at, live_token, phq9


def test_fhirpy_searches_and_pages_through_observations(
    live_server: Any, org: Any, nurse: Any, make_patient: Any, record_scale: Any, make_client: Any
) -> None:
    patient = make_patient(nurse)
    other = make_patient(nurse, given_name="Other")
    expected = []
    for n in range(23):  # 23 scores in pages of 5: 5 pages, the last holding 3
        scale = record_scale(nurse, patient, "phq9", phq9(n % 4), at(1) + timedelta(hours=n))
        expected.append(f"score-{scale.pk}")
    record_scale(nurse, other, "phq9", phq9(1), at(2))
    api_client, secret = make_client(org)
    token = live_token(live_server, api_client.client_id, secret)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {token}")

    search = client.resources("Observation").search(
        patient=f"Patient/{patient.pk}", code="http://loinc.org|44261-6"
    )
    assert search.count() == 23
    found = search.sort("date").limit(5).fetch_all()
    assert [o["id"] for o in found] == expected  # every page followed, in date order, none twice
    assert all(o["subject"]["reference"] == f"Patient/{patient.pk}" for o in found)
    first_page = search.sort("-date").limit(5).fetch()
    assert [o["id"] for o in first_page] == expected[::-1][:5]
    fetched = client.reference("Patient", str(patient.pk)).to_resource()
    assert fetched["name"][0]["family"] == patient.family_name


def test_fhirpy_reads_a_session_and_its_vital_signs(
    live_server: Any, org: Any, clinic: Any, make_client: Any
) -> None:
    api_client, secret = make_client(org)
    token = live_token(live_server, api_client.client_id, secret)
    client = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {token}")
    esk = clinic.sessions["esk"]
    [encounter] = (
        client.resources("Encounter")
        .search(patient=f"Patient/{clinic.ann.pk}", status="finished", type="esk-trd-label")
        .fetch_all()
    )
    assert encounter["id"] == str(esk.pk)
    # Ann's vital signs (20 less Ben's 1 = 19) in pages of 4: 5 pages followed, in date order.
    vitals = client.resources("Observation").search(
        patient=f"Patient/{clinic.ann.pk}", category="vital-signs"
    )
    assert vitals.count() == 19
    found = vitals.sort("date").limit(4).fetch_all()
    assert len({o["id"] for o in found}) == 19
    times = [o["effectiveDateTime"] for o in found]
    assert times == sorted(times)
    heart = client.resources("Observation").search(code="http://loinc.org|8867-4").sort("-date").first()
    assert heart is not None and heart["id"] == f"vs-{clinic.readings['iv_pre'].pk}-hr"  # the latest HR
    doses = client.resources("MedicationAdministration").search(
        code="http://www.nlm.nih.gov/research/umls/rxnorm|2201623"
    )
    assert doses.count() == 3
