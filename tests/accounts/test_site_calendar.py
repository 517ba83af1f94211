"""Issue 14 (the front desk's day): a site's calendar of closures and public holidays, kept by administrators.
A year's US federal holidays are added in one action (computed from the statute, with the observed weekday of
a weekend holiday); the scheduler then books no course session on 25 December or 1 January; a closure over
booked sessions lists them (no names) and tells the site's front desk and nurses to move them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
import time_machine
from tests.csrf_pages import csrf_client, post_from
from tests.treatment.conftest import elektd_from_21_december, open_site, screened

from ketaclinic.accounts import sites
from ketaclinic.accounts.holidays import us_federal_holidays
from ketaclinic.accounts.models import SiteClosure
from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.models import Notification
from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession

MONDAY_14_DEC = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)  # 10:00 in New York


def _days(year: int, **kw: Any) -> dict[str, str]:
    return {h.day.isoformat(): h.label for h in us_federal_holidays(year, **kw)}


def test_the_federal_holidays_of_2026_with_the_observed_day_of_independence_day() -> None:
    # OPM's 2026 list: Independence Day falls on a Saturday and is observed on Friday 3 July.
    assert list(_days(2026)) == [
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
        "2026-07-04",
        "2026-09-07",
        "2026-10-12",
        "2026-11-11",
        "2026-11-26",
        "2026-12-25",
    ]
    assert _days(2026)["2026-07-03"] == "Independence Day (observed; the holiday is Saturday 4 July)"
    assert "2026-07-03" not in _days(2026, observed=False)


def test_a_new_years_day_on_a_saturday_is_observed_in_the_year_before() -> None:
    # 1 January 2028 is a Saturday: observed on Friday 31 December 2027, which belongs to 2027's list.
    days_2027 = _days(2027)
    assert days_2027["2027-12-31"].startswith("New Year's Day (observed")
    assert days_2027["2027-12-24"].startswith("Christmas Day (observed")  # 25 Dec 2027 is a Saturday
    assert "2027-12-31" not in _days(2028) and "2028-01-01" in _days(2028)
    # OPM's 2027 list: Juneteenth, Independence Day, Christmas and the next New Year's Day fall on a weekend.
    observed = [d for d, label in days_2027.items() if "(observed" in label]
    assert observed == ["2027-06-18", "2027-07-05", "2027-12-24", "2027-12-31"]
    assert len(days_2027) == 11 + 4
    # Sunday holidays move to Monday: 4 July 2027 is a Sunday.
    assert _days(2027)["2027-07-05"].startswith("Independence Day (observed")
    # Juneteenth exists from 2021; Thanksgiving is the fourth Thursday (22 Nov 2029 after a Thursday 1st).
    assert "2020-06-19" not in _days(2020) and "2021-06-19" in _days(2021)
    assert "2029-11-22" in _days(2029)


def test_a_year_outside_the_rules_is_refused(admin: Any, site: Any) -> None:
    with pytest.raises(sites.SiteSettingsError) as refused:
        sites.add_public_holidays(admin=admin, site=site, year=1900)
    assert refused.value.errors == {"year": "choose a year from 1971 to 2199"}
    assert not SiteClosure.objects.exists()


def test_christmas_and_new_year_are_not_booked_once_the_holidays_are_added(
    admin: Any, nurse: Any, prescriber: Any, patient: Any, site: Any, sign_in: Any
) -> None:
    with time_machine.travel(MONDAY_14_DEC, tick=False):
        open_site(site)
        screened(nurse, prescriber, patient)
        client = csrf_client(sign_in, admin)
        page = f"/accounts/sites/{site.pk}/closures/"
        assert client.post(page, {"action": "holidays", "year": "2026"}).status_code == 403  # no CSRF token
        for year in ("2026", "2027"):
            done = post_from(client, page, page, {"action": "holidays", "year": year, "observed": "yes"})
            assert done.status_code == 302
        closed = dict(SiteClosure.objects.filter(site=site).values_list("day", "kind"))
        assert closed[date(2026, 12, 25)] == closed[date(2027, 1, 1)] == "public_holiday"
        listed = client.get(page).content.decode()
        assert "Christmas Day" in listed and "New Year&#x27;s Day" in listed
        entry = AuditEntry.objects.filter(user=admin, object_type="SiteClosure").latest("id")
        assert entry.detail == "US federal holidays 2027: 15 day(s) closed"
        assert json.loads(entry.after)["source"].startswith("5 U.S.C.")

        # Murrough, three infusions a week from Monday 21 December: days 0, 2 and 4 of each week would be
        # Friday 25 December and Friday 1 January; the scheduler moves them off the holidays.
        plan = services.create_plan(
            user=prescriber,
            patient=patient,
            data={"protocol": "iv-trd-murrough", "start": "2026-12-21", "preferred_time": "09:00"},
        )
        booked = {s.start.astimezone(site.zone).date() for s in plan.sessions.all()}
        assert booked and date(2026, 12, 21) in booked
        assert date(2026, 12, 25) not in booked and date(2027, 1, 1) not in booked
        assert any("Fri 25 Dec: clinic closed" in c for c in plan.conflicts)


def test_a_closure_over_booked_sessions_lists_them_and_tells_the_desk(
    admin: Any,
    nurse: Any,
    prescriber: Any,
    front_desk: Any,
    patient: Any,
    site: Any,
    second_site: Any,
    make_user: Any,
    org: Any,
    sign_in: Any,
) -> None:
    elsewhere = make_user("desk-north", org, "front_desk", [second_site])
    with time_machine.travel(MONDAY_14_DEC, tick=False):
        plan = elektd_from_21_december(nurse, prescriber, patient, site)
        first = plan.sessions.get(number=1)
        day = first.start.astimezone(site.zone).date()
        client = csrf_client(sign_in, admin)
        page = f"/accounts/sites/{site.pk}/closures/"
        done = post_from(
            client, page, page, {"action": "closure", "day": day.isoformat(), "reason": "Burst pipe"}
        )
        assert done.status_code == 302
        listed = client.get(page).content.decode()
        section = listed[listed.index('id="closed-day-bookings"') :]
        assert "course session 1" in section and "09:00" in section
        assert patient.family_name not in listed  # no names on the administrator's page
        told = Notification.objects.filter(kind="closure")
        assert set(told.values_list("recipient__username", flat=True)) == {"frontdesk1", "nurse1"}
        message = told.first()
        assert message is not None and "1 booked session(s)" in message.message
        assert f"site={site.pk}&week=2026-12-21" in message.link
        assert not Notification.objects.filter(recipient=elsewhere).exists()
        assert patient.family_name not in message.message
        # Moving it away empties the list.
        PlanSession.objects.filter(pk=first.pk).update(
            start=datetime.combine(date(2026, 12, 22), time(9), tzinfo=site.zone),
            end=datetime.combine(date(2026, 12, 22), time(10, 10), tzinfo=site.zone),
        )
        assert 'id="closed-day-bookings"' not in client.get(page).content.decode()


def test_closures_name_their_limits_and_can_be_opened_again(admin: Any, site: Any, sign_in: Any) -> None:
    with time_machine.travel(MONDAY_14_DEC, tick=False):
        client = csrf_client(sign_in, admin)
        page = f"/accounts/sites/{site.pk}/closures/"
        long = post_from(client, page, page, {"action": "closure", "day": "2026-12-30", "reason": "x" * 201})
        assert long.status_code == 422
        assert long.context["errors"] == {"reason": "is 201 characters; the limit is 200"}
        post_from(client, page, page, {"action": "closure", "day": "2026-12-30", "reason": "Staff training"})
        again = post_from(client, page, page, {"action": "closure", "day": "2026-12-30", "reason": "Other"})
        assert again.context["errors"] == {"day": "2026-12-30 is already closed (Staff training)"}
        # The holidays keep a day already closed as it was.
        post_from(client, page, page, {"action": "closure", "day": "2026-12-25", "reason": "Staff party"})
        result = sites.add_public_holidays(admin=admin, site=site, year=2026)
        assert [c.reason for c in result.already_closed] == ["Staff party"]
        assert SiteClosure.objects.get(site=site, day=date(2026, 12, 25)).reason == "Staff party"
        closure = SiteClosure.objects.get(site=site, day=date(2026, 12, 30))
        opened = post_from(client, page, page, {"action": "remove", "closure": str(closure.pk)})
        assert opened.status_code == 302 and not SiteClosure.objects.filter(pk=closure.pk).exists()
        removed = AuditEntry.objects.filter(action="delete", object_type="SiteClosure").get()
        assert json.loads(removed.before)["reason"] == "Staff training"


def test_only_administrators_of_the_organization_keep_the_calendar(
    admin: Any, front_desk: Any, nurse: Any, outsider: Any, other_site: Any, site: Any, sign_in: Any
) -> None:
    page = f"/accounts/sites/{site.pk}/closures/"
    assert csrf_client(sign_in, front_desk).get(page).status_code == 403
    assert csrf_client(sign_in, nurse).get(page).status_code == 403
    assert csrf_client(sign_in, admin).get(f"/accounts/sites/{other_site.pk}/closures/").status_code == 404
    with pytest.raises(sites.SiteSettingsError):
        sites.add_public_holidays(admin=nurse, site=site, year=2026)
    with pytest.raises(sites.SiteSettingsError):
        sites.add_closure(admin=admin, site=other_site, day=date(2026, 12, 30), reason="Not ours")
    assert not SiteClosure.objects.exists()
