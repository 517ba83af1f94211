"""CSRF with the real protections on (``csrf_client``: ``Client(enforce_csrf_checks=True)``): the cookie-signed-in
web pages and the session-authenticated JSON API refuse a write without the CSRF token and accept it with
the token; /fhir (bearer tokens, tests/fhir/test_http.py) needs none."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import csrf_token

from ketaclinic.patients.models import Patient

NEW_PATIENT = {
    "given_name": "Nadia",
    "family_name": "Okafor",
    "date_of_birth": "1984-02-11",
    "sex": "female",
    "weight_kg": "70",
    "height_cm": "170",
}


def test_web_forms_refuse_a_signed_in_post_without_the_csrf_token(
    csrf_client: Any, sign_in: Any, nurse: Any, site: Any
) -> None:
    sign_in(csrf_client, nurse)
    forms = [
        ("/patients/new/", NEW_PATIENT),
        ("/on-duty/", {"site": str(site.pk)}),
        ("/accounts/logout/", {}),
    ]
    for url, data in forms:
        response = csrf_client.post(url, data)
        assert response.status_code == 403, url
        assert "CSRF" in response.content.decode(), url
    nurse.refresh_from_db()
    assert not Patient.objects.exists() and nurse.on_duty_site_id is None
    assert csrf_client.get("/").status_code == 200  # still signed in: the logout was refused too
    # A wrong token is no better than none.
    assert (
        csrf_client.post("/patients/new/", {**NEW_PATIENT, "csrfmiddlewaretoken": "x" * 64}).status_code
        == 403
    )


def test_web_forms_accept_the_same_post_with_the_csrf_token(
    csrf_client: Any, sign_in: Any, nurse: Any, site: Any
) -> None:
    sign_in(csrf_client, nurse)
    token = csrf_token(csrf_client, "/")
    created = csrf_client.post("/patients/new/", {**NEW_PATIENT, "csrfmiddlewaretoken": token})
    assert created.status_code == 302 and Patient.objects.get().given_name == "Nadia"
    on_duty = csrf_client.post("/on-duty/", {"site": str(site.pk), "csrfmiddlewaretoken": token})
    assert on_duty.status_code == 302
    nurse.refresh_from_db()
    assert nurse.on_duty_site_id == site.pk
    assert csrf_client.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert csrf_client.get("/").status_code == 302  # signed out


def test_the_sign_in_form_needs_the_csrf_token(csrf_client: Any, nurse: Any) -> None:
    from tests.conftest import PASSWORD

    refused = csrf_client.post("/accounts/login/", {"username": nurse.username, "password": PASSWORD})
    assert refused.status_code == 403
    token = csrf_token(csrf_client)
    accepted = csrf_client.post(
        "/accounts/login/", {"username": nurse.username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302


def test_the_session_api_needs_the_csrf_header(
    csrf_client: Any, sign_in: Any, nurse: Any, patient: Any
) -> None:
    sign_in(csrf_client, nurse)
    url = f"/api/patients/{patient.pk}/scales"
    body = json.dumps({"instrument": "phq9", "answers": {str(i): 0 for i in range(1, 10)}})
    refused = csrf_client.post(url, body, content_type="application/json")
    assert refused.status_code == 403
    assert not patient.scales.exists()
    token = csrf_token(csrf_client, "/")
    accepted = csrf_client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code in (200, 201), accepted.content
    assert patient.scales.count() == 1
