"""A nurse signs in with password and TOTP in real Chromium, registers a patient and finds them by search."""

from __future__ import annotations

from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.patients.models import Patient


def _code(user: Any) -> str:
    device = TOTPDevice.objects.get(user=user)
    return f"{TOTP(device.bin_key).token():06d}"


def test_sign_in_with_totp_register_a_patient_and_find_them(browser_page: Any, nurse: Any) -> None:
    page = browser_page
    page.goto("/")
    assert page.url.endswith("/accounts/login/")
    page.fill("#id_username", "nurse1")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    page.fill("#id_token", _code(nurse))
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))
    assert "Nurse1" in page.inner_text(".who")

    page.click("text=Register a new patient")
    page.fill("#id_given_name", "Wrenna")
    page.fill("#id_family_name", "Browsertest")
    page.fill("#id_date_of_birth", "1984-07-09")
    page.select_option("#id_sex", "female")
    page.fill("#id_weight_kg", "500")  # a typo: caught and explained, nothing saved
    page.fill("#id_height_cm", "168")
    page.click("button:has-text('Save')")
    assert "outside the accepted range 20–350 kg" in page.inner_text(".field.invalid")
    assert not Patient.objects.filter(family_name="Browsertest").exists()
    page.fill("#id_weight_kg", "64")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Browsertest, Wrenna')")
    mrn = Patient.objects.get(family_name="Browsertest").mrn

    page.click("nav >> text=Patients")
    page.fill("#id_name", "browsert")
    page.click("button:has-text('Search')")
    page.wait_for_selector("#patient-results")
    rows = page.locator("#patient-results tbody tr")
    assert rows.count() == 1
    assert mrn in rows.first.inner_text()
    assert "browsert" not in page.url  # the search never reaches the URL
    rows.first.locator("a").click()
    page.wait_for_selector("h1:has-text('Browsertest, Wrenna')")
    assert "22.7 kg/m²" in page.inner_text("body")  # 64 / 1.68² = 22.68
    # No PHI in browser storage: htmx keeps only the current path (an opaque id), never page content.
    stored = page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert "Browsertest" not in stored and mrn not in stored and "1984" not in stored
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => Object.keys(sessionStorage)") in ([], ["htmx-current-path-for-history"])
