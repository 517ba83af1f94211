"""Thirty chairs on one wall screen (1920×1080): every card is visible at once and readable (issue 5 item 6)."""

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
from ketaclinic.chairside.models import Observation, SessionAlert, TreatmentSession


@pytest.fixture(autouse=True)
def _streams_end_before_the_flush(transactional_db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The WSGI stream notices a closed page only when it writes: heartbeat often, and give it time to end
    after the page is closed and before the test database is emptied."""
    monkeypatch.setattr(board, "HEARTBEAT_SECONDS", 0.3)
    yield
    time.sleep(1.0)


def _fill_site(nurse: Any, site: Any, make_patient: Any, chairs: int) -> list[TreatmentSession]:
    now = timezone.now()
    sessions = []
    for n in range(1, chairs + 1):
        patient = make_patient(
            nurse, given_name=f"Patient{n:02d}", family_name=f"Chairholder-Longername{n:02d}"
        )
        session = TreatmentSession.objects.create(
            organization=site.organization,
            patient=patient,
            site=site,
            chair=Chair.objects.create(organization=site.organization, site=site, label=f"C{n:02d}"),
            protocol_id="esk-trd-label" if n % 2 else "iv-trd-elektd",
            drug="esketamine" if n % 2 else "ketamine",
            route="intranasal" if n % 2 else "iv",
            planned_dose_mg=Decimal("84" if n % 2 else "35"),
            scheduled_at=now - timedelta(minutes=90),
            status="monitoring",
            status_changed_at=now - timedelta(minutes=60),
            dose_started_at=now - timedelta(minutes=60 + n),
            created_by=nurse,
        )
        Observation.objects.bulk_create(
            Observation(
                organization=site.organization,
                session=session,
                observed_at=now - timedelta(minutes=60 - 10 * k),
                sbp_mmhg=120 + 3 * k + n,
                dbp_mmhg=78 + k,
                hr_bpm=70 + k,
                spo2_pct=98 - k % 2,
                rr_per_min=14,
                moaas=5 - k % 2,
                entered_by=nurse,
            )
            for k in range(6)
        )
        if n % 7 == 0:
            SessionAlert.objects.create(
                organization=site.organization,
                session=session,
                code="sbp_high",
                severity="critical",
                message="SBP ≥ 180",
                source="clinical.md §7.2",
                dedup_key="sbp_high",
                raised_at=now,
            )
        sessions.append(session)
    return sessions


def test_thirty_chairs_fit_one_wall_screen(
    _browser: Any, live_server: Any, nurse: Any, site: Any, make_patient: Any
) -> None:
    _fill_site(nurse, site, make_patient, 30)
    started = time.monotonic()
    feed = board.BoardFeed(site=site, user_id=nurse.pk, session_key="k")
    feed.opening()
    feed.poll()
    assert time.monotonic() - started < 2.0  # a full redraw and a poll of 30 chairs are cheap

    context = _browser.new_context(base_url=live_server.url, viewport={"width": 1920, "height": 1080})
    try:
        page = context.new_page()
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
        assert page.locator("article.chair").count() == 30
        assert "30 active chairs" in page.inner_text("#board-summary")
        assert page.locator("article.chair.sev-critical").count() == 4  # chairs 7, 14, 21, 28
        assert "4 critical alerts not acknowledged" in page.inner_text("#board-banner")  # and still fits
        # every card lies inside the viewport: no scrolling on the wall screen
        bottom = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('article.chair')]"
            ".map(e => e.getBoundingClientRect().bottom))"
        )
        assert bottom <= 1080
        # the vital numbers are at least 20 px high (readable from across the room)
        size = page.evaluate(
            "() => parseFloat(getComputedStyle(document.querySelector('.vital dd')).fontSize)"
        )
        assert size >= 20
    finally:
        context.close()
