"""In Chromium (issue 14, the front desk's day): the front desk marks today's patient arrived from the home
page and sees "arrived HH:MM", then books the patient's next course session into a free chair from the
calendar, finding the patient by the end of the MRN in lower case."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.utils import timezone
from tests.browser.test_front_desk_and_today import _sign_in
from tests.treatment.conftest import open_site, screened
from tests.treatment.test_plans import next_monday, plan_data

from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession


def test_front_desk_marks_arrival_and_books_a_free_slot(
    browser_page: Any, front_desk: Any, nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    chairs = open_site(site)
    screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    first, second = plan.sessions.get(number=1), plan.sessions.get(number=2)
    tonight = datetime.combine(timezone.localdate(timezone.now(), site.zone), time(23, 0), tzinfo=site.zone)
    PlanSession.objects.filter(pk=first.pk).update(start=tonight, end=tonight + timedelta(minutes=50))
    page = browser_page
    _sign_in(page, front_desk)

    today = page.locator("#today")
    assert "Examplesson, Testa" in today.inner_text()
    today.locator("button:has-text('Mark arrived')").click()
    page.wait_for_selector("#today .tag.arrived")
    assert "arrived" in page.inner_text("#today") and "Mark arrived" not in page.inner_text("#today")
    first.refresh_from_db()
    assert first.arrived_at is not None and first.arrival_recorded_by == front_desk

    wednesday = next_monday() + timedelta(days=2)
    page.goto(f"/calendar/?site={site.pk}&week={next_monday().isoformat()}")
    page.click(f"a.book-link[href*='chair={chairs[1].pk}'][href*='start={wednesday.isoformat()}T08:00']")
    page.fill("#id_mrn", patient.mrn[-4:].lower())
    page.click("#find-patient button[type=submit]")
    page.wait_for_selector("#found")
    assert "Examplesson, Testa" in page.inner_text("#found")
    page.check(f"input[name=session][value='{second.pk}']")
    page.click("#found button:has-text('Book')")
    page.wait_for_selector("text=Booked:")
    second.refresh_from_db()
    local = second.start.astimezone(site.zone)
    assert (local.date(), local.time(), second.chair) == (wednesday, time(8, 0), chairs[1])
