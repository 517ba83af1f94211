"""Issue 14 (the front desk's day): the front desk marks a patient arrived from the home page's Today list; the
chair's nurse sees "arrived HH:MM" on Today, on the session page and on the live board's waiting line;
arriving is not a clinical check-in (the session stays scheduled until the nurse checks the patient in). An
arrival is marked once, on the day, for a booking still to take place; every mark is audited; other sites and
organizations are not found, administrators may not mark."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
import time_machine
from tests.csrf_pages import csrf_client, post_from

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.board import BoardFeed
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import arrivals

from .conftest import elektd_from_21_december

MONDAY_21 = datetime(2026, 12, 21, 13, 30, tzinfo=UTC)  # 08:30 in New York, the first session at 09:00


@pytest.fixture
def morning(nurse: Any, prescriber: Any, patient: Any, site: Any) -> Any:
    """ELEKT-D from Monday 21 December 09:00 (planned a week before), now 08:30 that Monday."""
    with time_machine.travel(datetime(2026, 12, 14, 15, 0, tzinfo=UTC), tick=False):
        plan = elektd_from_21_december(nurse, prescriber, patient, site)
    with time_machine.travel(MONDAY_21, tick=False):
        yield plan


def _today(html: str) -> str:
    return html.split('id="today"', 1)[1].split("</section>", 1)[0]


def test_front_desk_marks_arrived_and_the_nurse_sees_it_everywhere_without_a_check_in(
    morning: Any, front_desk: Any, nurse: Any, prescriber: Any, site: Any, sign_in: Any
) -> None:
    first = morning.sessions.get(number=1)
    desk = csrf_client(sign_in, front_desk)
    url = f"/arrivals/course/{first.pk}/"
    today = _today(desk.get("/").content.decode())
    assert f'action="{url}"' in today and "Mark arrived" in today
    assert desk.post(url).status_code == 403  # no CSRF token
    done = post_from(desk, "/", url, {})
    assert done.status_code == 302 and done["Location"] == "/#today"
    first.refresh_from_db()
    assert first.arrived_at == MONDAY_21 and first.arrival_recorded_by == front_desk
    entry = AuditEntry.objects.get(category="arrival")
    assert (entry.user, entry.patient_id, entry.action) == (front_desk, first.patient_id, "change")
    assert json.loads(entry.after) == {"arrived_at": MONDAY_21.isoformat()}
    assert _today(desk.get("/").content.decode()).count("Mark arrived") == 0

    # The nurse's Today: arrived at 08:30, the session still to open.
    ward = csrf_client(sign_in, nurse)
    today = _today(ward.get("/").content.decode())
    assert "arrived 08:30" in today and "Open session" in today
    # The live board's waiting line (nothing is under way yet).
    board = ward.get(f"/board/{site.code}/").content.decode()
    waiting = board[board.index('id="board-waiting"') :]
    assert (
        "Arrived, not yet checked in" in waiting
        and "Examplesson, Testa" in waiting
        and "arrived 08:30" in waiting
    )
    # Opening the session at the chair: still scheduled, the arrival shows on the session page.
    opened = post_from(ward, "/", f"/plan-sessions/{first.pk}/start/", {})
    session = TreatmentSession.objects.get(planned_session_id=first.pk)
    assert opened["Location"] == f"/sessions/{session.pk}/" and session.status == "scheduled"
    page = ward.get(f"/sessions/{session.pk}/").content.decode()
    assert 'id="arrived"' in page and "arrived 08:30" in page and 'id="check-in"' in page
    assert arrivals.arrival_of(session) == arrivals.Arrival(MONDAY_21, front_desk.display_name)
    # The nurse checks the patient in: the waiting line empties.
    chairside.transition(user=nurse, session=session, to="checked_in")
    assert arrivals.waiting_today(site) == []


def test_an_arrival_is_marked_once_on_the_day_before_the_check_in(
    morning: Any, front_desk: Any, nurse: Any, site: Any, sign_in: Any
) -> None:
    first, second = morning.sessions.get(number=1), morning.sessions.get(number=2)
    arrivals.mark_arrived(user=front_desk, booking=first)
    with pytest.raises(arrivals.ArrivalRefused) as again:
        arrivals.mark_arrived(user=nurse, booking=first)
    assert again.value.message == f"Already marked arrived at 08:30 by {front_desk.display_name}."
    with pytest.raises(arrivals.ArrivalRefused) as early:
        arrivals.mark_arrived(user=front_desk, booking=second)  # Thursday
    assert early.value.message == "This session is booked for Thu 24 Dec 09:00: arrival is marked on the day."
    second.refresh_from_db()
    assert second.arrived_at is None
    # On the page the refusal is said, nothing changes.
    desk = csrf_client(sign_in, front_desk)
    answer = post_from(desk, "/", f"/arrivals/course/{second.pk}/", {})
    assert answer.status_code == 302
    assert "arrival is marked on the day" in desk.get("/").content.decode()
    assert AuditEntry.objects.filter(category="arrival").count() == 1


def test_a_chair_session_outside_a_plan_is_marked_too_and_a_checked_in_one_is_not(
    morning: Any, front_desk: Any, nurse: Any, make_patient: Any, site: Any
) -> None:
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    chair = site.chairs.get(label="C2")
    session = chairside.schedule_session(
        user=nurse,
        patient=walk_in,
        protocol_id="esk-trd-label",
        scheduled_at=datetime.combine(date(2026, 12, 21), time(10), tzinfo=site.zone),
        planned_dose_mg=56,
        chair=chair,
    )
    row = arrivals.load_booking(user=front_desk, kind="session", booking_id=session.pk)
    arrivals.mark_arrived(user=front_desk, booking=row)
    session.refresh_from_db()
    assert session.arrived_at == MONDAY_21 and session.status == "scheduled"
    waiting = arrivals.waiting_today(site)
    assert [(w.chair, w.patient_name, w.session_id) for w in waiting] == [("C2", "Inman, Walter", session.pk)]
    other = chairside.schedule_session(
        user=nurse,
        patient=make_patient(nurse, given_name="Cora", family_name="Checked"),
        protocol_id="esk-trd-label",
        scheduled_at=datetime.combine(date(2026, 12, 21), time(13), tzinfo=site.zone),
        planned_dose_mg=56,
    )
    chairside.transition(user=nurse, session=other, to="checked_in")
    with pytest.raises(arrivals.ArrivalRefused, match="already checked in: the nurse has taken over"):
        arrivals.mark_arrived(user=front_desk, booking=other)


def test_the_live_board_sends_the_waiting_line_when_someone_arrives(
    morning: Any, front_desk: Any, nurse: Any, site: Any
) -> None:
    feed = BoardFeed(site=site, user_id=nurse.pk, session_key="")
    opening = feed.opening()
    assert any(e.startswith("event: waiting\n") for e in opening)
    assert feed.poll() == []
    arrivals.mark_arrived(user=front_desk, booking=morning.sessions.get(number=1))
    pushed = [e for e in feed.poll() if e.startswith("event: waiting\n")]
    assert len(pushed) == 1 and "Examplesson, Testa" in pushed[0] and "arrived 08:30" in pushed[0]
    assert feed.poll() == []


def test_who_may_mark_arrivals(
    morning: Any,
    front_desk: Any,
    admin: Any,
    outsider: Any,
    make_user: Any,
    org: Any,
    second_site: Any,
    sign_in: Any,
) -> None:
    first = morning.sessions.get(number=1)
    url = f"/arrivals/course/{first.pk}/"
    admin_client = csrf_client(sign_in, admin)
    assert post_from(admin_client, "/", url, {}).status_code == 403
    assert post_from(csrf_client(sign_in, outsider), "/", url, {}).status_code == 404
    north = make_user("desk-north", org, "front_desk", [second_site])
    assert post_from(csrf_client(sign_in, north), "/", url, {}).status_code == 404
    assert (
        post_from(csrf_client(sign_in, front_desk), "/", f"/arrivals/elsewhere/{first.pk}/", {}).status_code
        == 404
    )
    with pytest.raises(arrivals.ArrivalRefused):
        arrivals.mark_arrived(user=admin, booking=first)
    first.refresh_from_db()
    assert first.arrived_at is None
