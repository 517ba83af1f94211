"""Intake values are kept as typed or refused with their limit, never blanked or cut (issue 14: "intake heart
rate 0 stored as blank"; the notes were cut at 2,000 and 4,000 characters without a word)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client
from tests.assessment.test_intake_screening import form_post
from tests.chairside.journey import Api

from ketaclinic.assessment.models import Intake


def _page(sign_in: Any, user: Any, patient: Any, **fields: str) -> Any:
    client = sign_in(Client(enforce_csrf_checks=True), user)
    client.get(f"/patients/{patient.pk}/intake/edit/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post(
        f"/patients/{patient.pk}/intake/edit/", {**form_post(**fields), "csrfmiddlewaretoken": token}
    )


def test_a_heart_rate_of_0_is_refused_with_its_range_not_stored_as_blank(
    nurse: Any, patient: Any, sign_in: Any
) -> None:
    response = _page(sign_in, nurse, patient, heart_rate="0")
    assert response.status_code == 422
    assert response.context["form"].errors["heart_rate"] == ["0 is outside 20–250"]
    assert not Intake.objects.filter(patient=patient).exists()


def test_a_moca_of_0_is_kept_as_0(nurse: Any, patient: Any, sign_in: Any) -> None:
    assert _page(sign_in, nurse, patient, moca_score="0", stop_bang_score="0").status_code == 302
    data = Intake.objects.get(patient=patient).data
    assert data["moca_score"] == 0 and data["stop_bang_score"] == 0  # a score, not "not recorded"


def test_notes_past_their_limit_are_refused_not_cut(nurse: Any, patient: Any, sign_in: Any) -> None:
    response = _page(sign_in, nurse, patient, cardiac_history_notes="c" * 2001)
    assert response.status_code == 422
    assert response.context["form"].errors["cardiac_history_notes"] == [
        "Cardiac history notes is 2,001 characters, more than the 2,000 it may have: nothing was saved"
    ]
    api = Api(nurse, sign_in)  # the JSON API, CSRF enforced
    body = {"data": {"assessed_on": "2026-11-20", "notes": "n" * 4001}}
    assert api.refused(f"/assessment/patients/{patient.pk}/intakes", body) == {
        "data.notes": "Notes is 4,001 characters, more than the 4,000 it may have: nothing was saved"
    }
    assert not Intake.objects.filter(patient=patient).exists()
    body["data"]["notes"] = "n" * 4000
    api.ok(f"/assessment/patients/{patient.pk}/intakes", body, status=201)
    assert Intake.objects.get(patient=patient).data["notes"] == "n" * 4000  # whole
