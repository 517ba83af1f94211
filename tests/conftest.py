"""Shared fixtures. Every suite gets an owner organization, a colleague in it and an outsider in another
organization (the healthchecks habit), so each test can check access as well as behaviour."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

DB_FIXTURES = {
    "db",
    "transactional_db",
    "live_server",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("django_db") or names & DB_FIXTURES:
            item.add_marker(pytest.mark.db)
        if names & {"browser_page", "_browser"}:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _isolated_anchor(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[None]:
    """Each test has its own anchor file and anchor key (the test database is emptied between tests)."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("db"):
        yield
        return
    from django.conf import settings

    old = settings.KETACLINIC_AUDIT_ANCHOR_PATH, settings.KETACLINIC_ANCHOR_KEY_FILE
    settings.KETACLINIC_AUDIT_ANCHOR_PATH = tmp_path / "data" / "audit-anchor.json"
    # The anchor key is kept apart from the data (issue 15 H3): a private file outside the data directories.
    key_dir = tmp_path / "secrets"
    key_dir.mkdir(mode=0o700)
    key_file = key_dir / "anchor.key"
    key_file.write_text(os.urandom(32).hex())
    key_file.chmod(0o600)
    settings.KETACLINIC_ANCHOR_KEY_FILE = str(key_file)
    yield
    settings.KETACLINIC_AUDIT_ANCHOR_PATH, settings.KETACLINIC_ANCHOR_KEY_FILE = old


@pytest.fixture(scope="session", autouse=True)
def _flush_may_empty_audit_log() -> Iterator[None]:
    """Django's test flush empties every table; the audit triggers allow it only through the maintenance
    switch, which the application never sets. Turn it on for the flush alone."""
    try:
        from django.core.management.commands import flush
    except ImportError:  # pure tests without Django
        yield
        return
    original = flush.Command.handle

    def handle(self: Any, **options: Any) -> Any:
        from django.db import connections

        conn = connections[options.get("database") or "default"]
        on, off = ("TRUE", "FALSE") if conn.vendor == "postgresql" else ("1", "0")
        with conn.cursor() as cursor:
            cursor.execute(f"UPDATE ketaclinic_audit_maintenance SET allow_purge = {on}")
        try:
            return original(self, **options)
        finally:
            with conn.cursor() as cursor:
                cursor.execute(f"UPDATE ketaclinic_audit_maintenance SET allow_purge = {off}")

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


# --- people and places ---------------------------------------------------------------------------------


@pytest.fixture
def org(db: Any) -> Any:
    from ketaclinic.accounts.models import Organization

    return Organization.objects.create(name="Owner Clinics", slug="owner")


@pytest.fixture
def other_org(db: Any) -> Any:
    from ketaclinic.accounts.models import Organization

    return Organization.objects.create(name="Elsewhere Clinics", slug="elsewhere")


@pytest.fixture
def site(org: Any) -> Any:
    from ketaclinic.accounts.models import Site

    return Site.objects.create(
        organization=org,
        code="main",
        name="Main Street",
        time_zone="America/New_York",
        opening_hours={"mon": [["08:00", "18:00"]]},
        crisis_resources="Call or text 988.",
    )


@pytest.fixture
def second_site(org: Any) -> Any:
    from ketaclinic.accounts.models import Site

    return Site.objects.create(organization=org, code="north", name="North Road", time_zone="America/Chicago")


@pytest.fixture
def other_site(other_org: Any) -> Any:
    from ketaclinic.accounts.models import Site

    return Site.objects.create(organization=other_org, code="main", name="Elsewhere Main", time_zone="UTC")


PASSWORD = "correct horse battery staple"


def _make_user(username: str, organization: Any, role: str, sites: list[Any], **extra: Any) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.accounts.models import User

    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        organization=organization,
        role=role,
        first_name=username.title(),
        **extra,
    )
    user.sites.set(sites)
    TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    return user


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    return _make_user


@pytest.fixture
def admin(org: Any) -> Any:
    return _make_user("admin1", org, "admin", [], all_sites=True)


@pytest.fixture
def prescriber(org: Any, site: Any) -> Any:
    return _make_user("prescriber1", org, "prescriber", [site])


@pytest.fixture
def nurse(org: Any, site: Any) -> Any:
    return _make_user("nurse1", org, "nurse", [site])


@pytest.fixture
def front_desk(org: Any, site: Any) -> Any:
    return _make_user("frontdesk1", org, "front_desk", [site])


@pytest.fixture
def no_role(org: Any, site: Any) -> Any:
    return _make_user("norole1", org, "", [site])


@pytest.fixture
def outsider(other_org: Any, other_site: Any) -> Any:
    return _make_user("outsider1", other_org, "nurse", [other_site])


@pytest.fixture
def sign_in() -> Callable[[Any, Any], Any]:
    """Sign ``user`` in on a test client with a verified second factor and a fresh session clock."""

    def do(client: Any, user: Any) -> Any:
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from ketaclinic.core.middleware import SESSION_LAST_SEEN, SESSION_STARTED

        client.force_login(user)
        session = client.session
        device = TOTPDevice.objects.filter(user=user).first()
        if device is not None:
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        from django.utils import timezone

        now = timezone.now().isoformat()
        session[SESSION_STARTED] = now
        session[SESSION_LAST_SEEN] = now
        session.save()
        return client

    return do


@pytest.fixture
def csrf_client() -> Any:
    """A test client that enforces CSRF like a browser-facing server does (Django's default test client
    skips the check, which hid a FHIR API refusing every write). Sign in with ``sign_in(csrf_client, user)``;
    take the token with ``csrf_token(csrf_client)``."""
    from django.test import Client

    return Client(enforce_csrf_checks=True)


def csrf_token(client: Any, page: str = "/accounts/login/") -> str:
    """The CSRF token a browser would send: GET ``page`` (it sets the cookie), read the cookie."""
    from django.conf import settings

    client.get(page)
    cookie = client.cookies.get(settings.CSRF_COOKIE_NAME)
    assert cookie is not None, f"{page} set no CSRF cookie"
    return str(cookie.value)


@pytest.fixture
def make_patient(db: Any) -> Callable[..., Any]:
    def create(user: Any, **overrides: Any) -> Any:
        from ketaclinic.patients import services

        data: dict[str, Any] = {
            "given_name": "Testa",
            "family_name": "Examplesson",
            "date_of_birth": date(1980, 5, 17),
            "sex": "female",
            "weight_kg": 70,
            "height_cm": 165,
        }
        data.update(overrides)
        return services.create_patient(user=user, data=data)

    return create


@pytest.fixture
def patient(nurse: Any, make_patient: Callable[..., Any]) -> Any:
    return make_patient(nurse)


@pytest.fixture
def outsider_patient(outsider: Any, make_patient: Callable[..., Any]) -> Any:
    return make_patient(outsider, given_name="Other", family_name="Orgpatient")


def postgres_url() -> str | None:
    return os.environ.get("KETACLINIC_TEST_POSTGRES_URL")


def sign(user: Any, *, password: str = PASSWORD) -> Any:
    """``user``'s co-signature now (accounts/cosign.py): their password and a current authenticator code.
    The device forgets earlier uses first, so a test may sign twice within one 30-second step."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.accounts.cosign import Signature

    device = TOTPDevice.objects.get(user=user)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    return Signature(user, password, f"{TOTP(device.bin_key).token():06d}")
