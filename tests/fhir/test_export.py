"""Bulk export: the asynchronous $export flow through the job queue, per-client files, the commands."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core import management
from django.core.management.base import CommandError
from django.test import Client
from tests.fhir.conftest import at, get_token, phq9

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core import jobs
from ketaclinic.core.models import Job
from ketaclinic.interop.fhir.models import ApiClient, BulkExport

ASYNC = {"HTTP_PREFER": "respond-async"}
# No treatment sessions, intakes or plans in these tests: those types export empty files
# (with them: tests/fhir/test_session_data.py, tests/fhir/test_care_plan.py).
NO_SESSIONS = {
    "Condition": 0,
    "MedicationAdministration": 0,
    "Encounter": 0,
    "CarePlan": 0,
    "AdverseEvent": 0,
    "Consent": 0,
    "Device": 0,  # no monitor registered (tests/fhir/test_device_data.py)
}


@pytest.fixture
def two_patients(
    nurse: Any, make_patient: Any, record_scale: Any, outsider: Any, outsider_patient: Any
) -> list[Any]:
    first, second = make_patient(nurse), make_patient(nurse, given_name="Second")
    record_scale(nurse, first, "phq9", phq9(1), at(1))
    record_scale(nurse, first, "phq9", phq9(2), at(2))
    record_scale(outsider, outsider_patient, "phq9", phq9(3), at(3))  # another organization: never exported
    return [first, second]


def _kickoff(headers: dict[str, str], path: str = "/fhir/$export") -> str:
    response = Client().get(path, **headers, **ASYNC)
    assert response.status_code == 202, response.content
    return str(response["Content-Location"])


def test_export_flow_from_kickoff_to_files(org: Any, two_patients: list[Any], bearer: Any) -> None:
    headers = bearer(org)
    status_url = _kickoff(headers)
    assert status_url.startswith("http://testserver/fhir/$export-status/")
    assert Job.objects.filter(kind="fhir.export", finished_at__isnull=True).count() == 1
    pending = Client().get(status_url, **headers)
    assert pending.status_code == 202 and pending["X-Progress"] == "queued"
    assert jobs.run_due_jobs() == 1
    done = Client().get(status_url, **headers)
    assert done.status_code == 200
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {
        "Observation": 2,
        "Patient": 2,
        "QuestionnaireResponse": 2,
        **NO_SESSIONS,
    }  # our org only
    patient_file = next(o["url"] for o in manifest["output"] if o["type"] == "Patient")
    response = Client().get(patient_file, **headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+ndjson"
    lines = response.content.decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(str(p.pk) for p in two_patients)


def test_export_is_audited_per_patient(org: Any, two_patients: list[Any], make_client: Any) -> None:
    api_client, secret = make_client(org)
    raw = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    _kickoff({"HTTP_AUTHORIZATION": f"Bearer {raw}"})
    jobs.run_due_jobs()
    rows = AuditEntry.objects.filter(action="export", category="fhir", patient__isnull=False)
    assert {r.patient_id for r in rows} == {p.pk for p in two_patients}
    assert all(r.client == "fhir" and api_client.client_id in r.detail for r in rows)


def test_type_and_since_filters(org: Any, two_patients: list[Any], bearer: Any) -> None:
    headers = bearer(org)
    status_url = _kickoff(headers, "/fhir/$export?_type=Observation&_since=2000-01-01T00:00:00Z")
    jobs.run_due_jobs()
    assert [o["type"] for o in Client().get(status_url, **headers).json()["output"]] == ["Observation"]
    future = _kickoff(headers, "/fhir/$export?_type=Patient&_since=2999-01-01")
    jobs.run_due_jobs()
    assert Client().get(future, **headers).json()["output"][0]["count"] == 0


def test_kickoff_errors(org: Any, patient: Any, bearer: Any) -> None:
    headers = bearer(org)
    assert Client().get("/fhir/$export", **headers).status_code == 400  # no Prefer: respond-async
    bad = Client().get("/fhir/$export?_type=Nope&_outputFormat=csv&x=1", **headers, **ASYNC)
    assert bad.status_code == 400
    assert {i["expression"][0] for i in bad.json()["issue"]} == {"_type", "_outputFormat", "x"}
    assert Client().get("/fhir/$export", **ASYNC).status_code == 401
    narrowed = bearer(org, "system/Patient.rs")
    assert Client().get("/fhir/$export?_type=Observation", **narrowed, **ASYNC).status_code == 403
    patient_token = bearer(org, "patient/*.rs", patient=patient)
    assert Client().get("/fhir/$export", **patient_token, **ASYNC).status_code == 403  # system level


def test_patient_export_with_a_patient_token_holds_only_that_patient(
    org: Any, two_patients: list[Any], bearer: Any
) -> None:
    first = two_patients[0]
    headers = bearer(org, "patient/*.rs", patient=first)
    status_url = _kickoff(headers, "/fhir/Patient/$export")
    jobs.run_due_jobs()
    counts = {o["type"]: o["count"] for o in Client().get(status_url, **headers).json()["output"]}
    assert counts == {"Patient": 1, "Observation": 2, "QuestionnaireResponse": 2, **NO_SESSIONS}


def test_status_and_files_are_for_the_same_client_only(
    org: Any, two_patients: list[Any], bearer: Any
) -> None:
    headers = bearer(org)
    status_url = _kickoff(headers)
    jobs.run_due_jobs()
    file_url = Client().get(status_url, **headers).json()["output"][0]["url"]
    other = bearer(org)  # another client of the same organization
    assert Client().get(status_url, **other).status_code == 404
    assert Client().get(file_url, **other).status_code == 404
    assert Client().get(file_url).status_code == 401
    assert Client().delete(status_url, **headers).status_code == 202
    assert not BulkExport.objects.exists()
    assert Client().get(status_url, **headers).status_code == 404


def test_a_failed_export_is_reported(
    org: Any, two_patients: list[Any], bearer: Any, monkeypatch: Any
) -> None:
    from ketaclinic.interop.fhir import export

    headers = bearer(org)
    status_url = _kickoff(headers)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_generate", broken)
    jobs.run_due_jobs()
    response = Client().get(status_url, **headers)
    assert response.status_code == 500 and "disk full" in response.json()["issue"][0]["diagnostics"]


def test_fhir_export_command_writes_ndjson(org: Any, two_patients: list[Any], tmp_path: Any) -> None:
    out = StringIO()
    management.call_command("fhir_export", str(tmp_path / "out"), org="owner", json=True, stdout=out)
    assert json.loads(out.getvalue()) == {
        "Patient": 2,
        "Observation": 2,
        "QuestionnaireResponse": 2,
        **NO_SESSIONS,
    }
    lines = (tmp_path / "out" / "Observation.ndjson").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["resourceType"] == "Observation" for line in lines)
    rows = AuditEntry.objects.filter(action="export", client="cli", patient__isnull=False)
    assert {r.patient_id for r in rows} == {p.pk for p in two_patients}
    with pytest.raises(CommandError):
        management.call_command("fhir_export", str(tmp_path), org="nope")


def test_fhir_client_command_prints_the_secret_once(org: Any, patient: Any) -> None:
    out = StringIO()
    management.call_command(
        "fhir_client",
        "create",
        org="owner",
        name="Harbor EHR",
        scope=["system/*.rs"],
        secret=True,
        json=True,
        stdout=out,
    )
    created = json.loads(out.getvalue())
    client = ApiClient.objects.get(client_id=created["client_id"])
    assert created["client_secret"] not in client.secret_hash and client.allowed_scopes == "system/*.rs"
    assert get_token(Client(), created["client_id"], created["client_secret"]).status_code == 200
    listing = StringIO()
    management.call_command("fhir_client", "list", org="owner", json=True, stdout=listing)
    assert created["client_secret"] not in listing.getvalue()
    assert json.loads(listing.getvalue())[0]["auth_method"] == "client_secret"
    assert json.loads(listing.getvalue())[0]["name"] == "Harbor EHR"
    management.call_command("fhir_client", "deactivate", created["client_id"], stdout=StringIO())
    assert get_token(Client(), created["client_id"], created["client_secret"]).status_code == 401
    with pytest.raises(CommandError, match="patient"):
        management.call_command(
            "fhir_client", "create", org="owner", name="App", scope=["patient/*.rs"], secret=True
        )
    # A secret is an explicit choice (local tools): without keys or --secret nothing is registered.
    with pytest.raises(CommandError, match="--jwks-file FILE or --jwks-url URL"):
        management.call_command("fhir_client", "create", org="owner", name="App", scope=["system/*.rs"])
    assert ApiClient.objects.count() == 1


def test_client_ids_never_look_like_command_line_options() -> None:
    """A client id is typed after ``ketaclinic fhir client deactivate``: one starting with "-" was read
    as an option (a CI run failed on it, about one id in 64)."""
    from ketaclinic.interop.fhir.auth import new_client_id

    ids = [new_client_id() for _ in range(3000)]
    assert all(i[0].isalnum() for i in ids)
    assert len(set(ids)) == len(ids) and all(len(i) == 24 for i in ids)


def test_a_narrowed_token_cannot_download_an_earlier_broader_export(
    org: Any, two_patients: list[Any], make_client: Any
) -> None:
    """Issue 15 (Low): a token narrowed to system/Observation.rs downloaded an earlier export's
    Patient.ndjson. Export files follow the requesting token's scopes, not only its client."""
    api_client, secret = make_client(org)
    full = {
        "HTTP_AUTHORIZATION": "Bearer "
        + get_token(Client(), api_client.client_id, secret).json()["access_token"]
    }
    narrow = {
        "HTTP_AUTHORIZATION": "Bearer "
        + get_token(Client(), api_client.client_id, secret, "system/Observation.rs").json()["access_token"]
    }
    status_url = _kickoff(full)
    jobs.run_due_jobs()
    base = status_url.replace("$export-status/", "$export-file/")
    assert Client().get(f"{base}/Patient.ndjson", **full).status_code == 200
    assert Client().get(status_url, **narrow).status_code == 404
    for rtype in ("Patient", "QuestionnaireResponse", "Observation"):
        response = Client().get(f"{base}/{rtype}.ndjson", **narrow)
        assert response.status_code == 404, rtype
        assert b"Examplesson" not in response.content
    assert Client().delete(status_url, **narrow).status_code == 404
    # The narrowed token's own export: its Observation file only; the broad token may read it too.
    own_status = _kickoff(narrow)
    jobs.run_due_jobs()
    own = Client().get(own_status, **narrow).json()
    assert [o["type"] for o in own["output"]] == ["Observation"]
    assert Client().get(own["output"][0]["url"], **narrow).status_code == 200
    own_base = own_status.replace("$export-status/", "$export-file/")
    assert Client().get(f"{own_base}/Patient.ndjson", **narrow).status_code == 404
    assert Client().get(own["output"][0]["url"], **full).status_code == 200
