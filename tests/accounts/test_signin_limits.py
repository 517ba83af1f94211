"""Sign-in limits behind a TLS proxy and across addresses (issue 15 M3).

Behind a proxy, 5 wrong passwords from one client locked the real user out from another (the proxy's address
was used); 40 guesses spread over 10 addresses locked nothing. Now the client's address comes from the trusted
proxy's X-Forwarded-For (never from an untrusted sender's), and a per-account delay slows guesses spread over
many addresses, with a notice to the account holder and the administrators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from tests.csrf_pages import token_of

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.client_address import resolve
from ketaclinic.core.models import Notification

PASSWORD = "correct horse battery staple"  # the fixtures' password (tests/conftest.py)
PROXY = "10.0.0.1"

pytestmark = pytest.mark.django_db


def _sign_in(client: Client, username: str, password: str, forwarded_for: str | None = None) -> Any:
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    token = token_of(page.content.decode())
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": token},
        **extra,
    )


def _browser(remote: str) -> Client:
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=remote)


def test_behind_a_trusted_proxy_the_lockout_is_per_client_not_per_proxy(settings: Any, nurse: Any) -> None:
    settings.KETACLINIC_TRUSTED_PROXIES = (f"{PROXY}/32",)
    attacker = _browser(PROXY)
    codes = [_sign_in(attacker, nurse.username, "a guess", "203.0.113.5").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the fifth wrong password locks this client
    # The attacker's client is locked out, even with the right password…
    assert _sign_in(attacker, nurse.username, PASSWORD, "203.0.113.5").status_code == 429
    # …and so is the attacker writing other addresses to the left of what the proxy appended.
    assert _sign_in(attacker, nurse.username, PASSWORD, "192.0.2.77, 203.0.113.5").status_code == 429
    # The nurse at the clinic, through the same proxy, signs in.
    nurse_desk = _browser(PROXY)
    response = _sign_in(nurse_desk, nurse.username, PASSWORD, "198.51.100.20")
    assert response.status_code == 302 and response["Location"] == "/accounts/mfa/"
    # The audit log names the clients, not the proxy.
    sources = set(AuditEntry.objects.filter(action="login").values_list("source_ip", flat=True))
    assert sources == {"203.0.113.5", "198.51.100.20"}


def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(nurse: Any) -> None:
    attacker = _browser("203.0.113.5")
    for i in range(5):
        _sign_in(attacker, nurse.username, "a guess", f"198.51.100.{i}")
    assert _sign_in(attacker, nurse.username, PASSWORD, "198.51.100.99").status_code == 429
    sources = set(AuditEntry.objects.filter(action="login").values_list("source_ip", flat=True))
    assert sources == {"203.0.113.5"}


def test_forty_guesses_over_ten_addresses_are_slowed_and_the_holder_is_told(
    settings: Any, nurse: Any, admin: Any
) -> None:
    settings.KETACLINIC_TRUSTED_PROXIES = (f"{PROXY}/32",)
    nurse.email, admin.email = "nurse@clinic.test", "admin@clinic.test"
    nurse.save()
    admin.save()
    start = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        answers = []
        for guess in range(40):
            address = f"203.0.113.{guess % 10 + 1}"
            answers.append(_sign_in(_browser(PROXY), nurse.username, f"guess {guess}", address))
        checked = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code == 429]
        # 10 passwords checked, then every further guess waits: no address is locked, the account is slowed.
        assert len(checked) == 10 and len(refused) == 30
        assert b"Wait 2 seconds" in refused[0].content
        from axes.models import AccessAttempt, AccessFailureLog

        assert AccessFailureLog.objects.filter(username=nurse.username).count() == 10
        assert not AccessAttempt.objects.filter(failures_since_start__gte=5).exists()
        # The account holder and the administrator are told once, at home and by e-mail.
        assert Notification.objects.filter(recipient=nurse, kind="signin-delay").count() == 1
        assert Notification.objects.filter(recipient=admin, kind="signin-delay").count() == 1
        assert sorted(m.to[0] for m in mail.outbox) == ["admin@clinic.test", "nurse@clinic.test"]
        assert "10 wrong passwords" in mail.outbox[0].body and "10 address(es)" in mail.outbox[0].body

        # After the wait, the nurse at the clinic (another address) signs in with her password.
        clock.shift(3)
        response = _sign_in(_browser(PROXY), nurse.username, PASSWORD, "198.51.100.20")
        assert response.status_code == 302 and response["Location"] == "/accounts/mfa/"

        # The delay grows with each further wrong password: 4 s after the 11th.
        clock.shift(3)
        assert _sign_in(_browser(PROXY), nurse.username, "guess", "203.0.113.1").status_code == 200
        slowed = _sign_in(_browser(PROXY), nurse.username, PASSWORD, "198.51.100.20")
        assert slowed.status_code == 429 and b"Wait 4 seconds" in slowed.content
        clock.shift(4)
        assert _sign_in(_browser(PROXY), nurse.username, PASSWORD, "198.51.100.20").status_code == 302
        assert Notification.objects.filter(recipient=nurse, kind="signin-delay").count() == 1


def test_an_unknown_username_is_slowed_the_same_way(db: Any) -> None:
    with time_machine.travel(datetime(2026, 12, 7, 15, 0, tzinfo=UTC), tick=False):
        codes = [_sign_in(_browser(f"203.0.113.{i + 1}"), "nobody", "guess").status_code for i in range(12)]
    assert codes == [200] * 10 + [429, 429]


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "client"),
    [
        ("203.0.113.5", "", (), "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),  # nobody trusted: the header is ignored
        ("10.0.0.1", "198.51.100.1", (), "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1", ("10.0.0.1/32",), "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1", ("10.0.0.1/32",), "198.51.100.1"),  # forged left part
        ("10.0.0.2", "198.51.100.1, 10.0.0.1", ("10.0.0.0/24",), "198.51.100.1"),  # two proxies
        ("10.0.0.1", "", ("10.0.0.1/32",), "10.0.0.1"),
        ("10.0.0.1", "junk", ("10.0.0.1/32",), "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1:51234", ("10.0.0.1/32",), "198.51.100.1"),
        ("::1", "2001:db8::7", ("::1/128",), "2001:db8::7"),
        ("::ffff:10.0.0.1", "198.51.100.1", ("10.0.0.1/32",), "198.51.100.1"),
    ],
)
def test_client_address_resolution(
    remote: str, forwarded: str, trusted: tuple[str, ...], client: str
) -> None:
    assert resolve(remote, forwarded, trusted) == client


def test_a_bad_trusted_proxy_setting_stops_start_up(monkeypatch: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from ketaclinic import config

    monkeypatch.setenv("KETACLINIC_TRUSTED_PROXIES", "10.0.0.1,proxy.local")
    with pytest.raises(ImproperlyConfigured, match=r"proxy\.local"):
        config.env_networks("KETACLINIC_TRUSTED_PROXIES")
    monkeypatch.setenv("KETACLINIC_TRUSTED_PROXIES", "10.0.0.1, 10.1.0.0/16")
    assert config.env_networks("KETACLINIC_TRUSTED_PROXIES") == ("10.0.0.1/32", "10.1.0.0/16")


def test_check_warns_when_behind_a_proxy_with_no_trusted_proxy(settings: Any) -> None:
    import io
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    def report() -> dict[str, Any]:
        out = io.StringIO()
        try:
            call_command("clinic_check", "--json", stdout=out)
        except CommandError:
            pass  # other checks (an empty test database's anchor) do not matter here
        return dict(json.loads(out.getvalue()))

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.KETACLINIC_TRUSTED_PROXIES = ()
    assert report()["client_addresses"].startswith("WARNING: KETACLINIC_BEHIND_TLS_PROXY is set")
    settings.KETACLINIC_TRUSTED_PROXIES = ("10.0.0.1/32",)
    assert report()["client_addresses"] == "X-Forwarded-For from trusted proxies 10.0.0.1/32"


def test_the_holders_own_workstation_is_not_slowed_by_guesses_elsewhere(settings: Any, nurse: Any) -> None:
    """A browser where she completed a sign-in (password and authenticator) keeps working during the
    per-account delay that guesses from other addresses caused; any other browser waits."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.KETACLINIC_TRUSTED_PROXIES = (f"{PROXY}/32",)
    with time_machine.travel(datetime(2026, 12, 7, 15, 0, tzinfo=UTC), tick=False):
        workstation = _browser(PROXY)
        assert _sign_in(workstation, nurse.username, PASSWORD, "198.51.100.20").status_code == 302
        device = TOTPDevice.objects.get(user=nurse)
        mfa = workstation.get("/accounts/mfa/")
        done = workstation.post(
            "/accounts/mfa/",
            {
                "token": f"{TOTP(device.bin_key).token():06d}",
                "csrfmiddlewaretoken": token_of(mfa.content.decode()),
            },
            HTTP_X_FORWARDED_FOR="198.51.100.20",
        )
        assert done.status_code == 302 and done["Location"] == "/"
        home = workstation.get("/")
        out = workstation.post(
            "/accounts/logout/",
            {"csrfmiddlewaretoken": token_of(home.content.decode())},
            HTTP_X_FORWARDED_FOR="198.51.100.20",
        )
        assert out.status_code == 302
        for guess in range(12):
            _sign_in(_browser(PROXY), nurse.username, f"guess {guess}", f"203.0.113.{guess % 10 + 1}")
        stranger = _sign_in(_browser(PROXY), nurse.username, PASSWORD, "198.51.100.21")
        assert stranger.status_code == 429
        again = _sign_in(workstation, nurse.username, PASSWORD, "198.51.100.20")
        assert again.status_code == 302 and again["Location"] == "/accounts/mfa/"
        # The cookie names no account in clear and is not valid for another account.
        cookie = workstation.cookies["__Host-ketaclinic-device"]
        assert nurse.username not in cookie.value and cookie["httponly"] and cookie["secure"]


@pytest.mark.django_db(transaction=True)
def test_simultaneous_guesses_cannot_pass_the_account_limit_together(settings: Any, nurse: Any) -> None:
    """Twenty guesses sent at the same instant from twenty addresses: only the first ten passwords are
    checked; the others wait, as if they had come one after another."""
    import threading

    from axes.models import AccessFailureLog
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("on SQLite every request already takes the database's write lock at BEGIN IMMEDIATE")
    settings.KETACLINIC_TRUSTED_PROXIES = (f"{PROXY}/32",)
    start = threading.Barrier(20)
    codes: dict[int, int] = {}

    def guess(i: int) -> None:
        try:
            client = Client(REMOTE_ADDR=PROXY)
            start.wait(timeout=60)
            response = client.post(
                "/accounts/login/",
                {"username": nurse.username, "password": f"guess {i}"},
                HTTP_X_FORWARDED_FOR=f"203.0.113.{i + 1}",
            )
            codes[i] = response.status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(codes.values()) == [200] * 10 + [429] * 10
    assert AccessFailureLog.objects.filter(username=nurse.username).count() == 10
