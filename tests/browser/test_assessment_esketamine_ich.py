"""A prescriber records (by keyboard) an intake with a history of intracerebral haemorrhage: esketamine is not
eligible, the screening page says why and cites the source, and no plan can be made until the prescriber
overrides the contraindication with a written reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Chair
from ketaclinic.assessment.models import Intake, Screening, ScreeningOverride
from ketaclinic.treatment.models import Plan


def _code(user: Any) -> str:
    device = TOTPDevice.objects.get(user=user)
    return f"{TOTP(device.bin_key).token():06d}"


def test_ich_blocks_esketamine_until_a_prescriber_overrides(
    browser_page: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    site.opening_hours = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    site.save()
    Chair.objects.create(organization=site.organization, site=site, label="Chair 1")
    page = browser_page
    page.goto("/")
    page.fill("#id_username", "prescriber1")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    page.fill("#id_token", _code(prescriber))
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))

    # The intake, completed with the keyboard: focus a select and type the first letter of the answer.
    page.goto(f"/patients/{patient.pk}/")
    page.click(".assessment-section a:has-text('Intake')")
    page.click("text=Start the intake")
    page.focus("#id_indication")
    page.keyboard.type("Treatment")  # selects "Treatment-resistant depression"
    page.focus("#id_intracerebral_haemorrhage")
    page.keyboard.press("y")  # Unknown / No / Yes: "y" selects Yes
    assert page.input_value("#id_intracerebral_haemorrhage") == "yes"
    assert page.input_value("#id_indication") == "trd"
    page.focus("button:has-text('Save intake')")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Sign intake version 1")
    intake = Intake.objects.get(patient=patient)
    assert intake.data["intracerebral_haemorrhage"] == "yes" and intake.data["pregnancy"] == "unknown"

    page.click("text=Sign intake version 1")
    page.wait_for_selector("text=Run eligibility screening")
    page.click("text=Run eligibility screening")
    page.wait_for_selector("h1:has-text('Eligibility screening')")
    section = page.locator("#drug-esketamine")
    assert "Not eligible" in section.locator("h2").inner_text()
    text = section.inner_text()
    assert "History of intracerebral haemorrhage: esketamine is contraindicated (label)" in text
    assert "clinical.md §2.5: SPRAVATO label contraindication" in text
    page.click("text=Sign this screening")
    page.wait_for_selector("text=Signed by")
    assert Screening.objects.get(patient=patient).signed_at is not None

    # A plan is refused while the contraindication stands.
    start = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
    page.goto(f"/patients/{patient.pk}/plans/new/")
    page.select_option("#id_protocol", "esk-trd-label")
    page.fill("#id_start", start.isoformat())
    page.click("button:has-text('Create plan')")
    page.wait_for_selector(".plan-errors")
    assert "Esketamine (SPRAVATO) is not eligible" in page.inner_text(".plan-errors")
    assert not Plan.objects.exists()

    # The prescriber overrides with a reason; an empty reason is refused first.
    page.goto(f"/screenings/{Screening.objects.get().pk}/")
    page.click("button:has-text('Record override for Esketamine')")
    page.wait_for_selector("text=at least 10 characters")
    assert not ScreeningOverride.objects.exists()
    page.fill("#override-reason-esketamine", "Haemorrhage in 1998 after trauma; neurology cleared treatment")
    page.click("button:has-text('Record override for Esketamine')")
    page.wait_for_selector("text=Contraindication overridden by")

    page.goto(f"/patients/{patient.pk}/plans/new/")
    page.select_option("#id_protocol", "esk-trd-label")
    page.fill("#id_start", start.isoformat())
    page.click("button:has-text('Create plan')")
    page.wait_for_selector("h1:has-text('Treatment plan')")
    plan = Plan.objects.get()
    assert plan.screening_override is not None and plan.dose_mg == 56  # label day 1: 56 mg
    assert "Contraindication overridden" in page.inner_text("body")
    assert plan.sessions.count() == 16
