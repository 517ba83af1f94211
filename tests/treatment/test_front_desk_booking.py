"""Issue 14 (the front desk's day): the front desk books a course session into a free calendar slot, within
the same rules as everyone: a closed day or a public holiday, a chair someone else holds, a second session on
the patient's day and the course's spacing refuse it (only a nurse or prescriber may book closer than the
spacing, with the reason). A session on a day the site has since closed is offered free slots that pass every
rule. Pages with CSRF-enforcing clients; access by role, site and organization."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from tests.csrf_pages import csrf_client, post_from

from ketaclinic.accounts import sites
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.treatment import booking, services

from .conftest import elektd_from_21_december, open_site

NOW = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)  # Monday 14 December 2026, 10:00 in New York


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def course(clock: Any, nurse: Any, prescriber: Any, patient: Any, site: Any) -> Any:
    """ELEKT-D twice weekly from Monday 21 December 09:00: sessions on Mon 21, Thu 24, Mon 28, Thu 31 …"""
    return elektd_from_21_december(nurse, prescriber, patient, site)


def _at(site: Any, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=site.zone)


def _chair(site: Any, label: str) -> Any:
    return site.chairs.get(label=label)


def _local(session: Any) -> datetime:
    session.refresh_from_db()
    return session.start.astimezone(session.site.zone)  # type: ignore[no-any-return]


WED_23 = date(2026, 12, 23)


def test_front_desk_finds_the_patient_by_partial_mrn_and_books_a_free_slot(
    course: Any, front_desk: Any, patient: Any, site: Any, sign_in: Any
) -> None:
    second = course.sessions.get(number=2)
    assert _local(second).date() == date(2026, 12, 24)
    client = csrf_client(sign_in, front_desk)
    calendar = client.get(f"/calendar/?site={site.pk}&week=2026-12-21").content.decode()
    c2 = _chair(site, "C2")
    book_url = f"/calendar/book/?site={site.pk}&amp;chair={c2.pk}&amp;start=2026-12-23T08:00"
    assert book_url in calendar  # Wednesday: C2 free from opening
    slot = f"/calendar/book/?site={site.pk}&chair={c2.pk}&start=2026-12-23T11:00"
    found = post_from(
        client,
        slot,
        "/calendar/book/",
        {
            "action": "find",
            "site": site.pk,
            "chair": c2.pk,
            "start": "2026-12-23T11:00",
            "mrn": patient.mrn[-3:],
        },
    )
    assert found.status_code == 200
    page = found.content.decode()
    assert "Examplesson, Testa" in page and f'value="{second.pk}"' in page
    done = post_from(
        client,
        slot,
        "/calendar/book/",
        {
            "action": "book",
            "site": site.pk,
            "session": second.pk,
            "chair": c2.pk,
            "start": "2026-12-23T11:00",
        },
    )
    assert done.status_code == 302 and done["Location"] == f"/calendar/?site={site.pk}&week=2026-12-21"
    assert _local(second) == _at(site, WED_23, 11) and second.chair == c2
    entry = AuditEntry.objects.filter(user=front_desk, object_type="PlanSession", action="change").get()
    assert json.loads(entry.after)["chair"] == "C2"
    assert json.loads(entry.before)["start"].startswith("2026-12-24T14:00")  # 09:00 New York


def test_the_rules_refuse_the_front_desk_and_say_why(
    course: Any, front_desk: Any, nurse: Any, admin: Any, patient: Any, make_patient: Any, site: Any
) -> None:
    second = course.sessions.get(number=2)
    c1, c2 = _chair(site, "C1"), _chair(site, "C2")

    def refused(start: datetime, chair: Any = c2, user: Any = front_desk, **kw: Any) -> dict[str, str]:
        with pytest.raises(services.PlanValidationError) as caught:
            booking.book_course_session(user=user, session=second, chair=chair, start=start, **kw)
        return caught.value.errors

    # A public holiday (added by the administrator) and a Saturday.
    sites.add_public_holidays(admin=admin, site=site, year=2026)
    assert "clinic closed (closure)" in refused(_at(site, date(2026, 12, 25), 11))["start"]
    assert "closed on Saturdays" in refused(_at(site, date(2026, 12, 26), 11))["start"]
    assert "outside opening hours" in refused(_at(site, WED_23, 17, 30))["start"]
    # Issue 15 H2: a year-9999 slot is refused by the time window (before, only the opening hours judged it).
    assert "days ahead" in refused(datetime(9999, 12, 31, 10, tzinfo=site.zone))["start"]
    # A chair someone else holds: another patient's session at the chair, outside a plan.
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    chairside.schedule_session(
        user=nurse,
        patient=walk_in,
        protocol_id="esk-trd-label",
        scheduled_at=_at(site, WED_23, 11),
        planned_dose_mg=56,
        chair=c2,
    )
    assert refused(_at(site, WED_23, 11, 30))["chair"].startswith("C2 is taken then (11:00–")
    # A second session on the patient's day.
    chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=_at(site, WED_23, 15),
        planned_dose_mg=56,
        chair=c1,
    )
    same_day = refused(_at(site, WED_23, 8), chair=c1)
    assert (
        "The patient already has a session on Wed 23 Dec 2026 (15:00 session at the chair): one session a day"
        in (same_day["start"])
    )
    # Closer than the course's spacing (a day after session 1): the front desk cannot decide past it …
    tuesday = _at(site, date(2026, 12, 22), 11)
    spacing = refused(tuesday, chair=c1)["start"]
    assert "Only a nurse or prescriber may book it closer than the course's spacing" in spacing
    with pytest.raises(services.PlanValidationError):
        booking.book_course_session(
            user=front_desk, session=second, chair=c1, start=tuesday, spacing_override_reason="Patient asked"
        )
    # … a nurse may, with the reason, which is kept on the session.
    assert "give the reason" in refused(tuesday, chair=c1, user=nurse)["spacing_override_reason"]
    booking.book_course_session(
        user=nurse, session=second, chair=c1, start=tuesday, spacing_override_reason="Travels on the 24th"
    )
    assert _local(second) == tuesday and "Travels on the 24th" in second.notes[-1]
    # A course's sessions keep their order: not before session 1, not after session 3.
    assert refused(_at(site, date(2026, 12, 18), 11))["start"] == (
        "would come before the course's previous session (Mon 21 Dec 09:00): a course's sessions keep their order"
    )
    assert (
        "would come after the course's next session (Mon 28 Dec 09:00)"
        in refused(_at(site, date(2026, 12, 29), 11))["start"]
    )
    # Nothing in the past.
    assert refused(NOW - timedelta(hours=1), chair=c1)["start"] == "is in the past"


def test_a_session_opened_at_the_chair_or_of_a_stopped_course_is_not_booked(
    course: Any, front_desk: Any, nurse: Any, prescriber: Any, site: Any
) -> None:
    first, second = course.sessions.get(number=1), course.sessions.get(number=2)
    chairside.schedule_session(
        user=nurse,
        patient=first.patient,
        protocol_id=course.protocol_key,
        scheduled_at=first.start,
        planned_dose_mg=course.dose_mg,
        chair=first.chair,
        planned_session_id=first.pk,
        dose_decided_by=prescriber,
        session_number=1,
    )
    with pytest.raises(services.PlanValidationError) as caught:
        booking.book_course_session(
            user=front_desk, session=first, chair=_chair(site, "C2"), start=_at(site, WED_23, 11)
        )
    assert caught.value.errors == {"session": "session 1 was already opened at the chair"}
    services.stop_course(user=prescriber, plan=course, reason="Patient withdrew")
    second.refresh_from_db()
    with pytest.raises(services.PlanValidationError) as caught:
        booking.book_course_session(
            user=front_desk, session=second, chair=_chair(site, "C2"), start=_at(site, WED_23, 11)
        )
    assert caught.value.errors == {"session": "session 2 is cancelled"}


def test_a_session_on_a_newly_closed_day_is_offered_slots_within_the_rules(
    course: Any, front_desk: Any, admin: Any, site: Any, sign_in: Any
) -> None:
    second = course.sessions.get(number=2)  # Thursday 24 December
    sites.add_closure(admin=admin, site=site, day=date(2026, 12, 24), reason="Christmas Eve")
    sites.add_public_holidays(admin=admin, site=site, year=2026)
    client = csrf_client(sign_in, front_desk)
    week = client.get(f"/calendar/?site={site.pk}&week=2026-12-21").content.decode()
    thursday = week[week.index('id="day-2026-12-24"') :]
    thursday = thursday[: thursday.index("</section>")]
    assert (
        "closed: Christmas Eve" in thursday and "booked on a closed day (Christmas Eve): move it" in thursday
    )
    assert f"/calendar/book/?session={second.pk}" in thursday
    friday = week[week.index('id="day-2026-12-25"') :]
    assert (
        "closed: Christmas Day" in friday[: friday.index("</section>")]
        and "Book</a>" not in (friday[: friday.index("</section>")])
    )
    # Wednesday 23 is the only day near the 24th that keeps the course's spacing and the patient's days
    # (Fri 25 holiday, the weekend, Mon 28 and Thu 31 hold sessions 3 and 4, Tue 22 and Tue 29/Wed 30 are
    # too close to them, Fri 1 January is a holiday).
    offered = booking.suggest_slots(second)
    assert next((s.start.astimezone(site.zone), s.chair.label) for s in offered) == (
        _at(site, WED_23, 9),
        "C1",
    )
    assert all(
        s.start.astimezone(site.zone).date() not in (date(2026, 12, 25), date(2027, 1, 1)) for s in offered
    )
    for suggestion in offered:
        assert booking.check_slot(second, suggestion.chair, suggestion.start).clear
    page_url = f"/calendar/book/?session={second.pk}"
    page = client.get(page_url).content.decode()
    assert "Book Wed 23 Dec 09:00 · C1" in page
    done = post_from(
        client,
        page_url,
        "/calendar/book/",
        {"action": "book", "session": second.pk, "chair": _chair(site, "C1").pk, "start": "2026-12-23T09:00"},
    )
    assert done.status_code == 302 and _local(second) == _at(site, WED_23, 9)


def test_a_refused_booking_page_names_the_rule_and_books_nothing(
    course: Any, front_desk: Any, admin: Any, site: Any, sign_in: Any
) -> None:
    second = course.sessions.get(number=2)
    before = _local(second)
    sites.add_public_holidays(admin=admin, site=site, year=2026)
    client = csrf_client(sign_in, front_desk)
    page_url = f"/calendar/book/?session={second.pk}"
    answer = post_from(
        client,
        page_url,
        "/calendar/book/",
        {"action": "book", "session": second.pk, "chair": _chair(site, "C2").pk, "start": "2026-12-25T11:00"},
    )
    assert answer.status_code == 422
    assert "Fri 25 Dec: clinic closed (closure)" in answer.content.decode()
    assert _local(second) == before
    bad = post_from(
        client,
        page_url,
        "/calendar/book/",
        {"action": "book", "session": second.pk, "chair": _chair(site, "C2").pk, "start": "soon"},
    )
    assert bad.status_code == 422 and "&#x27;soon&#x27; is not a date and time" in bad.content.decode()


def test_who_may_book_and_whose_sessions(
    course: Any,
    front_desk: Any,
    admin: Any,
    outsider: Any,
    make_user: Any,
    org: Any,
    second_site: Any,
    site: Any,
    sign_in: Any,
) -> None:
    second = course.sessions.get(number=2)
    url = f"/calendar/book/?session={second.pk}"
    assert csrf_client(sign_in, admin).get(url).status_code == 403  # administrators do not book
    assert csrf_client(sign_in, outsider).get(url).status_code == 404  # another organization
    north_desk = make_user("desk-north", org, "front_desk", [second_site])
    assert csrf_client(sign_in, north_desk).get(url).status_code == 404  # another site
    assert csrf_client(sign_in, north_desk).get(f"/calendar/book/?site={site.pk}").status_code == 404
    with pytest.raises(services.NotFound):
        booking.book_course_session(
            user=north_desk, session=second, chair=_chair(site, "C2"), start=_at(site, WED_23, 11)
        )
    client = csrf_client(sign_in, front_desk)
    no_token = client.post(
        "/calendar/book/",
        {"action": "book", "session": second.pk, "chair": _chair(site, "C2").pk, "start": "2026-12-23T11:00"},
    )
    assert no_token.status_code == 403 and _local(second).date() == date(2026, 12, 24)


def test_a_patient_without_an_active_course_cannot_be_booked(
    clock: Any, front_desk: Any, make_patient: Any, site: Any, sign_in: Any
) -> None:
    open_site(site)
    make_patient(front_desk, given_name="Nadia", family_name="Newcomer", mrn="N-100")
    client = csrf_client(sign_in, front_desk)
    c1 = _chair(site, "C1")
    slot = f"/calendar/book/?site={site.pk}&chair={c1.pk}&start=2026-12-23T11:00"
    found = post_from(
        client,
        slot,
        "/calendar/book/",
        {"action": "find", "site": site.pk, "chair": c1.pk, "start": "2026-12-23T11:00", "mrn": "n-1"},
    )
    page = found.content.decode()
    assert "Newcomer, Nadia" in page and "a prescriber plans the course, which books its sessions" in page
