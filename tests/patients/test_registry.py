"""Patient registry: register, search, edit, chart; validation; organization and site isolation; audit."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from tests.clock import clinic_today

from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients import services
from ketaclinic.patients.models import Patient

VALID = {
    "given_name": "Juniper",
    "family_name": "Quillfeather",
    "date_of_birth": "1979-03-02",
    "sex": "female",
    "weight_kg": "82.5",
    "height_cm": "170",
    "escort_name": "Robin Quillfeather",
    "escort_phone": "555-0142",
}


def _api(client: Client, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    call = getattr(client, method)
    return (
        call(path, data=json.dumps(body or {}), content_type="application/json")
        if body is not None
        else call(path)
    )


def test_register_then_find_by_name_mrn_and_birth_date(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    response = client.post("/patients/new/", VALID)
    assert response.status_code == 302
    patient = Patient.objects.get(family_name="Quillfeather")
    assert patient.organization_id == nurse.organization_id and patient.mrn.startswith("K")
    for query in (
        {"name": "quill"},
        {"name": "Juniper Q"},
        {"mrn": patient.mrn},
        {"date_of_birth": "1979-03-02"},
    ):
        page = client.post("/patients/", query)
        assert [p.pk for p in page.context["result"].patients] == [patient.pk], query
    assert client.post("/patients/", {"name": "quillx"}).context["result"].total == 0


def test_names_match_without_accents_or_case(nurse: Any, make_patient: Any) -> None:
    p = make_patient(nurse, given_name="Zoë", family_name="Ørsted-Núñez")
    assert services.search_patients(user=nurse, name="ORSTED").patients == [p]
    assert services.search_patients(user=nurse, name="zoe ors").patients == [p]
    assert (
        services.search_patients(user=nurse, name="zoe nun").patients == []
    )  # prefix of a name, not any word


def test_invalid_fields_are_all_named_and_nothing_is_written(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    before = (Patient.objects.count(), AuditEntry.objects.filter(action="add").count())
    bad = dict(
        VALID, weight_kg="400", height_cm="90", date_of_birth=(clinic_today() + timedelta(days=3)).isoformat()
    )
    response = client.post("/patients/new/", bad)
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert "outside the accepted range 20–350 kg" in errors["weight_kg"][0]
    assert "outside the accepted range 100–250 cm" in errors["height_cm"][0]
    assert "is in the future" in errors["date_of_birth"][0]
    assert (Patient.objects.count(), AuditEntry.objects.filter(action="add").count()) == before


def test_api_answers_422_naming_the_field_and_writes_nothing(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    before = (Patient.objects.count(), AuditEntry.objects.count())
    body = dict(VALID, weight_kg=19.9)
    response = _api(client, "post", "/api/patients", body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail == [
        {
            "loc": ["body", "weight_kg"],
            "msg": "19.9 kg is outside the accepted range 20–350 kg",
            "type": "value_error",
        }
    ]
    assert (Patient.objects.count(), AuditEntry.objects.count()) == before


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("weight_kg", 350.1, "outside the accepted range"),
        ("height_cm", 250.5, "outside the accepted range"),
        ("sex", "x", "is not one of"),
        ("email", "not-an-email", "not an email address"),
    ],
)
def test_api_validation_edges(nurse: Any, sign_in: Any, field: str, value: Any, reason: str) -> None:
    client = sign_in(Client(), nurse)
    response = _api(client, "post", "/api/patients", dict(VALID, **{field: value}))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field] and reason in error["msg"]


@pytest.mark.parametrize("weight,height", [(20, 100), (350, 250)])
def test_range_limits_are_inclusive(nurse: Any, sign_in: Any, weight: float, height: float) -> None:
    client = sign_in(Client(), nurse)
    response = _api(client, "post", "/api/patients", dict(VALID, weight_kg=weight, height_cm=height))
    assert response.status_code == 201, response.content


def test_api_create_read_update(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    created = _api(client, "post", "/api/patients", dict(VALID, weight_kg=100, height_cm=200)).json()
    assert created["bmi"] == 25.0  # 100 / 2.0² = 25.0
    read = _api(client, "get", f"/api/patients/{created['id']}").json()
    assert read["family_name"] == "Quillfeather" and read["version"] == 1
    patched = _api(client, "patch", f"/api/patients/{created['id']}", {"version": 1, "weight_kg": 90})
    assert patched.status_code == 200 and patched.json()["version"] == 2
    change = AuditEntry.objects.get(action="change", patient_id=created["id"])
    assert json.loads(change.before) == {"weight_kg": "100.0"} and json.loads(change.after) == {
        "weight_kg": "90.0"
    }


def test_concurrent_edit_is_refused_and_nothing_is_lost(nurse: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), nurse)
    first = _api(client, "patch", f"/api/patients/{patient.pk}", {"version": 1, "phone": "555-1000"})
    assert first.status_code == 200
    stale = _api(client, "patch", f"/api/patients/{patient.pk}", {"version": 1, "phone": "555-2000"})
    assert stale.status_code == 409 and "changed this record" in stale.json()["detail"]
    assert Patient.objects.get(pk=patient.pk).phone == "555-1000"


def test_search_travels_in_the_body_not_the_url(nurse: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), nurse)
    response = _api(client, "post", "/api/patients/search", {"name": "exam"})
    assert response.status_code == 200 and response.json()["total"] == 1
    page = client.get("/patients/")
    assert b'method="post"' in page.content


def test_search_is_paged(nurse: Any, make_patient: Any) -> None:
    for i in range(30):
        make_patient(nurse, given_name=f"Pat{i:02d}", family_name="Pagington", mrn=f"P{i:03d}")
    first = services.search_patients(user=nurse, name="pagington", page=1)
    second = services.search_patients(user=nurse, name="pagington", page=2)
    assert (first.total, first.pages, len(first.patients), len(second.patients)) == (30, 2, 25, 5)
    assert not {p.pk for p in first.patients} & {p.pk for p in second.patients}


def test_reads_and_writes_are_audited(nurse: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), nurse)
    client.get(f"/patients/{patient.pk}/")
    reads = AuditEntry.objects.filter(patient=patient, action="query", user=nurse)
    assert reads.filter(category="demographics", detail="chart").exists()
    assert reads.filter(category="rating-scales").exists()  # the chart shows the nurse the scale trajectories


def test_another_organizations_patient_is_not_reachable_by_id(
    nurse: Any, sign_in: Any, outsider_patient: Any
) -> None:
    client = sign_in(Client(), nurse)
    assert client.get(f"/patients/{outsider_patient.pk}/").status_code == 404
    assert client.get(f"/patients/{outsider_patient.pk}/edit/").status_code == 404
    assert _api(client, "get", f"/api/patients/{outsider_patient.pk}").status_code == 404
    patch = _api(client, "patch", f"/api/patients/{outsider_patient.pk}", {"version": 1, "phone": "1"})
    assert patch.status_code == 404
    assert services.search_patients(user=nurse, name="orgpatient").total == 0
    assert Patient.objects.get(pk=outsider_patient.pk).phone == ""


def test_outsider_cannot_reach_our_patient(outsider: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), outsider)
    assert client.get(f"/patients/{patient.pk}/").status_code == 404
    assert _api(client, "get", f"/api/patients/{patient.pk}").status_code == 404


def test_a_user_without_a_role_sees_nothing(no_role: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), no_role)
    assert client.get("/patients/").status_code == 403
    assert client.get(f"/patients/{patient.pk}/").status_code == 403
    assert _api(client, "get", f"/api/patients/{patient.pk}").status_code == 403
    assert AuditEntry.objects.filter(user=no_role, action="denied").count() == 3


def test_anonymous_api_is_refused(patient: Any) -> None:
    assert Client().get(f"/api/patients/{patient.pk}").status_code == 401


def test_admin_has_no_patient_chart_access(admin: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), admin)
    assert client.get(f"/patients/{patient.pk}/").status_code == 403


def test_front_desk_registers_and_edits_demographics(front_desk: Any, sign_in: Any, patient: Any) -> None:
    client = sign_in(Client(), front_desk)
    page = client.get(f"/patients/{patient.pk}/edit/")
    assert page.status_code == 200
    response = client.post(f"/patients/{patient.pk}/edit/", dict(VALID, version=1, mrn=patient.mrn))
    assert response.status_code == 302
    assert Patient.objects.get(pk=patient.pk).family_name == "Quillfeather"


def test_chart_shows_demographics_body_size_and_change_history(
    nurse: Any, sign_in: Any, patient: Any
) -> None:
    services.update_patient(user=nurse, patient=patient, data={"weight_kg": "95"}, expected_version=1)
    page = sign_in(Client(), nurse).get(f"/patients/{patient.pk}/")
    html = page.content.decode()
    assert "Examplesson" in html and patient.mrn in html
    assert "34.9 kg/m²" in html  # 95 / 1.65² = 34.89
    assert "default, unconfirmed" in html
    history = page.context["history"]
    assert [e.action for e in history] == ["change", "add"]


def test_patient_pages_are_not_cached(nurse: Any, sign_in: Any, patient: Any) -> None:
    page = sign_in(Client(), nurse).get(f"/patients/{patient.pk}/")
    assert page["Cache-Control"] == "no-store"
    csp = page["Content-Security-Policy"]
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page["X-Content-Type-Options"] == "nosniff" and page["X-Frame-Options"] == "DENY"
    assert page["Referrer-Policy"] == "same-origin"


def test_session_cookie_is_secure_httponly_and_host_prefixed(nurse: Any) -> None:
    client = Client()
    client.post("/accounts/login/", {"username": "nurse1", "password": "correct horse battery staple"})
    cookie = client.cookies["__Host-ketaclinic-session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/" and cookie["samesite"] == "Lax"


def test_staff_see_only_patients_of_their_sites(
    org: Any, site: Any, second_site: Any, make_user: Any, make_patient: Any, sign_in: Any
) -> None:
    here = make_user("nurse-here", org, "nurse", [site])
    there = make_user("nurse-there", org, "nurse", [second_site])
    theirs = make_patient(there, given_name="North", family_name="Sider")
    assert services.search_patients(user=here, name="sider").total == 0
    response = sign_in(Client(), here).get(f"/patients/{theirs.pk}/")
    assert response.status_code == 302 and response["Location"].endswith("/break-glass/")


def test_front_desk_change_history_shows_demographics_only(
    nurse: Any, front_desk: Any, sign_in: Any, patient: Any
) -> None:
    from ketaclinic.measures import services as measures

    measures.record_administration(
        user=nurse, patient=patient, instrument="phq9", answers={str(i): 1 for i in range(1, 10)}
    )
    desk = sign_in(Client(), front_desk).get(f"/patients/{patient.pk}/")
    assert {e.category for e in desk.context["history"]} == {"demographics"}
    clinic = sign_in(Client(), nurse).get(f"/patients/{patient.pk}/")
    assert {e.category for e in clinic.context["history"]} == {"demographics"}  # scores live in their section
