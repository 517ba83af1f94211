"""Registering a patient who may already be registered: the same date of birth (or the day and month
swapped) and a matching name (the same, an initial or a shortened given name, accents and case aside, the
family name one typing slip apart, or given and family swapped) holds the registration back and names the
patients the user may open, with why; a patient at a site the user does not cover is counted, not named.
Saving anyway needs the reason this is a different person; both are audited. Different people (another birth
date, another given name, a family name two letters apart, another organization) register without a
question."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.test import Client
from tests.csrf_pages import csrf_client, post_from

from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients import services
from ketaclinic.patients.matching import one_edit_apart, swapped_day_month
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
    [
        {"date_of_birth": date(1975, 3, 10)},
        {"given_name": "Kristoffer"},
        {"family_name": "Odegaarde"},  # two letters apart
        {"family_name": "Odegaard", "date_of_birth": date(1975, 9, 4)},  # a slip, but another birth date
    ],
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


# --- issue 14: a one-letter surname typo and a day/month swap in the birth date -----------------------------


QUARTERMAINE = {
    "given_name": "Allan",
    "family_name": "Quartermaine",
    "date_of_birth": date(1981, 4, 7),
    "sex": "male",
}


@pytest.fixture
def allan(front_desk: Any) -> Any:
    return services.create_patient(user=front_desk, data=QUARTERMAINE)


@pytest.mark.parametrize(
    "overrides, why",
    [
        ({"family_name": "Quartermain"}, "family name one letter apart"),  # the case
        ({"family_name": "Quatermaine"}, "family name one letter apart"),  # a letter left out
        ({"family_name": "Quartermeine"}, "family name one letter apart"),  # a letter changed
        ({"family_name": "Quartremaine"}, "family name one letter apart"),  # two letters swapped
        ({"date_of_birth": date(1981, 7, 4)}, "birth date with day and month swapped"),  # 07/04 for 04/07
        (
            {"family_name": "Quartermain", "date_of_birth": date(1981, 7, 4)},
            "birth date with day and month swapped; family name one letter apart",
        ),
        ({"given_name": "A", "family_name": "QUARTERMAIN"}, "family name one letter apart"),
    ],
)
def test_a_surname_typo_or_a_swapped_birth_date_is_held_back_and_says_why(
    allan: Any, front_desk: Any, overrides: dict[str, Any], why: str
) -> None:
    with pytest.raises(services.PossibleDuplicate) as err:
        services.create_patient(user=front_desk, data={**QUARTERMAINE, **overrides})
    assert err.value.visible == [allan]
    assert [c.reason for c in err.value.candidates] == [why]
    assert (
        f"{allan.mrn} Quartermaine, Allan (Main Street; {why})" in err.value.errors["not_a_duplicate_reason"]
    )
    assert Patient.objects.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"date_of_birth": date(1981, 4, 8)},  # another day
        {"date_of_birth": date(1981, 7, 14)},  # not a swap
        {"family_name": "Quartermaine-Smith"},  # far apart
        {"family_name": "Quartermain", "given_name": "Bertha"},  # a typo, but another given name
        {"given_name": "Quartermain", "family_name": "Allan"},  # swapped names must match exactly
    ],
)
def test_different_people_are_not_held_back(allan: Any, front_desk: Any, overrides: dict[str, Any]) -> None:
    other = services.create_patient(user=front_desk, data={**QUARTERMAINE, **overrides})
    assert other.pk != allan.pk


def test_only_dates_that_read_both_ways_are_swapped() -> None:
    assert swapped_day_month(date(1981, 4, 7)) == date(1981, 7, 4)
    assert swapped_day_month(date(1981, 4, 13)) is None  # "13/04" has no 13th month
    assert swapped_day_month(date(1981, 5, 5)) is None  # reads the same both ways
    assert one_edit_apart("quartermain", "quartermaine") and one_edit_apart("smyth", "smith")
    assert not one_edit_apart("smith", "smith") and not one_edit_apart("quartermain", "quartermaines")


def test_a_birth_date_after_the_12th_is_matched_exactly(front_desk: Any) -> None:
    data = {**QUARTERMAINE, "date_of_birth": date(1981, 4, 13)}
    first = services.create_patient(user=front_desk, data=data)
    with pytest.raises(services.PossibleDuplicate) as err:
        services.create_patient(user=front_desk, data={**data, "family_name": "Quartermain"})
    assert err.value.visible == [first]


def test_the_typo_check_stays_within_the_organization(allan: Any, outsider: Any) -> None:
    data = {**QUARTERMAINE, "family_name": "Quartermain", "date_of_birth": date(1981, 7, 4)}
    assert services.create_patient(user=outsider, data=data).organization_id != allan.organization_id


def test_front_desk_page_names_the_typo_match_then_saves_with_a_reason(
    allan: Any, front_desk: Any, sign_in: Any
) -> None:
    client = csrf_client(sign_in, front_desk)
    form = {
        "given_name": "Allan",
        "family_name": "Quartermain",
        "date_of_birth": "1981-07-04",
        "sex": "male",
    }
    held = post_from(client, "/patients/new/", "/patients/new/", form)
    assert held.status_code == 422
    page = held.content.decode()
    listed = page[page.index('id="possible-duplicates"') :]
    assert allan.mrn in listed and "Quartermaine, Allan" in listed
    assert "birth date with day and month swapped; family name one letter apart" in listed
    assert Patient.objects.count() == 1
    saved = post_from(
        client,
        "/patients/new/",
        "/patients/new/",
        {**form, "not_a_duplicate_reason": "Cousin, same town; ID and address checked"},
    )
    assert saved.status_code == 302 and Patient.objects.count() == 2
    entry = AuditEntry.objects.filter(action="add", category="demographics").latest("id")
    assert json.loads(entry.after)["possible_duplicates"] == [str(allan.pk)]
