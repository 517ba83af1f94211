"""The live board in real Chromium: a reading posted through the API shows on the chair's card within 2 s,
without reloading the page (issue 5 item 6).

pytest-django's ``live_server`` is a threaded WSGI server, so the stream is served by the board's plain
generator there (production runs the async generator under uvicorn; tests/chairside/test_board.py drives that
one through Django's AsyncClient)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Chair
from ketaclinic.chairside import board
from ketaclinic.chairside.models import Observation, TreatmentSession


@pytest.fixture(autouse=True)
def _streams_end_before_the_flush(transactional_db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The WSGI stream notices a closed page only when it writes: heartbeat often, and give it time to end
    after the page is closed and before the test database is emptied."""
    monkeypatch.setattr(board, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(board, "SIGNED_IN_CHECK_SECONDS", 0.3)
    yield
    time.sleep(1.0)


def _sign_in(page: Any, user: Any) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    device = TOTPDevice.objects.get(user=user)
    page.fill("#id_token", f"{TOTP(device.bin_key).token():06d}")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/" not in url)


def _session(nurse: Any, patient: Any, site: Any, chair: str, started_min_ago: int) -> TreatmentSession:
    now = timezone.now()
    return TreatmentSession.objects.create(
        organization=site.organization,
        patient=patient,
        site=site,
        chair=Chair.objects.create(organization=site.organization, site=site, label=chair),
        protocol_id="iv-trd-elektd",
        drug="ketamine",
        route="iv",
        planned_dose_mg=Decimal("35"),
        scheduled_at=now - timedelta(minutes=started_min_ago + 20),
        status="monitoring",
        status_changed_at=now - timedelta(minutes=started_min_ago),
        dose_started_at=now - timedelta(minutes=started_min_ago),
        created_by=nurse,
    )


def test_a_reading_posted_through_the_api_shows_on_the_board_within_two_seconds(
    browser_page: Any, nurse: Any, site: Any, make_patient: Any
) -> None:
    watched = _session(
        nurse, make_patient(nurse, given_name="Ada", family_name="Watched"), site, "Chair 1", 30
    )
    other = _session(nurse, make_patient(nurse, given_name="Bo", family_name="Quiet"), site, "Chair 2", 12)
    Observation.objects.create(
        organization=site.organization,
        session=watched,
        observed_at=timezone.now() - timedelta(minutes=25),
        sbp_mmhg=128,
        dbp_mmhg=80,
        hr_bpm=72,
        spo2_pct=98,
        rr_per_min=14,
        entered_by=nurse,
    )

    page = browser_page
    _sign_in(page, nurse)
    page.goto("/board/main/")
    card = f"#chair-{watched.pk}"
    page.wait_for_selector("#board-link[data-state='live']")
    assert "Watched, Ada" in page.inner_text(card) and "Quiet, Bo" in page.inner_text(f"#chair-{other.pk}")
    assert "128/80" in page.inner_text(f"{card} .vital.bp dd")
    assert "OVERDUE" in page.inner_text(f"{card} .chair-due")  # last reading 25 min ago; due every 10 (+5)
    page.evaluate("() => { window.boardMarker = 'not reloaded'; }")

    csrf = next(c["value"] for c in page.context.cookies() if c["name"].endswith("ketaclinic-csrf"))
    observed = timezone.now().replace(microsecond=0)
    response = page.request.post(
        f"/api/sessions/{watched.pk}/observations",
        headers={"X-CSRFToken": csrf, "Idempotency-Key": "board-live-1"},
        data={
            "readings": [
                {
                    "observed_at": observed.isoformat(),
                    "sbp_mmhg": 166,
                    "dbp_mmhg": 101,
                    "hr_bpm": 94,
                    "spo2_pct": 96,
                    "rr_per_min": 16,
                    "moaas": 4,
                }
            ]
        },
    )
    assert response.status == 201, response.text()
    posted = time.monotonic()
    page.wait_for_selector(f"{card} .vital.bp dd:has-text('166/101')", timeout=2000)
    assert time.monotonic() - posted < 2.0
    text = page.inner_text(card)
    assert "94" in text and "OVERDUE" not in text  # the new reading also cleared the overdue flag
    assert page.locator(f"{card} svg.spark polyline").count() >= 2  # the BP trend now has two lines
    assert page.evaluate("() => window.boardMarker") == "not reloaded"
    assert "Quiet, Bo" in page.inner_text(f"#chair-{other.pk}")  # the other chair is untouched
    assert page.evaluate("() => document.querySelectorAll('[style]').length") == 0

    Session.objects.all().delete()  # the session ends (signed out elsewhere, or ended by an administrator)
    page.wait_for_selector(".board-expired", timeout=3000)
    body = page.inner_text("body")
    assert "Your session has ended" in body and "Watched" not in body and "Quiet" not in body  # no PHI left
    assert page.get_attribute("#board-link", "data-state") == "lost"  # the stream is closed, not retried
