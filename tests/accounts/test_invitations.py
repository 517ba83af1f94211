"""Invitations and password resets by e-mailed one-time links (issue 14 point 5): an administrator invites a new
nurse from an empty clinic; the nurse opens the link, chooses a password under the project's rules and enrols
an authenticator before anything else opens. A link works once, expires, and only its hash is stored. A reset
keeps the authenticator and signs the person out everywhere."""

from __future__ import annotations

import hashlib
import re
import smtplib
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.hashers import identify_hasher
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.accounts.test_staff_admin import csrf_client, post
from tests.conftest import PASSWORD

from ketaclinic.accounts.models import AccountLink, User
from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.models import Notification

NEW_PASSWORD = "lantern orchard velvet harbour"


def invite_nurse(client: Client, token: str, site: Any, **extra: Any) -> Any:
    data = {
        "username": "j.okafor",
        "email": "joy.okafor@example.org",
        "first_name": "Joy",
        "last_name": "Okafor",
        "role": "nurse",
        "sites": [site.pk],
        **extra,
    }
    return post(client, token, "/accounts/users/invite/", **data)


def link_path(message: Any) -> str:
    found = re.search(r"(/accounts/link/[A-Za-z0-9_-]+/)", message.body)
    assert found, message.body
    return found.group(1)


def totp_code(user: Any, *, confirmed: bool) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=confirmed)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    return f"{TOTP(device.bin_key).token():06d}"


def choose_password(
    browser: Client, path: str, password: str = NEW_PASSWORD, again: str | None = None
) -> Any:
    """Open the link, then post the password with the page's own CSRF token."""
    opened = browser.get(path)
    assert opened.status_code == 302 and opened["Location"] == "/accounts/link/", opened.content[:300]
    form = browser.get("/accounts/link/")
    assert form.status_code == 200
    token = form.content.decode().split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return browser.post(
        "/accounts/link/",
        {
            "csrfmiddlewaretoken": token,
            "password": password,
            "password_again": password if again is None else again,
        },
    )


