"""In Chromium: a nurse receives a box of ketamine vials into the site's stock, then records what she drew
for a patient's infusion, what was given and what was wasted; the waste is refused until the prescriber
beside her types their own password and authenticator code; the lot's balance follows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.ledger.models import LedgerEntry, StockLot


def _code(user: Any) -> str:
    return f"{TOTP(TOTPDevice.objects.get(user=user).bin_key).token():06d}"


def test_receive_then_use_with_a_witnessed_waste(
    browser_page: Any, nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    session = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="iv-trd-elektd",
        scheduled_at=timezone.now(),
        planned_dose_mg=35,
    )
    TreatmentSession.objects.filter(pk=session.pk).update(status="dosing", dose_started_at=timezone.now())
    page = browser_page
    page.goto("/")
    page.fill("#id_username", "nurse1")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    page.fill("#id_token", _code(nurse))
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))

    page.click("nav >> text=Controlled drugs")
    page.wait_for_selector("#receive")
    page.fill("#r-product", "Ketamine HCl 50 mg/mL, 10 mL vial")
    page.fill("#r-lot", "K-BROWSER")
    page.fill("#r-expiry", (date.today() + timedelta(days=300)).isoformat())
    page.fill("#r-strength", "50")
    page.fill("#r-quantity", "50")
    page.fill("#r-containers", "5")
    page.fill("#r-supplier", "Example Wholesale Inc.")
    page.fill("#r-address", "1 Depot Road, Springfield, IL")
    page.fill("#r-dea", "RE1234563")
    page.click("#receive button:has-text('Receive')")
    page.wait_for_selector("#lot-balance")
    assert "50 mL" in page.inner_text("#lot-balance")

    page.select_option("#u-session", str(session.pk))
    page.fill("#u-drawn", "10")
    page.fill("#u-given", "7")
    page.fill("#u-wasted", "3")
    page.click("#use button:has-text('Record use')")
    page.wait_for_selector(".msg.error")
    assert "a waste needs a witness" in page.inner_text(".msg.error")
    assert page.input_value("#u-drawn") == "10"  # what was typed is kept (passwords are not)
    page.select_option("#u-witness", str(prescriber.pk))
    page.fill("#u-witness-password", "correct horse battery staple")
    page.fill("#u-witness-code", _code(prescriber))
    page.click("#use button:has-text('Record use')")
    page.wait_for_selector("text=Use recorded")
    assert "40 mL" in page.inner_text("#lot-balance")
    assert "witness Prescriber1" in page.inner_text("#entries")
    lot = StockLot.objects.get(lot="K-BROWSER")
    use = LedgerEntry.objects.get(lot=lot, kind="use")
    assert (use.drawn, use.administered, use.wasted, use.witness) == (10, 7, 3, prescriber)
