"""The clinic's age range at registration (issue 14: "a 2-year-old registered in an adult clinic without a
word"), and body size never rounded without a word. Pages with CSRF enforced, and the JSON API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from tests.chairside.journey import Api
from tests.pages import visible

from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients.models import Patient

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
CHILD = {
    "given_name": "Pip",
    "family_name": "Smallwood",
    "date_of_birth": "2024-05-01",  # 2 years old on 2026-12-07
    "sex": "male",
}
RANGE = "outside this clinic's age range, 18 and over"


@pytest.fixture(autouse=True)
def _today() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


def _register(sign_in: Any, user: Any, data: dict[str, str]) -> Any:
    client = sign_in(Client(enforce_csrf_checks=True), user)
    client.get("/patients/new/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post("/patients/new/", {**data, "csrfmiddlewaretoken": token})


def test_a_two_year_old_is_refused_until_someone_says_why_then_the_chart_shows_it(
    front_desk: Any, nurse: Any, outsider: Any, sign_in: Any
) -> None:
    refused = _register(sign_in, front_desk, CHILD)
    assert refused.status_code == 422
    text = visible(refused.content.decode())
    assert f"Nothing was saved: aged 2: {RANGE} (clinic default, unconfirmed: clinical.md gives doses" in text
    assert 'name="outside_age_range_reason"' in refused.content.decode()
    assert not Patient.objects.exists()

    too_short = _register(sign_in, front_desk, {**CHILD, "outside_age_range_reason": "ok"})
    assert too_short.status_code == 422 and not Patient.objects.exists()

    reason = "Paediatric referral accepted by Dr Prescriber1 under the clinic's pain protocol"
    saved = _register(sign_in, front_desk, {**CHILD, "outside_age_range_reason": reason})
    assert saved.status_code == 302
    patient = Patient.objects.get(family_name="Smallwood")
    assert patient.age_range_reason == reason
    entry = AuditEntry.objects.get(action="add", object_type="Patient", patient=patient)
    assert entry.detail == "registered outside the clinic's age range (18 and over)"
    assert json.loads(entry.after)["outside_age_range_reason"] == reason

    chart = visible(sign_in(Client(), nurse).get(f"/patients/{patient.pk}/").content.decode())
    assert "born 2024-05-01 (age 2)" in chart
    assert f"Outside the clinic's age range: aged 2: {RANGE}" in chart
    assert f"Registered with the reason: “{reason}”" in chart
    assert sign_in(Client(), outsider).get(f"/patients/{patient.pk}/").status_code == 404


def test_an_adult_chart_says_nothing_about_the_range(nurse: Any, patient: Any, sign_in: Any) -> None:
    chart = visible(sign_in(Client(), nurse).get(f"/patients/{patient.pk}/").content.decode())
    assert "(age 46)" in chart and "age range" not in chart


def test_the_eighteenth_birthday_is_inside_the_range(front_desk: Any, sign_in: Any) -> None:
    assert _register(sign_in, front_desk, {**CHILD, "date_of_birth": "2008-12-08"}).status_code == 422  # 17
    assert _register(sign_in, front_desk, {**CHILD, "date_of_birth": "2008-12-07"}).status_code == 302  # 18


def test_the_api_refuses_naming_the_range_and_keeps_the_reason(nurse: Any, sign_in: Any) -> None:
    api = Api(nurse, sign_in)
    refused = api.refused("/patients", CHILD)
    assert refused["outside_age_range_reason"].startswith(f"aged 2: {RANGE} (clinic default, unconfirmed")
    created = api.ok(
        "/patients", {**CHILD, "outside_age_range_reason": "Referral accepted by the prescriber"}, status=201
    )
    assert created["age_range_reason"] == "Referral accepted by the prescriber"


def test_a_birth_date_corrected_to_a_child_is_held_back_the_same_way(
    nurse: Any, patient: Any, sign_in: Any
) -> None:
    api = Api(nurse, sign_in)
    response = api.client.patch(
        f"/api/patients/{patient.pk}",
        data=json.dumps({"version": 1, "date_of_birth": "2020-01-01"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=api.token,
    )
    assert response.status_code == 422
    assert "aged 6" in response.json()["detail"][0]["msg"]
    patient.refresh_from_db()
    assert patient.date_of_birth.year == 1980


def test_a_clinic_sets_its_own_range(front_desk: Any, sign_in: Any, settings: Any) -> None:
    settings.KETACLINIC_PATIENT_MIN_AGE, settings.KETACLINIC_PATIENT_MAX_AGE = 16, 65
    assert _register(sign_in, front_desk, {**CHILD, "date_of_birth": "2009-12-07"}).status_code == 302  # 17
    old = _register(sign_in, front_desk, {**CHILD, "family_name": "Elder", "date_of_birth": "1950-01-01"})
    assert old.status_code == 422
    assert "aged 76: outside this clinic's age range, 16–65 (this clinic's setting" in visible(
        old.content.decode()
    )


def test_a_weight_with_two_decimals_is_refused_not_rounded(nurse: Any, sign_in: Any) -> None:
    adult = {**CHILD, "date_of_birth": "1980-01-01", "weight_kg": "70.25"}
    page = _register(sign_in, nurse, adult)
    assert page.status_code == 422
    assert page.context["form"].errors["weight_kg"] == [
        "Weight (kg) 70.25 kg has more decimals than the record keeps (1): round it yourself, e.g. 70.3 kg."
    ]
    refused = Api(nurse, sign_in).refused("/patients", {**adult, "weight_kg": 70.25})
    assert refused["weight_kg"].startswith("70.25 kg has more decimals than the record keeps (1)")
    assert not Patient.objects.exists()