def test_a_new_nurse_is_invited_chooses_a_password_enrols_totp_and_is_signed_in(
    admin: Any, make_user: Any, org: Any, site: Any, sign_in: Any
) -> None:
    other_admin = make_user("admin2", org, "admin", [], all_sites=True)
    client, token = csrf_client(admin, sign_in)
    response = invite_nurse(client, token, site)
    assert response.status_code == 302
    joy = User.objects.get(username="j.okafor")
    assert response["Location"] == f"/accounts/users/{joy.pk}/"
    assert (joy.role, joy.email, [s.code for s in joy.sites.all()]) == (
        "nurse",
        "joy.okafor@example.org",
        ["main"],
    )
    assert not joy.has_usable_password()
    # The e-mail: to Joy only, with the link; the database holds its hash, never the token.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["joy.okafor@example.org"]
    path = link_path(mail.outbox[0])
    raw = path.rstrip("/").rsplit("/", 1)[1]
    link = AccountLink.objects.get(user=joy)
    assert link.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert not AccountLink.objects.filter(token_hash=raw).exists()
    assert raw not in str(list(AuditEntry.objects.values_list("before", "after", "detail")))
    assert "Admin1 has opened a ketaclinic account for you" in mail.outbox[0].body
    # The page the administrator sees says an invitation is waiting; the other administrator was told.
    detail = client.get(f"/accounts/users/{joy.pk}/").content.decode()
    assert "invited, link not used yet" in detail and "not set up yet" in detail
    assert raw not in detail
    assert Notification.objects.filter(recipient=other_admin, kind="account-role").exists()
    added = AuditEntry.objects.get(category="account-privileges", action="add", object_id=str(joy.pk))
    assert added.username == "admin1" and '"role":"nurse"' in added.after.replace(" ", "")

    browser = Client(enforce_csrf_checks=True)
    # Too short a password is refused with the rule, and the link is not used up.
    short = choose_password(browser, path, "short")
    assert short.status_code == 422 and "at least 12 characters" in short.content.decode()
    differ = choose_password(browser, path, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert differ.status_code == 422 and "the two passwords differ" in differ.content.decode()
    done = choose_password(browser, path)
    assert done.status_code == 302 and done["Location"] == "/accounts/mfa/setup/"
    joy.refresh_from_db()
    assert joy.check_password(NEW_PASSWORD) and identify_hasher(joy.password).algorithm == "argon2"
    # Signed in with the password only: nothing with patient data opens before the authenticator.
    assert browser.get("/patients/").status_code == 302
    assert browser.get("/").status_code == 302
    setup = browser.get("/accounts/mfa/setup/")
    assert setup.status_code == 200
    csrf = setup.content.decode().split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    enrolled = browser.post(
        "/accounts/mfa/setup/", {"csrfmiddlewaretoken": csrf, "token": totp_code(joy, confirmed=False)}
    )
    assert enrolled.status_code == 200 and b"recovery codes" in enrolled.content
    assert browser.get("/patients/").status_code == 200
    link.refresh_from_db()
    assert link.used_at is not None
    steps = list(AuditEntry.objects.filter(user=joy, action="login").values_list("detail", flat=True))
    assert steps == ["password (chosen from a one-time link)", "second factor enrolled"]

    # The same link again: refused, and the refusal is logged.
    again = Client().get(path)
    assert again.status_code == 410 and b"expired or has already been used" in again.content
    assert AuditEntry.objects.filter(outcome="failure", detail__startswith="account link refused").exists()


def test_an_expired_invitation_is_refused_and_a_new_one_works(
    admin: Any, site: Any, sign_in: Any, settings: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    invite_nurse(client, token, site)
    joy = User.objects.get(username="j.okafor")
    old_path = link_path(mail.outbox[0])
    later = timezone.now() + timedelta(hours=settings.KETACLINIC_INVITATION_HOURS, minutes=1)
    with time_machine.travel(later, tick=False):
        assert Client().get(old_path).status_code == 410
    client, token = csrf_client(admin, sign_in)
    detail = client.get(f"/accounts/users/{joy.pk}/").content.decode()
    assert "E-mail a new invitation link" in detail
    assert post(client, token, f"/accounts/users/{joy.pk}/", action="link").status_code == 302
    assert len(mail.outbox) == 2
    new_path = link_path(mail.outbox[1])
    assert new_path != old_path
    assert choose_password(Client(enforce_csrf_checks=True), new_path).status_code == 302


def test_a_newer_link_revokes_the_older_one_and_so_does_a_deactivation(
    admin: Any, site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    invite_nurse(client, token, site)
    joy = User.objects.get(username="j.okafor")
    first = link_path(mail.outbox[0])
    post(client, token, f"/accounts/users/{joy.pk}/", action="link")
    second = link_path(mail.outbox[1])
    assert Client().get(first).status_code == 410
    # A link opened in a browser, then the account is deactivated before the password is chosen.
    browser = Client()
    assert browser.get(second).status_code == 302
    post(client, token, f"/accounts/users/{joy.pk}/", action="deactivate")
    assert browser.get("/accounts/link/").status_code == 410
    assert (
        browser.post(
            "/accounts/link/", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        ).status_code
        == 410
    )
    joy.refresh_from_db()
    assert not joy.has_usable_password()


def test_a_changed_email_address_revokes_the_link_sent_to_the_old_one(
    admin: Any, site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    invite_nurse(client, token, site)
    joy = User.objects.get(username="j.okafor")
    path = link_path(mail.outbox[0])
    post(
        client,
        token,
        f"/accounts/users/{joy.pk}/",
        action="profile",
        first_name="Joy",
        last_name="Okafor",
        email="joy@example.org",
        phone="",
    )
    assert Client().get(path).status_code == 410
    entry = AuditEntry.objects.get(category="account-profile")
    assert "1 unused link(s) to the old address revoked" in entry.detail


def test_a_bad_invitation_names_every_field_and_creates_nothing(
    admin: Any, nurse: Any, other_site: Any, site: Any, sign_in: Any
) -> None:
    admin.email = "ada@example.org"
    admin.save()
    client, token = csrf_client(admin, sign_in)
    response = invite_nurse(
        client, token, site, username="nurse1", email="ada@example.org", first_name="", role="surgeon"
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert errors["username"] == "'nurse1' is taken"
    assert "your own address" in errors["email"]
    assert errors["first_name"] == "required"
    assert "choose one of Administrator, Prescriber, Nurse, Front desk" in errors["role"]
    assert 'value="Okafor"' in response.content.decode()  # what was typed stays
    response = invite_nurse(client, token, site, email="", sites=[other_site.pk])
    errors = response.context["errors"]
    assert "required" in errors["email"] and "not a site of this clinic" in errors["sites"]
    response = invite_nurse(client, token, site, username="bad name!")
    assert "letters, digits" in response.context["errors"]["username"]
    assert not User.objects.filter(username__in=["j.okafor", "bad name!"]).exists()
    assert mail.outbox == [] and not AccountLink.objects.exists()


def test_when_the_email_cannot_be_sent_nothing_is_created(
    admin: Any, site: Any, sign_in: Any, monkeypatch: Any
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr("django.core.mail.send_mail", refuse)
    client, token = csrf_client(admin, sign_in)
    response = invite_nurse(client, token, site)
    assert response.status_code == 422
    assert "could not be sent (SMTPServerDisconnected)" in response.context["errors"]["email"]
    assert not User.objects.filter(username="j.okafor").exists() and not AccountLink.objects.exists()
    assert not AuditEntry.objects.filter(category="account-privileges").exists()


def test_a_password_reset_keeps_the_authenticator_and_ends_every_session(
    admin: Any, nurse: Any, sign_in: Any
) -> None:
    from tests.accounts.test_staff_admin import _signed_in_with_password_and_code

    nurse.email = "nurse1@example.org"
    nurse.save()
    old_session = _signed_in_with_password_and_code(nurse)
    client, token = csrf_client(admin, sign_in)
    assert post(client, token, f"/accounts/users/{nurse.pk}/", action="link").status_code == 302
    message = mail.outbox[0]
    assert "reset your ketaclinic password" in message.subject and "authenticator app stays" in message.body
    assert AccountLink.objects.get(user=nurse).kind == "reset"
    assert nurse.__class__.objects.get(pk=nurse.pk).check_password(
        PASSWORD
    )  # unchanged until the link is used
    browser = Client(enforce_csrf_checks=True)
    done = choose_password(browser, link_path(message))
    assert done.status_code == 302 and done["Location"] == "/accounts/mfa/"  # the code, not a new enrolment
    assert TOTPDevice.objects.filter(user=nurse, confirmed=True).count() == 1
    assert old_session.get("/patients/").status_code == 302  # signed out everywhere
    nurse.refresh_from_db()
    assert nurse.check_password(NEW_PASSWORD) and not nurse.check_password(PASSWORD)
    page = browser.get("/accounts/mfa/")
    csrf = page.content.decode().split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    signed = browser.post(
        "/accounts/mfa/", {"csrfmiddlewaretoken": csrf, "token": totp_code(nurse, confirmed=True)}
    )
    assert signed["Location"] == "/" and browser.get("/patients/").status_code == 200
    entry = AuditEntry.objects.get(user=nurse, category="account-privileges", action="change")
    assert "password reset link" in entry.detail and "1 earlier session(s) ended" in entry.detail


def test_a_deactivated_account_gets_no_link(admin: Any, nurse: Any, sign_in: Any) -> None:
    nurse.email = "nurse1@example.org"
    nurse.save()
    client, token = csrf_client(admin, sign_in)
    post(client, token, f"/accounts/users/{nurse.pk}/", action="deactivate")
    response = post(client, token, f"/accounts/users/{nurse.pk}/", action="link")
    assert response.status_code == 422 and "deactivated" in response.context["errors"]["link"]
    assert mail.outbox == []


@pytest.mark.parametrize("path", ["/accounts/link/not-a-real-token/", "/accounts/link/"])
def test_unknown_links_are_refused_without_saying_why(path: str, db: Any) -> None:
    response = Client().get(path)
    assert response.status_code == 410
    assert b"expired or has already been used" in response.content
