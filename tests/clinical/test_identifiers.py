"""Identifiers checked before they are printed on a REMS form or the controlled-drug register: NPI (Luhn over
80840 + the first nine digits), DEA number (two letters, seven digits, weighted check digit), state, ZIP, phone;
and whether a setting counts as REMS-certified (the site's record and the chair's answer)."""

from __future__ import annotations

import pytest

from ketaclinic.clinical.identifiers import (
    dea_check_digit,
    dea_problem,
    licence_problem,
    luhn_check_digit,
    npi_problem,
    phone_problem,
    state_problem,
    zip_problem,
)
from ketaclinic.clinical.rems import setting_certification


@pytest.mark.parametrize("npi", ["1234567893", "1987654328", "2000000002"])
def test_well_formed_npis_pass(npi: str) -> None:
    assert npi_problem(npi) is None


def test_the_npi_check_digit_is_luhn_over_the_80840_prefix() -> None:
    # CMS's worked example: 123456789 → 80840123456789 → check digit 3.
    assert luhn_check_digit("80840123456789") == 3
    # Without the prefix the Luhn digit would be 7: the prefix matters.
    assert luhn_check_digit("123456789") == 7


@pytest.mark.parametrize(
    ("npi", "words"),
    [
        ("1234567890", "fails its check digit (the last digit would be 3)"),
        ("1234567839", "fails its check digit"),  # two digits swapped
        ("123456789", "10 digits"),
        ("12345678931", "10 digits"),
        ("12345 6789", "10 digits"),
        ("3234567893", "starts with 1 or 2"),
        ("", "10 digits"),
    ],
)
def test_bad_npis_are_named_with_the_rule(npi: str, words: str) -> None:
    problem = npi_problem(npi)
    assert problem is not None and words in problem


@pytest.mark.parametrize("dea", ["AP1234563", "BH2345672", "F91234563", "MJ3456781"])
def test_well_formed_dea_numbers_pass(dea: str) -> None:
    assert dea_problem(dea) is None


def test_the_dea_check_digit_weights_even_positions_twice() -> None:
    # 1+3+5 = 9; 2 × (2+4+6) = 24; 33 → 3.
    assert dea_check_digit("123456") == 3


@pytest.mark.parametrize(
    ("dea", "words"),
    [
        ("AP1234564", "fails its check digit (the last digit would be 3)"),
        ("AP2134563", "fails its check digit"),  # two digits swapped
        ("A1234563", "2 letters then 7 digits"),
        ("AP123456", "2 letters then 7 digits"),
        ("1P1234563", "2 letters then 7 digits"),
        ("ap1234563", "2 letters then 7 digits"),  # the edge upper-cases; the rule itself wants capitals
        ("AP1234563-001", "2 letters then 7 digits"),
    ],
)
def test_bad_dea_numbers_are_named_with_the_rule(dea: str, words: str) -> None:
    problem = dea_problem(dea)
    assert problem is not None and words in problem


def test_states_zips_phones_and_licences() -> None:
    assert state_problem("NY") is None and state_problem("PR") is None
    assert "not a US state" in (state_problem("XX") or "")
    assert zip_problem("02101") is None and zip_problem("02101-1234") is None
    assert "5 digits" in (zip_problem("2101") or "")
    for good in ("(617) 555-0100", "617-555-0100", "+1 617 555 0100", "617.555.0100 ext. 12"):
        assert phone_problem(good) is None, good
    assert "10 digits" in (phone_problem("555-0100") or "")
    assert licence_problem("MD-000123") is None
    assert "at most 30" in (licence_problem("X" * 31) or "")
    assert "letters, digits" in (licence_problem("MD#1") or "")


@pytest.mark.parametrize(
    ("site_record", "answered", "certified"),
    [
        (True, None, True),  # the site's record is enough: nothing typed per session
        (True, True, True),
        (True, False, False),  # the chair knows of a lapse: a "no" stops
        (False, True, False),  # recorded as not certified: no esketamine here, whatever is typed
        (False, None, False),
        (None, True, True),  # no site record: the chair's answer, as before
        (None, False, False),
        (None, None, None),
    ],
)
def test_setting_certification_a_no_from_either_stops(
    site_record: bool | None, answered: bool | None, certified: bool | None
) -> None:
    assert setting_certification(site_record=site_record, answered=answered) is certified
