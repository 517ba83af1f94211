"""A patient answers PHQ-9 item 9 with 2 on a phone; the prescriber sees the alert; the link works once."""

from __future__ import annotations

from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.measures import services


def test_phone_self_report_raises_an_alert_the_prescriber_sees(
    _browser: Any, live_server: Any, patient: Any, prescriber: Any, nurse: Any
) -> None:
    patient.prescriber = prescriber
    patient.save()
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])

    phone = _browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = phone.new_page()
    page.goto(f"/r/{token}/")
    assert page.inner_text("h1") == "Hello Testa"
    body = page.inner_text("body")
    assert "Examplesson" not in body and patient.mrn not in body
    assert (
        page.evaluate("() => document.documentElement.scrollWidth") <= 390
    )  # fits the phone, no sideways scroll
    for item in range(1, 9):
        page.check(f"input[name='phq9-item_{item}'][value='0']")
    page.check("input[name='phq9-item_9'][value='2']")
    page.click("button:has-text('Send my answers')")
    page.wait_for_selector("h1:has-text('Thank you')")
    assert "988" in page.inner_text(".crisis")
    page.goto(f"/r/{token}/")
    assert "not available" in page.inner_text("h1")  # the link cannot be used twice
    phone.close()

    desk = _browser.new_context(base_url=live_server.url)
    page = desk.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "prescriber1")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    device = TOTPDevice.objects.get(user=prescriber)
    page.fill("#id_token", f"{TOTP(device.bin_key).token():06d}")
    page.click("button[type=submit]")
    page.wait_for_selector("#critical-alerts")
    alerts = page.inner_text("#critical-alerts")
    assert "Examplesson" in alerts and "item 9" in alerts.lower()
    page.fill("#critical-alerts textarea", "Phoned the patient; safe, plan reviewed.")
    page.click("#critical-alerts button:has-text('Acknowledge')")
    page.wait_for_selector("text=Alert acknowledged.")
    assert page.locator("#critical-alerts").count() == 0
    desk.close()
