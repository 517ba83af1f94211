"""The pre-dose gate's "setting certified" item reads the site's SPRAVATO REMS certification, kept by an
administrator (accounts/site_identifiers.py), instead of a yes typed at every session; a "no" from the site's
record or from the chair stops, and the item is never overridable (clinical.md §2.4)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from tests.accounts.test_site_identifiers import registered

from ketaclinic.accounts.models import Site
from ketaclinic.chairside import services

from .conftest import GOOD_ESK_ANSWERS


@pytest.fixture
def esk_answers() -> dict[str, Any]:
    return {k: v for k, v in GOOD_ESK_ANSWERS.items() if k != "rems_setting_certified"}


def _certified_item(session: Any, nurse: Any, answers: dict[str, Any]) -> dict[str, Any]:
    check = services.evaluate_gate(user=nurse, session=session, answers=answers)
    return next(i for i in check.items if i["key"] == "rems_setting_certified")


def test_the_gate_reads_the_sites_certification_instead_of_a_yes_typed_each_time(
    esk_session: Any, nurse: Any, esk_answers: dict[str, Any], sign_in: Any
) -> None:
    site = esk_session.site
    item = _certified_item(esk_session, nurse, esk_answers)
    assert item["status"] == "fail" and "not recorded as certified" in item["reason"]
    registered(site)
    item = _certified_item(esk_session, nurse, esk_answers)
    assert item["status"] == "pass"
    assert "site record: certified, ID REMS-SET-20417 on 2026-01-05" in item["reason"]
    assert item["overridable"] is False
    html = sign_in(Client(), nurse).get(f"/sessions/{esk_session.pk}/").content.decode()
    assert "as the site record: certified (REMS-SET-20417)" in html
    # The chair's "no" still stops (a lapsed certification the nurse knows of).
    assert (
        _certified_item(esk_session, nurse, {**esk_answers, "rems_setting_certified": False})["status"]
        == "fail"
    )


def test_a_site_recorded_as_not_certified_fails_the_gate_whatever_is_answered_and_it_cannot_be_overridden(
    esk_session: Any, nurse: Any, prescriber: Any, esk_answers: dict[str, Any]
) -> None:
    Site.objects.filter(pk=esk_session.site_id).update(rems_certified=False)
    esk_session.site.refresh_from_db()
    item = _certified_item(esk_session, nurse, {**esk_answers, "rems_setting_certified": True})
    assert item["status"] == "fail" and "(site record: not certified)" in item["reason"]
    with pytest.raises(services.SessionError):
        services.override_gate_item(
            user=prescriber,
            session=esk_session,
            item_key="rems_setting_certified",
            reason="certified on paper",
        )
