"""Sign-in with password then TOTP, session rotation and destruction, lockout, time-outs, Argon2id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.middleware import SESSION_LAST_SEEN, SESSION_STARTED

PASSWORD = "correct horse battery staple"  # the fixtures' password (tests/conftest.py)


def _code(user: Any) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _password_step(client: Client, user: Any, password: str = PASSWORD) -> Any:
    return client.post("/accounts/login/", {"username": user.username, "password": password})


def test_password_then_totp_reaches_home_and_rotates_the_session(nurse: Any) -> None:
    client = Client()
    client.get("/accounts/login/")
    anonymous_key = client.cookies.get("__Host-ketaclinic-session")
    response = _password_step(client, nurse)
    assert response.status_code == 302 and response["Location"] == "/accounts/mfa/"
    after_password = client.session.session_key
    # Password alone opens nothing with patient data.
    assert client.get("/patients/").status_code == 302
    response = client.post("/accounts/mfa/", {"token": _code(nurse)})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session.session_key != after_password
    assert anonymous_key is None or anonymous_key.value != client.session.session_key
    assert client.get("/patients/").status_code == 200
    steps = list(AuditEntry.objects.filter(user=nurse, action="login").values_list("detail", flat=True))
    assert steps == ["password", "second factor (test)"]


def test_wrong_totp_code_is_refused_and_audited(nurse: Any) -> None:
    client = Client()
    _password_step(client, nurse)
    good = _code(nurse)
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/mfa/", {"token": bad})
    assert response.status_code == 200
    assert b"That code is not valid" in response.content
    assert client.get("/patients/").status_code == 302
    assert AuditEntry.objects.filter(user=nurse, outcome="failure", detail="second factor").exists()


def test_a_totp_code_works_only_once(nurse: Any) -> None:
    code = _code(nurse)
    first = Client()
    _password_step(first, nurse)
    assert first.post("/accounts/mfa/", {"token": code})["Location"] == "/"
    second = Client()
    _password_step(second, nurse)
    assert second.post("/accounts/mfa/", {"token": code}).status_code == 200  # replay refused


def test_logout_destroys_the_server_side_session(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    key = client.session.session_key
    assert client.get("/patients/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies["__Host-ketaclinic-session"] = key
    assert replay.get("/patients/").status_code == 302


def test_five_wrong_passwords_lock_further_attempts(nurse: Any) -> None:
    client = Client()
    for _ in range(5):
        response = _password_step(client, nurse, password="not the password")
    response = _password_step(client, nurse)  # even the right password is refused now
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session
    failures = AuditEntry.objects.filter(user=nurse, action="login", outcome="failure").count()
    assert failures >= 5


def test_lockout_is_per_address_so_an_attacker_cannot_lock_out_the_clinic(nurse: Any) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(6):
        _password_step(attacker, nurse, password="guess")
    colleague = Client(REMOTE_ADDR="10.1.1.20")
    assert _password_step(colleague, nurse)["Location"] == "/accounts/mfa/"


def test_unknown_username_failure_is_audited_without_a_real_user(db: Any) -> None:
    client = Client()
    client.post("/accounts/login/", {"username": "nobody", "password": "whatever-password"})
    entry = AuditEntry.objects.get(action="login", outcome="failure")
    assert entry.username == "system:anonymous" and "unknown username" in entry.detail


def test_idle_session_ends_after_15_minutes(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    session = client.session
    session[SESSION_LAST_SEEN] = (timezone.now() - timedelta(minutes=16)).isoformat()
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?expired=1"
    assert client.get("/patients/").status_code == 302
    assert AuditEntry.objects.filter(user=nurse, action="logout", detail="timeout").exists()


def test_activity_within_15_minutes_keeps_the_session(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    session = client.session
    session[SESSION_LAST_SEEN] = (timezone.now() - timedelta(minutes=14)).isoformat()
    session.save()
    assert client.get("/patients/").status_code == 200


def test_absolute_limit_of_12_hours(nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    session = client.session
    session[SESSION_STARTED] = (timezone.now() - timedelta(hours=12, minutes=1)).isoformat()
    session.save()
    assert client.get("/patients/")["Location"] == "/accounts/login/?expired=1"


def test_passwords_are_argon2id_at_owasp_parameters(nurse: Any) -> None:
    algorithm, variant, _version, params, *_ = nurse.password.split("$")
    assert (algorithm, variant, params) == ("argon2", "argon2id", "m=19456,t=2,p=1")


def test_service_accounts_cannot_sign_in(org: Any) -> None:
    from ketaclinic.accounts.models import User

    User.objects.create_user(username="system:x", password=PASSWORD, organization=org, is_service=True)
    response = Client().post("/accounts/login/", {"username": "system:x", "password": PASSWORD})
    assert response.status_code == 200 and b"Wrong username or password" in response.content


def test_first_sign_in_enrols_totp_with_a_qr_code_and_recovery_codes(org: Any, site: Any) -> None:
    from django_otp.plugins.otp_static.models import StaticToken

    from ketaclinic.accounts.models import User

    user = User.objects.create_user(username="newnurse", password=PASSWORD, organization=org, role="nurse")
    client = Client()
    assert _password_step(client, user)["Location"] == "/accounts/mfa/setup/"
    page = client.get("/accounts/mfa/setup/")
    assert b"data:image/svg+xml;base64," in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = f"{TOTP(device.bin_key).token():06d}"
    page = client.post("/accounts/mfa/setup/", {"token": code})
    assert page.status_code == 200 and b"recovery codes" in page.content
    tokens = list(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(tokens) == 10
    assert tokens[0].encode() in page.content
    assert client.get("/patients/").status_code == 200
    # A recovery code signs in once.
    other = Client()
    _password_step(other, user)
    assert other.post("/accounts/mfa/", {"token": tokens[0]})["Location"] == "/"
    again = Client()
    _password_step(again, user)
    assert again.post("/accounts/mfa/", {"token": tokens[0]}).status_code == 200


def test_disabling_an_account_ends_its_sessions(admin: Any, nurse: Any, sign_in: Any, site: Any) -> None:
    nurse_client = sign_in(Client(), nurse)
    from ketaclinic.accounts.services import remember_session

    class _Req:
        session = nurse_client.session

    remember_session(_Req(), nurse)  # type: ignore[arg-type]
    admin_client = sign_in(Client(), admin)
    response = admin_client.post(f"/accounts/users/{nurse.pk}/", {"action": "deactivate"})
    assert response.status_code == 302
    assert nurse_client.get("/patients/").status_code == 302
    change = AuditEntry.objects.get(category="account-privileges", action="change")
    assert '"is_active":true' in change.before and '"is_active":false' in change.after


@pytest.mark.parametrize("path", ["/accounts/users/", "/audit/"])
def test_admin_pages_refuse_clinical_roles(
    nurse: Any, prescriber: Any, front_desk: Any, sign_in: Any, path: str
) -> None:
    for user in (nurse, prescriber, front_desk):
        assert sign_in(Client(), user).get(path).status_code == 403
