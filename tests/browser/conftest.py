"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the live test server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KETACLINIC_CHROMIUM", "/usr/bin/chromium")


# Module scope: Playwright runs an event loop in this thread while open, which would break later asyncio tests.
@pytest.fixture(scope="module")
def _browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (the browser tests need it)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in fixtures are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_browser: Any, live_server: Any) -> Iterator[Any]:
    context = _browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def browser_sign_in(browser_page: Any) -> Any:
    """``browser_sign_in(user)``: sign ``user`` in on ``browser_page`` with password and authenticator code."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def do(user: Any) -> Any:
        page = browser_page
        page.goto("/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "correct horse battery staple")
        page.click("button[type=submit]")
        page.wait_for_url("**/accounts/mfa/")
        page.fill("#id_token", f"{TOTP(TOTPDevice.objects.get(user=user).bin_key).token():06d}")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/" not in url)
        return page

    return do


@pytest.fixture
def clinic(
    _browser: Any, live_server: Any, site: Any, admin: Any, front_desk: Any, nurse: Any, prescriber: Any
) -> Iterator[Any]:
    """An empty clinic (tests/browser/journey_steps.py): a site with two chairs and its staff, one signed-in
    browser window each, and nothing else."""
    from tests.browser.journey_steps import Clinic, empty_clinic

    staff = {"admin": admin, "front_desk": front_desk, "nurse": nurse, "prescriber": prescriber}
    clinic = Clinic(_browser, live_server.url, site, empty_clinic(site), **staff)
    yield clinic
    clinic.close()
