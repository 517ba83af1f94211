"""In Chromium: front desk registers a patient who is already registered under a shortened name and is
stopped with the existing record named, then saves a twin with a reason; a nurse opens today's course
session from the home page's Today list and lands on the chairside record with the plan's dose."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.treatment.conftest import open_site, screened
from tests.treatment.test_plans import plan_data

from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.patients.models import Patient
from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession


def _sign_in(page: Any, user: Any) -> None:
    page.goto("/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    page.fill("#id_token", f"{TOTP(TOTPDevice.objects.get(user=user).bin_key).token():06d}")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))


def test_front_desk_is_stopped_before_registering_a_duplicate(
    browser_page: Any, front_desk: Any, patient: Any
) -> None:
    page = browser_page
    _sign_in(page, front_desk)
    page.click("text=Register a new patient")
    page.fill("#id_given_name", "T")  # the existing Testa Examplesson, born 1980-05-17, as an initial
    page.fill("#id_family_name", "examplesson")
    page.fill("#id_date_of_birth", "1980-05-17")
    page.select_option("#id_sex", "female")
    page.click("button:has-text('Save')")
    page.wait_for_selector("#possible-duplicates")
    listed = page.inner_text("#possible-duplicates")
    assert patient.mrn in listed and "Examplesson, Testa" in listed
    assert Patient.objects.count() == 1
    page.fill("#id_given_name", "Tessa")
    page.fill("#id_not_a_duplicate_reason", "Twin sister, both present with ID")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Examplesson, Tessa')")
    assert Patient.objects.count() == 2


def test_nurse_opens_todays_course_session_from_the_home_page(
    browser_page: Any, nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    chairs = open_site(site)
    screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    services.verify_dose(user=nurse, plan=plan)
    # Booked for now: a course session opens from 2 h before its time to the end of its day (issue 14).
    at = timezone.localtime(timezone.now(), site.zone).replace(second=0, microsecond=0)
    row = plan.sessions.get(number=2)
    PlanSession.objects.filter(pk=row.pk).update(start=at, end=at + timedelta(minutes=70), chair=chairs[1])
    page = browser_page
    _sign_in(page, nurse)
    today = page.locator("#today")
    assert "Examplesson, Testa" in today.inner_text() and "C2" in today.inner_text()
    assert "dose check pending" not in today.inner_text()  # verified above
    today.locator("button:has-text('Open session')").click()
    page.wait_for_selector("h1:has-text('Examplesson')")
    session = TreatmentSession.objects.get(planned_session_id=row.pk)
    assert page.url.endswith(f"/sessions/{session.pk}/")
    assert session.planned_dose_mg == plan.dose_mg and session.chair == chairs[1]
    page.goto("/")
    assert page.locator("#today button:has-text('Open session')").count() == 0
    assert "Scheduled" in page.inner_text("#today")
