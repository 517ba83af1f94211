"""Registering a patient who may already be registered: the same date of birth and a matching name (the
same, an initial or a shortened given name, accents and case aside, or given and family swapped) holds the
registration back and names the patients the user may open; a patient at a site the user does not cover is
counted, not named. Saving anyway needs the reason this is a different person; both are audited. Different
people (another birth date, another given name, another organization) register without a question."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.test import Client

from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients import services
from ketaclinic.patients.models import Patient

DATA = {
    "given_name": "Christopher",
    "family_name": "Ødegård",
    "date_of_birth": date(1975, 3, 9),
    "sex": "male",
}


def _data(**overrides: Any) -> dict[str, Any]:
    return {**DATA, **overrides}


@pytest.fixture
def chris(nurse: Any) -> Any:
    return services.create_patient(user=nurse, data=_data())


@pytest.mark.parametrize(
    "given, family",
    [("Christopher", "Ødegård"), ("chris", "ODEGARD"), ("C", "Odegard"), ("Odegard", "Christopher")],
)
def test_a_matching_name_and_birth_date_is_held_back_and_named(
    chris: Any, nurse: Any, given: str, family: str
) -> None:
    with pytest.raises(services.PossibleDuplicate) as err:
        services.create_patient(user=nurse, data=_data(given_name=given, family_name=family))
    assert err.value.visible == [chris] and err.value.elsewhere == 0
    reason = err.value.errors["not_a_duplicate_reason"]
    assert chris.mrn in reason and "Ødegård, Christopher" in reason
    assert Patient.objects.count() == 1
    shown = AuditEntry.objects.filter(detail="shown as a possible duplicate at registration")
    assert list(shown.values_list("patient_id", "action")) == [(chris.pk, "query")]


@pytest.mark.parametrize(
    "overrides",
    [{"date_of_birth": date(1975, 3, 10)}, {"given_name": "Kristoffer"}, {"family_name": "Odegaard"}],
)
def test_different_people_register_without_a_question(chris: Any, nurse: Any, overrides: Any) -> None:
    other = services.create_patient(user=nurse, data=_data(**overrides))
    assert other.pk != chris.pk and Patient.objects.count() == 2


def test_another_organization_is_not_searched(chris: Any, outsider: Any) -> None:
    assert services.create_patient(user=outsider, data=_data()).organization_id != chris.organization_id


def test_a_patient_at_a_site_the_user_does_not_cover_is_counted_not_named(
    admin: Any, nurse: Any, second_site: Any
) -> None:
    there = services.create_patient(user=admin, data=_data(site=second_site))
    with pytest.raises(services.PossibleDuplicate) as err:
        services.create_patient(user=nurse, data=_data())
    assert err.value.visible == [] and err.value.elsewhere == 1
    message = err.value.errors["not_a_duplicate_reason"]
    assert "1 at a site you do not cover" in message and there.mrn not in message
    assert not AuditEntry.objects.filter(detail="shown as a possible duplicate at registration").exists()


def test_registering_anyway_needs_a_reason_which_is_audited(chris: Any, nurse: Any) -> None:
    with pytest.raises(services.PossibleDuplicate):
        services.create_patient(user=nurse, data=_data(), not_a_duplicate_reason="  ")
    twin = services.create_patient(
        user=nurse, data=_data(), not_a_duplicate_reason="Twin brother, ID checked at the desk"
    )
    assert twin.pk != chris.pk
    entry = AuditEntry.objects.get(patient=twin, action="add")
    after = json.loads(entry.after)
    assert after["not_a_duplicate_reason"] == "Twin brother, ID checked at the desk"
    assert after["possible_duplicates"] == [str(chris.pk)]
    assert entry.detail == "registered despite possible duplicates"


def test_registration_page_lists_the_candidates_then_saves_with_a_reason(
    chris: Any, front_desk: Any, site: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), front_desk)
    form = {
        "given_name": "Chris",
        "family_name": "Odegard",
        "date_of_birth": "1975-03-09",
        "sex": "male",
        "phone": "555 0100",
    }
    held = client.post("/patients/new/", form)
    assert held.status_code == 422
    page = held.content.decode()
    assert 'id="possible-duplicates"' in page and f"/patients/{chris.pk}/" in page and chris.mrn in page
    assert 'value="555 0100"' in page  # what was typed is kept
    assert Patient.objects.count() == 1
    saved = client.post("/patients/new/", {**form, "not_a_duplicate_reason": "Different father, checked"})
    assert saved.status_code == 302
    assert Patient.objects.count() == 2


def test_api_answers_422_on_the_reason_field_then_201(chris: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    body = {
        "given_name": "Christopher",
        "family_name": "Odegard",
        "date_of_birth": "1975-03-09",
        "sex": "male",
    }
    held = client.post("/api/patients", data=json.dumps(body), content_type="application/json")
    assert held.status_code == 422
    detail = held.json()["detail"]
    assert detail[0]["loc"] == ["body", "not_a_duplicate_reason"] and chris.mrn in detail[0]["msg"]
    ok = client.post(
        "/api/patients",
        data=json.dumps({**body, "not_a_duplicate_reason": "Namesake, different address and GP"}),
        content_type="application/json",
    )
    assert ok.status_code == 201 and Patient.objects.count() == 2


def test_changing_a_name_into_another_patients_is_held_back_too(chris: Any, nurse: Any, sign_in: Any) -> None:
    other = services.create_patient(user=nurse, data=_data(given_name="Kristoffer"))
    with pytest.raises(services.PossibleDuplicate) as err:
        services.update_patient(
            user=nurse, patient=other, data={"given_name": "Christopher"}, expected_version=other.version
        )
    assert err.value.visible == [chris]
    other.refresh_from_db()
    assert other.given_name == "Kristoffer"
    # Other changes to a record that already matches someone (e.g. a twin registered with a reason) pass.
    services.update_patient(
        user=nurse, patient=chris, data={"phone": "555 0123"}, expected_version=chris.version
    )
    client = sign_in(Client(), nurse)
    held = client.patch(
        f"/api/patients/{other.pk}",
        data=json.dumps({"version": other.version, "given_name": "Chris"}),
        content_type="application/json",
    )
    assert held.status_code == 422 and held.json()["detail"][0]["loc"] == ["body", "not_a_duplicate_reason"]
    ok = client.patch(
        f"/api/patients/{other.pk}",
        data=json.dumps(
            {"version": other.version, "given_name": "Chris", "not_a_duplicate_reason": "Cousin"}
        ),
        content_type="application/json",
    )
    assert ok.status_code == 200
    entry = AuditEntry.objects.filter(patient=other, action="change").latest("id")
    assert json.loads(entry.after)["not_a_duplicate_reason"] == "Cousin"
