"""Who sees what: system, user and patient scopes; narrowed types; organizations never cross; audit."""

from __future__ import annotations

from typing import Any

from django.test import Client
from tests.fhir.conftest import at, phq9

from ketaclinic.audit.models import AuditEntry


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []))


def test_no_token_or_a_bad_token_is_401_and_audited(org: Any, patient: Any) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nonsense"}, {"HTTP_AUTHORIZATION": "Basic abc"}):
        response = Client().get(f"/fhir/Patient/{patient.pk}", **headers)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/fhir+json"
        assert response.json()["issue"][0]["code"] == "login"
    # Only the presented (bad) bearer token is audited; requests without one are refused silently.
    (denied,) = AuditEntry.objects.filter(action="denied", category="fhir")
    assert denied.client == "fhir" and denied.outcome == "denied" and "unknown bearer token" in denied.detail


def test_metadata_and_smart_configuration_need_no_token(db: Any) -> None:
    assert Client().get("/fhir/metadata").status_code == 200
    config = Client().get("/fhir/.well-known/smart-configuration")
    assert config.status_code == 200
    assert config.json()["token_endpoint"] == "http://testserver/fhir/token"
    assert "system/*.rs" in config.json()["scopes_supported"]


def test_system_scope_sees_the_whole_organization_only(
    org: Any, nurse: Any, make_patient: Any, outsider_patient: Any, bearer: Any
) -> None:
    first, second = make_patient(nurse), make_patient(nurse, given_name="Second")
    headers = bearer(org)
    assert _ids(Client().get("/fhir/Patient", **headers)) == sorted([str(first.pk), str(second.pk)])
    # Another organization's patient: not found by id, absent from searches (by _id and by patient).
    assert Client().get(f"/fhir/Patient/{outsider_patient.pk}", **headers).status_code == 404
    assert _ids(Client().get(f"/fhir/Patient?_id={outsider_patient.pk}", **headers)) == []
    assert _ids(Client().get(f"/fhir/Observation?patient=Patient/{outsider_patient.pk}", **headers)) == []
    everything = Client().get(f"/fhir/Patient/{outsider_patient.pk}/$everything", **headers)
    assert everything.status_code == 404


def test_other_organizations_token_sees_nothing_of_ours(
    org: Any, other_org: Any, nurse: Any, patient: Any, outsider_patient: Any, bearer: Any, record_scale: Any
) -> None:
    scale = record_scale(nurse, patient, "phq9", phq9(1), at(2))
    theirs = bearer(other_org)
    assert _ids(Client().get("/fhir/Patient", **theirs)) == [str(outsider_patient.pk)]
    assert _ids(Client().get("/fhir/Observation", **theirs)) == []
    assert Client().get(f"/fhir/Observation/score-{scale.pk}", **theirs).status_code == 404
    assert Client().get(f"/fhir/QuestionnaireResponse/{scale.pk}", **theirs).status_code == 404


def test_narrowed_type_scope_is_403_for_other_types(org: Any, patient: Any, bearer: Any) -> None:
    headers = bearer(org, "system/Patient.rs")
    assert Client().get(f"/fhir/Patient/{patient.pk}", **headers).status_code == 200
    response = Client().get("/fhir/Observation", **headers)
    assert response.status_code == 403 and response.json()["issue"][0]["code"] == "forbidden"
    read_only = bearer(org, "system/Patient.r")
    assert Client().get(f"/fhir/Patient/{patient.pk}", **read_only).status_code == 200
    assert Client().get("/fhir/Patient", **read_only).status_code == 403  # no s: no search
    denied = AuditEntry.objects.filter(action="denied", category="fhir").order_by("seq")
    assert denied.count() == 2 and "Observation" in denied[0].detail


def test_patient_scope_confines_to_the_bound_patients_compartment(
    org: Any, nurse: Any, make_patient: Any, bearer: Any, record_scale: Any
) -> None:
    mine, other = make_patient(nurse), make_patient(nurse, given_name="Other")
    own_scale = record_scale(nurse, mine, "phq9", phq9(1), at(2))
    other_scale = record_scale(nurse, other, "phq9", phq9(2), at(2))
    headers = bearer(org, "patient/*.rs", patient=mine)
    assert _ids(Client().get("/fhir/Patient", **headers)) == [str(mine.pk)]
    assert _ids(Client().get("/fhir/Observation", **headers)) == [f"score-{own_scale.pk}"]
    assert _ids(Client().get(f"/fhir/Observation?patient={other.pk}", **headers)) == []
    assert Client().get(f"/fhir/Patient/{other.pk}", **headers).status_code == 404
    assert Client().get(f"/fhir/QuestionnaireResponse/{other_scale.pk}", **headers).status_code == 404
    assert Client().get(f"/fhir/Patient/{other.pk}/$everything", **headers).status_code == 404
    everything = Client().get(f"/fhir/Patient/{mine.pk}/$everything", **headers)
    assert _ids(everything) == sorted([str(mine.pk), f"score-{own_scale.pk}", str(own_scale.pk)])


def test_token_response_names_the_patient(org: Any, patient: Any, make_client: Any) -> None:
    from tests.fhir.conftest import get_token

    api_client, secret = make_client(org, "patient/*.rs", patient=patient)
    assert get_token(Client(), api_client.client_id, secret).json()["patient"] == str(patient.pk)


def test_user_scope_follows_the_staff_members_sites_and_role(
    org: Any,
    site: Any,
    second_site: Any,
    admin: Any,
    nurse: Any,
    front_desk: Any,
    make_patient: Any,
    bearer: Any,
    record_scale: Any,
) -> None:
    here = make_patient(nurse)
    there = make_patient(admin, site=second_site, given_name="North")
    record_scale(nurse, here, "phq9", phq9(1), at(2))
    record_scale(nurse, there, "phq9", phq9(1), at(2))
    as_nurse = bearer(org, "user/*.rs", acting_user=nurse)
    assert _ids(Client().get("/fhir/Patient", **as_nurse)) == [str(here.pk)]  # the nurse covers "main" only
    assert len(_ids(Client().get("/fhir/Observation", **as_nurse))) == 1
    as_front_desk = bearer(org, "user/*.rs", acting_user=front_desk)
    assert _ids(Client().get("/fhir/Patient", **as_front_desk)) == [str(here.pk)]
    assert Client().get("/fhir/Observation", **as_front_desk).status_code == 403  # not a clinician


def test_each_disclosed_patient_is_audited_with_the_client_id(
    org: Any, nurse: Any, make_patient: Any, make_client: Any, record_scale: Any
) -> None:
    from tests.fhir.conftest import get_token

    first, second = make_patient(nurse), make_patient(nurse, given_name="Second")
    record_scale(nurse, first, "phq9", phq9(1), at(2))
    api_client, secret = make_client(org)
    raw = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    before = AuditEntry.objects.count()
    Client().get("/fhir/Patient", **headers)
    rows = list(AuditEntry.objects.filter(seq__gt=before).order_by("seq"))
    assert {r.patient_id for r in rows} == {first.pk, second.pk}
    assert all(
        r.action == "query"
        and r.client == "fhir"
        and api_client.client_id in r.detail
        and r.user_id == api_client.service_user_id
        for r in rows
    )
    before = AuditEntry.objects.count()
    Client().get("/fhir/Observation?code=nothing-matches", **headers)
    (empty,) = AuditEntry.objects.filter(seq__gt=before)
    assert empty.patient_id is None and empty.object_type == "Observation"
