"""Issue 14 (the front desk's day): a patient is found by MRN in any case, ignoring spaces and dashes, and by
part of it — the start or the end — within the user's sites only; an exact MRN is listed first; every search
is audited; the page works with a CSRF-enforcing client and keeps the MRN out of the URL."""

from __future__ import annotations

from typing import Any

import pytest
from tests.chairside.journey import Api
from tests.csrf_pages import csrf_client, post_from

from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients import services
from ketaclinic.patients.matching import mrn_key, prefix_upper_bound
from ketaclinic.patients.models import Patient


@pytest.fixture
def registered(nurse: Any, make_patient: Any) -> dict[str, Any]:
    return {
        "k123": make_patient(nurse, given_name="Ada", family_name="Kettle", mrn="K000123"),
        "k1239": make_patient(nurse, given_name="Bo", family_name="Kettle", mrn="K0001239"),
        "dash": make_patient(nurse, given_name="Cy", family_name="Dasher", mrn="mrn-77-0912"),
        "zz": make_patient(nurse, given_name="Di", family_name="Zed", mrn="ZZ9"),
    }


def _found(user: Any, mrn: str) -> list[str]:
    return [p.mrn for p in services.search_patients(user=user, mrn=mrn).patients]


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("K000123", ["K000123", "K0001239"]),  # exact (and the longer MRN that starts with it)
        ("k000123", ["K000123", "K0001239"]),  # lower case
        (" K0001239 ", ["K0001239"]),
        ("k0001", ["K000123", "K0001239"]),  # the start
        ("K00012", ["K000123", "K0001239"]),
        ("123", ["K000123"]),  # the end
        ("1239", ["K0001239"]),
        ("MRN770912", ["mrn-77-0912"]),  # dashes and spaces aside
        ("mrn 77", ["mrn-77-0912"]),
        ("0912", ["mrn-77-0912"]),
        ("zz9", ["ZZ9"]),
        ("Z", ["ZZ9"]),
        ("0007", []),  # the middle of an MRN is not a match
        ("K000124", []),
        ("--", []),
    ],
)
def test_mrn_in_any_case_and_by_its_start_or_end(
    nurse: Any, registered: dict[str, Any], typed: str, expected: list[str]
) -> None:
    assert sorted(_found(nurse, typed)) == sorted(expected)


def test_the_exact_mrn_is_listed_first(nurse: Any, make_patient: Any) -> None:
    make_patient(nurse, given_name="Aaron", family_name="Aardvark", mrn="A12")
    make_patient(nurse, given_name="Zack", family_name="Zulu", mrn="12")
    # "12" is the whole of one MRN and the end of the other: the exact one first, then by name.
    assert _found(nurse, "12") == ["12", "A12"]


def test_another_site_and_another_organization_are_not_searched(
    nurse: Any, admin: Any, outsider: Any, make_patient: Any, second_site: Any
) -> None:
    make_patient(admin, given_name="Nora", family_name="North", site=second_site, mrn="K000500")
    make_patient(outsider, given_name="Otto", family_name="Other", mrn="K000501")
    assert _found(nurse, "k0005") == []
    assert _found(admin, "k0005") == ["K000500"]  # the administrator covers every site
    assert _found(outsider, "k0005") == ["K000501"]


def test_keys_follow_an_edited_mrn(nurse: Any, registered: dict[str, Any]) -> None:
    patient = registered["zz"]
    services.update_patient(
        user=nurse, patient=patient, data={"mrn": "Q-4400"}, expected_version=patient.version
    )
    assert _found(nurse, "q44") == ["Q-4400"] and _found(nurse, "zz9") == []
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.mrn_key, stored.mrn_key_reversed) == ("q4400", "0044q")


def test_search_keys_and_bounds() -> None:
    assert mrn_key("K-000 123") == "k000123" and mrn_key("Ølstad-7") == "olstad7"
    # The bound steps within 0-9a-z (no punctuation a locale collation would ignore).
    assert prefix_upper_bound("k9") == "ka" and prefix_upper_bound("k0") == "k1"
    assert prefix_upper_bound("az") == "b" and prefix_upper_bound("zz") is None


def test_front_desk_finds_by_partial_mrn_on_the_page_and_it_is_audited(
    front_desk: Any, registered: dict[str, Any], sign_in: Any
) -> None:
    client = csrf_client(sign_in, front_desk)
    assert client.post("/patients/", {"mrn": "k0001"}).status_code == 403  # no CSRF token
    response = post_from(client, "/patients/", "/patients/", {"mrn": "k0001"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "K000123" in html and "K0001239" in html and "mrn-77-0912" not in html
    entry = AuditEntry.objects.filter(user=front_desk, category="patient-search").latest("id")
    assert entry.detail == "2 match(es); page 1"
    assert "k0001" not in entry.detail  # the term is not in the log line


def test_api_search_by_partial_mrn(nurse: Any, registered: dict[str, Any], sign_in: Any) -> None:
    api = Api(nurse, sign_in)  # CSRF enforced with the real token
    found = api.ok("/patients/search", {"mrn": "0912"})
    assert [p["mrn"] for p in found["patients"]] == ["mrn-77-0912"]
    found = api.ok("/patients/search", {"mrn": "k000123"})
    assert [p["mrn"] for p in found["patients"]] == ["K000123", "K0001239"]  # the exact MRN first
