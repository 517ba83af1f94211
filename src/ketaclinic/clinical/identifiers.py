"""Identifiers a clinic prints on its regulated records: a clinician's NPI, DEA number and state licence, a
site's DEA registration, address and phone (pure: no Django, no I/O).

Each ``*_problem`` function takes what staff typed (already stripped) and returns ``None`` when it is well
formed, or a sentence saying what is wrong and what the rule is. A check digit only proves the number was
not mistyped; whether the number is *registered* (NPPES, the DEA's registrant lookup) is for the person who
enters it to confirm. Nothing here changes a value: the caller stores what was typed, upper-cased where the
identifier is defined in capitals.

Sources:
- NPI: 10 digits, the first 1 or 2, the last a check digit computed with the Luhn formula (ISO/IEC 7812)
  over the prefix 80840 followed by the first nine digits (CMS, "Requirements for the NPI check digit",
  NPI final rule 45 CFR 162.406).
- DEA number: two letters (the registrant type, then the initial of the registrant's last name or the
  digit 9 for a registrant known by a business name) and seven digits, the seventh a check digit: the sum
  of digits 1, 3 and 5 plus twice the sum of digits 2, 4 and 6 ends in digit 7 (DEA registration record
  layout; 21 CFR 1301 registration).
"""

from __future__ import annotations

import re
from typing import Final

NPI_SOURCE: Final = "CMS NPI standard (45 CFR 162.406): 10 digits, Luhn check digit with prefix 80840"
DEA_SOURCE: Final = "DEA registration number: 2 letters + 7 digits, the last a check digit (21 CFR 1301)"

#: US states, the District of Columbia and the territories whose boards license clinicians.
US_STATES: Final = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP".split()
)

_DIGITS: Final = re.compile(r"^\d+$")
_DEA: Final = re.compile(r"^[A-Z][A-Z9]\d{7}$")
_ZIP: Final = re.compile(r"^\d{5}(-\d{4})?$")
_PHONE: Final = re.compile(
    r"^(\+?1[\s.-]?)?(\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}(\s*(x|ext\.?)\s*\d{1,6})?$"
)
_LICENCE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]*$")
LICENCE_MAX_CHARS: Final = 30


def luhn_check_digit(digits: str) -> int:
    """The Luhn check digit to append to ``digits``: double every second digit from the right."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:  # the rightmost payload digit is doubled (the check digit will follow it)
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def npi_problem(npi: str) -> str | None:
    """Why ``npi`` is not a well-formed National Provider Identifier, or None."""
    if len(npi) != 10 or not _DIGITS.match(npi):
        return f"{npi!r} is not an NPI: it is 10 digits"
    if npi[0] not in "12":
        return f"NPI {npi} starts with {npi[0]}: an NPI starts with 1 or 2"
    expected = luhn_check_digit("80840" + npi[:9])
    if int(npi[9]) != expected:
        return (
            f"NPI {npi} fails its check digit (the last digit would be {expected}): check for a typing error"
        )
    return None


def dea_check_digit(digits6: str) -> int:
    """The seventh digit of a DEA number from its first six."""
    d = [int(c) for c in digits6]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10


def dea_problem(dea: str) -> str | None:
    """Why ``dea`` (upper-case) is not a well-formed DEA registration number, or None.

    The second letter is not compared with the registrant's last name: a number stays when a name changes."""
    if not _DEA.match(dea):
        return (
            f"{dea!r} is not a DEA number: 2 letters then 7 digits, e.g. AB1234563 "
            "(the second character may be 9 for a business name)"
        )
    expected = dea_check_digit(dea[2:8])
    if int(dea[8]) != expected:
        return f"DEA number {dea} fails its check digit (the last digit would be {expected}): check for a typing error"
    return None


def state_problem(state: str) -> str | None:
    if state not in US_STATES:
        return f"{state!r} is not a US state or territory code (two capital letters, e.g. NY)"
    return None


def licence_problem(number: str) -> str | None:
    if len(number) > LICENCE_MAX_CHARS:
        return f"a licence number is at most {LICENCE_MAX_CHARS} characters (this one has {len(number)})"
    if not _LICENCE.match(number):
        return "a licence number has letters, digits, spaces and . / - only"
    return None


def zip_problem(zip_code: str) -> str | None:
    if not _ZIP.match(zip_code):
        return f"{zip_code!r} is not a ZIP code: 5 digits, or 5+4 as 12345-6789"
    return None


def phone_problem(phone: str) -> str | None:
    if not _PHONE.match(phone):
        return f"{phone!r} is not a US phone number: 10 digits such as (617) 555-0100, optionally ext. 12"
    return None
