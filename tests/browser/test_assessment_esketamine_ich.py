"""A prescriber records (by keyboard) an intake with a history of intracerebral haemorrhage: esketamine is not
eligible, the screening page says why and cites the source, and no esketamine plan can be made: the SPRAVATO
label's contraindication cannot be overridden for a patient (no override form). Racemic ketamine, where the
same item is an extrapolated default, may be overridden with a written reason."""

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


def test_ich_blocks_esketamine_for_good_and_racemic_ketamine_until_a_prescriber_overrides(
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

    # No override for esketamine: the page says why, and offers the form for racemic ketamine only.
    page.goto(f"/screenings/{Screening.objects.get().pk}/")
    text = section.inner_text()
    assert "contraindicated by the SPRAVATO label: cannot be overridden" in text
    assert section.locator("form.override-form").count() == 0
    assert page.locator("button:has-text('Record override for Esketamine')").count() == 0
    ketamine = page.locator("#drug-ketamine")
    assert "Not eligible" in ketamine.locator("h2").inner_text()

    # The prescriber overrides racemic ketamine with a reason; an empty reason is refused first.
    page.click("button:has-text('Record override for Ketamine')")
    page.wait_for_selector("text=at least 10 characters")
    assert not ScreeningOverride.objects.exists()
    page.fill("#override-reason-ketamine", "Haemorrhage in 1998 after trauma; neurology cleared treatment")
    page.click("button:has-text('Record override for Ketamine')")
    page.wait_for_selector("text=Contraindication overridden by")
    assert list(ScreeningOverride.objects.values_list("drug", flat=True)) == ["ketamine"]

    # Esketamine is still refused, naming the label item; the plan page shows only ketamine as overridden.
    page.goto(f"/patients/{patient.pk}/plans/new/")
    gate = page.inner_text(".plan-gate")
    assert "Ketamine (racemic) — Not eligible (contraindication overridden)" in gate
    assert "Esketamine (SPRAVATO) — Not eligible;" in gate  # drugs sorted: esketamine first, not overridden
    page.select_option("#id_protocol", "esk-trd-label")
    page.fill("#id_start", start.isoformat())
    page.click("button:has-text('Create plan')")
    page.wait_for_selector(".plan-errors")
    errors = page.inner_text(".plan-errors")
    assert "History of intracerebral haemorrhage" in errors and "cannot be overridden" in errors
    assert not Plan.objects.exists()
