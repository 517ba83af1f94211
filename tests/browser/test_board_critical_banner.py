"""In real Chromium: a critical reading posted through the API puts a banner on the open live board without a
reload; the banner's link opens the session, whose own banner takes the acknowledgement; the board's banner
then clears (issue 13, point 8)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Chair
from ketaclinic.chairside import board
from ketaclinic.chairside.models import SessionAlert, TreatmentSession


@pytest.fixture(autouse=True)
def _streams_end_before_the_flush(transactional_db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(board, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(board, "SIGNED_IN_CHECK_SECONDS", 0.3)
    yield
    time.sleep(1.0)


def test_a_critical_reading_shows_on_the_board_banner_and_is_acknowledged_from_there(
    browser_page: Any, nurse: Any, site: Any, patient: Any
) -> None:
    session = TreatmentSession.objects.create(
        organization=site.organization,
        patient=patient,
        site=site,
        chair=Chair.objects.create(organization=site.organization, site=site, label="Chair 6"),
        protocol_id="iv-trd-elektd",
        drug="ketamine",
        route="iv",
        planned_dose_mg=Decimal("35"),
        scheduled_at=timezone.now() - timedelta(minutes=40),
        status="monitoring",
        status_changed_at=timezone.now() - timedelta(minutes=30),
        dose_started_at=timezone.now() - timedelta(minutes=30),
        created_by=nurse,
    )
    page = browser_page
    page.goto("/accounts/login/")
    page.fill("#id_username", nurse.username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    page.fill("#id_token", f"{TOTP(TOTPDevice.objects.get(user=nurse).bin_key).token():06d}")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/" not in url)

    page.goto("/board/main/")
    page.wait_for_selector("#board-link[data-state='live']")
    assert page.inner_text("#board-banner").strip() == ""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"].endswith("ketaclinic-csrf"))
    response = page.request.post(
        f"/api/sessions/{session.pk}/observations",
        headers={"X-CSRFToken": csrf, "Idempotency-Key": "banner-1"},
        data={
            "readings": [
                {
                    "observed_at": timezone.now().replace(microsecond=0).isoformat(),
                    "sbp_mmhg": 150,
                    "dbp_mmhg": 112,
                    "hr_bpm": 84,
                    "spo2_pct": 97,
                    "rr_per_min": 15,
                }
            ]
        },
    )
    assert response.status == 201, response.text()
    page.wait_for_selector("#board-banner .critical-banner", timeout=3000)  # pushed, no reload
    text = page.inner_text("#board-banner")
    assert "Chair 6" in text and "150/112" in text and "0 min" in text
    assert "Examplesson" not in text

    page.click("#board-banner a:has-text('Chair 6')")
    page.wait_for_selector("#critical-banner")
    page.fill("#critical-banner input[name=note]", "Repeat BP in 5 min, prescriber at the chair")
    page.click("#critical-banner button:has-text('Acknowledge')")
    page.wait_for_selector("#critical-banner", state="detached")  # the page came back without it
    assert "Acknowledged by" in page.inner_text("#alerts")
    assert SessionAlert.objects.get(session=session, code="dbp_high").acknowledged_by == nurse

    page.goto("/board/main/")
    page.wait_for_selector("#board-link[data-state='live']")
    assert page.locator("#board-banner .critical-banner").count() == 0
