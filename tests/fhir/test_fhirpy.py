"""A real FHIR client (fhirpy's SyncFHIRClient) searches and pages through the running server."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import requests
from fhirpy import SyncFHIRClient
from tests.fhir.conftest import at, phq9


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
    basic = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    token = requests.post(
        f"{live_server.url}/fhir/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    ).json()["access_token"]
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
