"""The restore drill (issue 15, point 5; security.md §5.4 "untested backups don't count"), in CI.

A clinic with data is backed up with `ketaclinic backup`; the backup is restored with `ketaclinic restore`
into a fresh directory (and, on PostgreSQL, a fresh database) holding nothing but the clinic's secret key;
`audit verify` passes; then `ketaclinic serve` serves the restored database: a demo nurse signs in with her
password and authenticator code and reads the patient list. Real processes, real HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.servers import wait_until_healthy

pytestmark = pytest.mark.postgres  # also runs in the PostgreSQL pass, with pg_dump / pg_restore

# Kept with the backup but apart from it, never beside the database (docs/operations.md): the clinic's
# secret key, and the audit anchor key (an environment secret).
SECRET_KEY = "drill-secret-key-" + "k" * 40
ANCHOR_KEY = "drill-anchor-key-" + "a" * 40


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ketaclinic.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"ketaclinic {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin_connection(url: str) -> Any:
    """A connection for CREATE/DROP DATABASE: to the test URL's database, or (when only pytest-django's
    test_ copy of it exists) to the server's ``postgres`` database."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError:
        return psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)


@pytest.fixture
def installs(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Two installations: the clinic, and an empty machine to restore onto."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("KETACLINIC_", "DJANGO_"))}
    # The secret key and the audit anchor key travel with the backup, apart from it (docs/operations.md).
    base_env.update(
        KETACLINIC_SECRET_KEY=SECRET_KEY,
        KETACLINIC_AUDIT_ANCHOR_KEY=ANCHOR_KEY,
        KETACLINIC_SECURE_COOKIES="0",
    )
    clinic = {**base_env, "KETACLINIC_VAR_DIR": str(tmp_path / "clinic")}
    spare = {**base_env, "KETACLINIC_VAR_DIR": str(tmp_path / "spare")}
    created: list[str] = []
    pg = (
        os.environ.get("KETACLINIC_TEST_POSTGRES_URL")
        if os.environ.get("KETACLINIC_TEST_DB") == "postgres"
        else None
    )
    if pg:
        with _admin_connection(pg) as conn:
            for env in (clinic, spare):
                name = f"ketaclinic_drill_{uuid.uuid4().hex[:8]}"
                conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
                env["KETACLINIC_DATABASE_URL"] = pg.rsplit("/", 1)[0] + "/" + name
    try:
        yield clinic, spare
    finally:
        if pg and created:
            with _admin_connection(pg) as conn:
                for name in created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _code(secret: str) -> str:
    from django_otp.oath import TOTP

    return f"{TOTP(base64.b32decode(secret)).token():06d}"


def _token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "no form with a CSRF token"
    return found.group(1)


def test_backup_restore_into_a_fresh_directory_verify_and_serve(
    installs: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    clinic, spare = installs
    _run(clinic, "migrate", "--no-input")
    logins = json.loads(_run(clinic, "demo", "--json").stdout)["logins"]
    nurse = next(x for x in logins if x["username"] == "demo.nurse")
    backup = tmp_path / "offsite" / "clinic.backup"
    _run(clinic, "backup", str(backup))

    # The spare machine: an empty directory (and an empty database), nothing migrated.
    assert not Path(spare["KETACLINIC_VAR_DIR"]).exists()
    restored = json.loads(_run(spare, "restore", str(backup), "--yes", "--json").stdout)
    assert restored["integrity"] == "ok" and restored["audit"]["ok"], restored
    assert restored["consent_documents"].startswith("ok")
    verify = json.loads(_run(spare, "audit", "verify", "--json").stdout)
    assert verify["ok"] and verify["entries"] == restored["audit"]["entries"] > 40
    check = json.loads(_run(spare, "check", "--json").stdout)
    assert check["integrity"] == "ok" and check["audit"]["ok"]

    # The restored clinic serves: the demo nurse signs in (password, then authenticator) and reads patients.
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ketaclinic.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-sweeps",
        ],
        env=spare,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base, tmp_path / "serve.log")
        browser = requests.Session()
        page = browser.get(f"{base}/accounts/login/", timeout=30)
        signed: Any = browser.post(
            f"{base}/accounts/login/",
            data={
                "username": nurse["username"],
                "password": nurse["password"],
                "csrfmiddlewaretoken": _token(page.text),
            },
            allow_redirects=False,
            timeout=30,
        )
        assert signed.status_code == 302 and signed.headers["Location"] == "/accounts/mfa/"
        for after in (0, 30):  # a code already used in the backed-up data's last step: take the next one
            if after:
                time.sleep(30 - time.time() % 30 + 1)
            mfa = browser.get(f"{base}/accounts/mfa/", timeout=30)
            done = browser.post(
                f"{base}/accounts/mfa/",
                data={"token": _code(nurse["totp_secret"]), "csrfmiddlewaretoken": _token(mfa.text)},
                allow_redirects=False,
                timeout=30,
            )
            if done.status_code == 302:
                break
        assert done.status_code == 302 and done.headers["Location"] == "/"
        patients = browser.get(f"{base}/patients/", timeout=30)
        assert patients.status_code == 200
        from ketaclinic.core.demo import FAMILY

        assert any(name in patients.text for name in FAMILY), "no restored patient on the list"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
