"""From an empty clinic in real Chromium: the administrator invites a new nurse, the nurse opens the e-mailed link,
chooses a password, enrols an authenticator from the page's key and reaches the patient list."""

from __future__ import annotations

import base64
import re
from typing import Any

from django.core import mail
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import User


def _code(user: Any) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{TOTP(device.bin_key).token():06d}"


def test_an_administrator_invites_a_nurse_who_enrols_and_signs_in(
    _browser: Any, live_server: Any, admin: Any, site: Any
) -> None:
    desk = _browser.new_context(base_url=live_server.url)
    page = desk.new_page()
    page.set_default_timeout(15_000)
    page.goto("/accounts/login/")
    page.fill("#id_username", "admin1")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    page.fill("#id_token", _code(admin))
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))

    page.click("nav >> text=Staff accounts")
    page.click("#invite")
    page.fill("#f-username", "j.okafor")
    page.fill("#f-email", "joy.okafor@example.org")
    page.fill("#f-first_name", "Joy")
    page.fill("#f-last_name", "Okafor")
    page.select_option("#f-role", "nurse")
    page.check(f"input[name=sites][value='{site.pk}']")
    page.click("button:has-text('Send the invitation')")
    page.wait_for_selector("#account-status")
    assert "invited, link not used yet" in page.inner_text("#account-status")
    desk.close()

    assert len(mail.outbox) == 1
    path = re.search(r"(/accounts/link/[A-Za-z0-9_-]+/)", mail.outbox[0].body)
    assert path is not None
    joy_context = _browser.new_context(base_url=live_server.url)
    joy = joy_context.new_page()
    joy.set_default_timeout(15_000)
    joy.goto(path.group(1))
    joy.wait_for_url("**/accounts/link/")
    assert "Welcome, Joy" in joy.inner_text("h1")
    joy.fill("#f-password", "lantern orchard velvet harbour")
    joy.fill("#f-password-again", "lantern orchard velvet harbour")
    joy.click("button:has-text('Set my password')")
    joy.wait_for_url("**/accounts/mfa/setup/")
    secret = joy.inner_text("code.secret").strip()
    code = f"{TOTP(base64.b32decode(secret)).token():06d}"
    joy.fill("#id_token", code)
    joy.click("button:has-text('Confirm')")
    joy.wait_for_selector("h1:has-text('Your recovery codes')")
    joy.click("text=I have saved them")
    joy.wait_for_url(lambda url: url.endswith("/"))
    assert "Joy" in joy.inner_text(".who")
    joy.click("nav >> text=Patients")
    joy.wait_for_url("**/patients/")
    nurse = User.objects.get(username="j.okafor")
    assert nurse.role == "nurse" and nurse.has_usable_password()
    # The link is spent: opening it again is refused.
    joy.goto(path.group(1))
    assert "This link cannot be used" in joy.inner_text("h1")
    joy_context.close()
