"""On the plan page, in Chromium: a nurse's move of session 2 closer to session 1 than the twice-weekly
induction allows is refused with the rule until a reason is typed beside the time; then the prescriber stops
the course with a reason, and the page shows the stop and the cancelled sessions."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.treatment.conftest import open_site, screened
from tests.treatment.test_plans import next_monday, plan_data

from ketaclinic.audit.models import AuditEntry
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Plan


def _sign_in(page: Any, user: Any) -> None:
    page.goto("/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    device = TOTPDevice.objects.get(user=user)
    page.fill("#id_token", f"{TOTP(device.bin_key).token():06d}")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))


def test_move_needs_a_reason_then_the_prescriber_stops_the_course(
    _browser: Any, live_server: Any, nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    open_site(site)
    screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    first = plan.sessions.get(number=1)
    assert first.start.astimezone(site.zone).date() == next_monday()
    tuesday = datetime.combine(next_monday() + timedelta(days=1), time(9), tzinfo=site.zone)

    nurse_view = _browser.new_context(base_url=live_server.url).new_page()
    nurse_view.set_default_timeout(15_000)
    _sign_in(nurse_view, nurse)
    nurse_view.goto(f"/plans/{plan.pk}/")
    row = nurse_view.locator("tbody tr").nth(1)
    row.locator("summary:has-text('Missed / move')").click()
    row.locator("input[name=start]").fill(tuesday.strftime("%Y-%m-%dT%H:%M"))
    row.locator("button:has-text('Move')").click()
    nurse_view.wait_for_selector(".msg.error")
    refused = nurse_view.locator(".msg.error").inner_text()
    assert "Not moved" in refused and "To move it anyway, give the reason" in refused
    assert plan.sessions.get(number=2).start != tuesday
    row = nurse_view.locator("tbody tr").nth(1)
    row.locator("summary:has-text('Missed / move')").click()
    row.locator("input[name=start]").fill(tuesday.strftime("%Y-%m-%dT%H:%M"))
    row.locator("input[name=spacing_override_reason]").fill("Travels abroad from Wednesday")
    row.locator("button:has-text('Move')").click()
    nurse_view.wait_for_selector("text=Session 2 moved.")
    assert plan.sessions.get(number=2).start == tuesday
    assert "Travels abroad from Wednesday" in nurse_view.locator("tbody tr").nth(1).inner_text()
    assert nurse_view.locator("#stop-course").count() == 0  # nurses cannot stop a course
    nurse_view.context.close()

    page = _browser.new_context(base_url=live_server.url).new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, prescriber)
    page.goto(f"/plans/{plan.pk}/")
    page.click("#stop-course summary")
    page.fill("#stop-reason", "Blood pressure not controlled")
    page.click("#stop-course button:has-text('Stop the course')")
    page.wait_for_selector("#course-stopped")
    assert "Blood pressure not controlled" in page.locator("#course-stopped").inner_text()
    assert "Sessions cancelled: 1, 2, 3" in page.locator(".msg.success").inner_text()
    assert page.locator("#stop-course").count() == 0
    assert page.locator("button:has-text('Open session')").count() == 0  # nothing booked is left
    assert Plan.objects.get(pk=plan.pk).status == "cancelled"
    assert AuditEntry.objects.filter(detail="course stopped", user=prescriber).count() == 1
    page.context.close()
