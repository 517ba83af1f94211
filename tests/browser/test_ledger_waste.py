"""In Chromium: a nurse receives a box of ketamine vials into the site's stock (a Spravato box typed in mL is
refused), then starts a patient's infusion from that lot on the session page: the strength comes from the
lot, a volume drawn for another strength is refused, the waste is witnessed by the prescriber who checks the
dose with their own password and authenticator code, and the register and the lot's balance follow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.clock import clinic_today
from tests.ledger.conftest import ready_to_dose

from ketaclinic.chairside.models import Administration
from ketaclinic.ledger.models import LedgerEntry, StockLot


def _code(user: Any) -> str:
    TOTPDevice.objects.filter(user=user).update(last_t=-1)
    return f"{TOTP(TOTPDevice.objects.get(user=user).bin_key).token():06d}"


def _receive(
    page: Any,
    drug: str,
    product: str,
    lot: str,
    unit: str,
    strength: str,
    quantity: str,
    containers: str = "5",
) -> None:
    page.select_option("#r-drug", drug)
    page.fill("#r-product", product)
    page.fill("#r-lot", lot)
    page.fill("#r-expiry", (clinic_today() + timedelta(days=300)).isoformat())
    page.select_option("#r-unit", unit)
    page.fill("#r-strength", strength)
    page.fill("#r-quantity", quantity)
    page.fill("#r-containers", containers)
    page.fill("#r-supplier", "Example Wholesale Inc.")
    page.fill("#r-address", "1 Depot Road, Springfield, IL")
    page.fill("#r-dea", "RE1234563")
    page.click("#receive button:has-text('Receive')")


def test_receive_then_dose_from_the_lot_with_a_witnessed_waste(
    browser_page: Any, nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    session = ready_to_dose(nurse, prescriber, patient)  # IV, 35 mg, the gate open
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
    _receive(page, "esketamine", "Spravato 28 mg", "ESK-ML", "mL", "28", "5")
    page.wait_for_selector(".msg.error")
    assert "esketamine is received in devices, not mL" in page.inner_text(".msg.error")
    assert not StockLot.objects.exists()
    _receive(page, "ketamine", "Ketamine HCl 50 mg/mL, 10 mL vial", "K-BROWSER", "mL", "50", "50")
    page.wait_for_selector("#lot-balance")
    assert "50 mL" in page.inner_text("#lot-balance")

    # At the chair: the lot is chosen from the site's stock; its strength is not typed.
    page.goto(f"/sessions/{session.pk}/")
    offered = page.inner_text("#i-lot")
    assert "50 mg/mL · lot K-BROWSER" in offered and "50 mL left" in offered

    def start(given: str, wasted: str = "0") -> None:
        """35 mg into a 100 mL bag at 150 mL/h; the prescriber checks it and signs."""
        page.fill("#i-dose", "35")
        page.fill("#i-given", given)
        page.fill("#i-wasted", wasted)
        page.fill("#i-vol", "100")
        page.fill("#i-rate", "150")
        page.select_option("#i-verified_by", str(prescriber.pk))
        page.fill("#i-verified_by-pw", "correct horse battery staple")
        page.fill("#i-verified_by-code", _code(prescriber))
        page.click("#start-infusion")

    start("3.5")  # the volume for a 10 mg/mL vial
    page.wait_for_selector(".msg.error")
    assert "3.5 mL of lot K-BROWSER (50 mg/mL) is 175 mg, not the 35 mg dose" in page.inner_text("main")
    assert not Administration.objects.exists()
    start("0.7", "0.3")
    page.wait_for_selector("#change-rate")
    assert "(vial 50 mg/mL) · in 100 mL = 0.35 mg/mL · lot K-BROWSER" in page.inner_text("#administrations")
    card = page.inner_text("#controlled-drugs")
    assert "Infusion started, 35 mg" in card and "1 mL" in card and "Prescriber1" in card

    page.click("#controlled-drugs a:has-text('K-BROWSER')")
    page.wait_for_selector("#lot-balance")
    assert "49 mL" in page.inner_text("#lot-balance")
    assert "drawn 1, given 0.7, wasted 0.3" in page.inner_text("#entries")
    assert "witness Prescriber1" in page.inner_text("#entries")
    use = LedgerEntry.objects.get(kind="use")
    assert (use.drawn, use.administered, use.wasted, use.witness) == (
        1,
        Decimal("0.7"),
        Decimal("0.3"),
        prescriber,
    )
    assert use.administration == Administration.objects.get(kind="infusion_start")
