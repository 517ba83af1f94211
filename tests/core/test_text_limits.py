"""Text longer than its column is refused with the limit, never cut to fit (issue 14, point 7): a site
closure's reason and a protocol version's change note (both were cut without a word)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from tests.clock import clinic_today
from tests.pages import visible

from ketaclinic.accounts.models import SiteClosure
from ketaclinic.core.limits import too_long, too_many_places
from ketaclinic.treatment import library
from ketaclinic.treatment.models import ProtocolVersion


def _post(sign_in: Any, user: Any, url: str, data: dict[str, str]) -> Any:
    client = sign_in(Client(enforce_csrf_checks=True), user)
    client.get(url)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def test_the_refusals_name_the_field_the_length_and_the_limit() -> None:
    assert too_long("abc", label="Lot", limit=3) is None
    assert too_long("a" * 2001, label="Notes", limit=2000) == (
        "Notes is 2,001 characters, more than the 2,000 it may have: nothing was saved"
    )
    assert too_many_places(Decimal("0.5"), label="Dose", places=2) is None
    assert too_many_places(Decimal("1E+2"), label="Dose", places=2) is None
    assert too_many_places(Decimal("0.125"), label="Dose", places=2, unit="mg") == (
        "Dose 0.125 mg has more decimals than the record keeps (2): round it yourself, e.g. 0.13 mg"
    )


def test_a_closure_reason_past_its_limit_is_refused_not_cut(admin: Any, site: Any, sign_in: Any) -> None:
    day = (clinic_today() + timedelta(days=10)).isoformat()
    url = f"/accounts/sites/{site.pk}/closures/"  # the site calendar's page
    reason = "Staff training day and the annual inspection of the emergency equipment in every room. " * 3
    response = _post(sign_in, admin, url, {"action": "closure", "day": day, "reason": reason})
    assert response.status_code == 422
    text = visible(response.content.decode())
    assert f"{len(reason.strip())} characters" in text and "200" in text  # the length and the limit
    assert not SiteClosure.objects.exists()
    _post(sign_in, admin, url, {"action": "closure", "day": day, "reason": reason[:200].strip()})
    assert SiteClosure.objects.get(site=site).reason == reason[:200].strip()  # whole, as typed


def test_a_protocol_change_note_past_its_limit_is_refused_not_cut(admin: Any, sign_in: Any) -> None:
    library.copy_protocol(
        user=admin, source=library.get_version(admin, "iv-trd-elektd"), new_id="iv-ours", name="Our IV"
    )
    row = ProtocolVersion.objects.get(key="iv-ours", version=1)
    note = "Eight induction sessions at 0.6 mg/kg after the review of our first year's outcomes. " * 4
    response = _post(
        sign_in,
        admin,
        "/protocols/iv-ours/edit/",
        {
            "base_version": "1",
            "name": row.data["name"],
            "monitoring.observation_min": str(row.data["monitoring"]["observation_min"]),
            "notes": row.data.get("notes", ""),
            "change_note": note,
        },
    )
    assert response.status_code == 422
    assert (
        f"What changed and why is {len(note.strip())} characters, more than the 300 it may have"
        in visible(response.content.decode())
    )
    assert not ProtocolVersion.objects.filter(key="iv-ours", version=2).exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", 42),
        (" 7 ", 7),
        ("0", 0),
        ("9" * 18, int("9" * 18)),
        ("9" * 19, None),  # more digits than a database integer always holds
        ("²", None),  # str.isdigit is true of it, int() refuses it
        ("٣", None),  # an Arabic-Indic three: int() would read it as 3
        ("-1", None),
        ("1.5", None),
        ("", None),
        ("seven", None),
    ],
)
def test_whole_number_reads_only_ascii_digits_a_key_can_hold(raw: str, expected: int | None) -> None:
    from ketaclinic.core.text import whole_number

    assert whole_number(raw) == expected


def test_whole_number_honours_a_smaller_bound() -> None:
    from ketaclinic.core.text import whole_number

    assert whole_number("123456", max_digits=6) == 123456 and whole_number("1234567", max_digits=6) is None
