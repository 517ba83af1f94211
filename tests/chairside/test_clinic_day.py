"""A clinic's "today" is the calendar day at its site, whatever the server's clock says.

The server runs in UTC; the fixture clinic is in New York. From 19:00 to midnight there (00:00-05:00 UTC) the
server's date is already tomorrow. CI once failed only when it ran in those hours: a screening signed at
20:00 New York time counted as signed "tomorrow", the pre-dose gate called it a future date and no dose could
be given. These tests put the clock in that window (and in the afternoon, for contrast) so that the mistake
fails at any hour CI runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.chairside.conftest import GOOD_ESK_ANSWERS
from tests.clock import clinic_today
from tests.ledger.stock import receive
from tests.treatment.conftest import screened

from ketaclinic.chairside import services as chairside
from ketaclinic.patients.services import age_on_chart

pytestmark = pytest.mark.db

# 22:30 on Monday 7 December in New York (already Tuesday in UTC), and 11:00 the next morning there.
EVENING = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)
MORNING = datetime(2026, 12, 8, 16, 0, tzinfo=UTC)


@pytest.fixture(params=[EVENING, MORNING], ids=["evening-in-new-york", "morning-in-new-york"])
def clock(request: Any, time_machine: Any) -> datetime:
    time_machine.move_to(request.param, tick=True)
    return request.param


def test_the_day_at_the_site_is_not_the_servers_date(clock: datetime, site: Any) -> None:
    expected = (clock - timedelta(hours=5)).date()  # New York is UTC-5 in December
    assert site.today() == clinic_today() == expected
    if clock is EVENING:
        assert site.today() != clock.date()


def test_a_screening_signed_this_evening_opens_the_gate_for_tonights_session(
    clock: datetime, request: Any
) -> None:
    nurse, prescriber = request.getfixturevalue("nurse"), request.getfixturevalue("prescriber")
    session = request.getfixturevalue("esk_session")  # checked in and scheduled before now
    # Today's pregnancy test as the nurse types it: the shared answers' date was taken when tests were loaded.
    answers = GOOD_ESK_ANSWERS | {"pregnancy_test_on": clinic_today()}
    before = {
        i["key"]: i for i in chairside.evaluate_gate(user=nurse, session=session, answers=answers).items
    }
    assert before["pregnancy_test"]["status"] == "pass", before["pregnancy_test"]["reason"]
    screened(nurse, prescriber, session.patient)  # intake and screening signed by the prescriber, now
    check = chairside.evaluate_gate(user=nurse, session=session, answers=answers)
    items = {i["key"]: i for i in check.items}
    assert items["screening"]["status"] == "pass", items["screening"]["reason"]
    assert "signed 0 days ago" in items["screening"]["reason"]
    assert check.passed


def test_stock_received_today_is_accepted_and_dated_today(clock: datetime, nurse: Any, site: Any) -> None:
    lot = receive(nurse, site, lot="EVE-1")  # the receipt form's "received on" is the site's today
    receipt = lot.entries.get()
    assert receipt.kind == "receipt" and receipt.balance_after == 500
    assert receipt.at.astimezone(site.zone).date() == clinic_today()


def test_a_patient_born_on_this_day_has_a_birthday_today(clock: datetime, patient: Any) -> None:
    today = clinic_today()
    patient.date_of_birth = today.replace(year=today.year - 40)
    patient.save(update_fields=["date_of_birth"])
    assert age_on_chart(patient).years == 40
