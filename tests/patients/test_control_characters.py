"""Issue 15: a NUL byte in a patient's name was stored. Control characters are refused on every path: the
registration page (the form's one-line fields refuse line breaks too), any page's form (the text-input
middleware), and the service the API and the pages share."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from tests.pages import visible

from ketaclinic.patients import services
from ketaclinic.patients.models import Patient


def _form(**extra: str) -> dict[str, str]:
    return {
        "given_name": "Nadia",
        "family_name": "Okafor",
        "date_of_birth": "1984-02-11",
        "sex": "female",
        "weight_kg": "70",
        "height_cm": "170",
    } | extra


def _post(client: Client, url: str, data: dict[str, str]) -> Any:
    client.get(url)
    return client.post(url, {**data, "csrfmiddlewaretoken": client.cookies[settings.CSRF_COOKIE_NAME].value})


@pytest.mark.parametrize("name", ["Nadia\x00", "Na\x07dia", "Nadia\x1b[31m"])
def test_the_registration_page_refuses_a_control_character_in_a_name(
    nurse: Any, sign_in: Any, name: str
) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    response = _post(client, "/patients/new/", _form(given_name=name))
    assert response.status_code == 422
    assert "given_name" in visible(response.content.decode()) and "control character" in visible(
        response.content.decode()
    )
    assert not Patient.objects.exists()


def test_a_line_break_in_a_one_line_name_is_refused_by_the_form(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    response = _post(client, "/patients/new/", _form(family_name="Okafor\nSmith"))
    assert "this field is one line" in visible(response.content.decode())
    assert not Patient.objects.exists()


def test_the_service_refuses_a_nul_whatever_the_edge(nurse: Any) -> None:
    with pytest.raises(services.PatientValidationError) as refused:
        services.create_patient(
            user=nurse,
            data={
                "given_name": "Nadia",
                "family_name": "Oka\x00for",
                "date_of_birth": date(1984, 2, 11),
                "sex": "female",
            },
        )
    assert "NUL" in refused.value.errors["family_name"]
    assert not Patient.objects.exists()
