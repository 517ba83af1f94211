"""The `ketaclinic` command end to end, in subprocesses on a real database file (or PostgreSQL):
migrate, demo, audit verify, check, backup and restore."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.audit.collector import Collector

pytestmark = pytest.mark.postgres  # also runs in the PostgreSQL pass


def _run(
    env: dict[str, str], *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ketaclinic.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        check=False,
    )
    _settle(env)
    if check and result.returncode != 0:
        raise AssertionError(
            f"ketaclinic {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def _settle(env: dict[str, str]) -> None:
    """Wait until the collector has written every anchor the command sent (its file stops growing)."""
    path = Path(env.get("KETACLINIC_ANCHOR_PUBLISHED_FILE", "/nonexistent"))
    last = -1
    for _ in range(40):
        size = path.stat().st_size if path.exists() else 0
        if size == last:
            return
        last = size
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    var = tmp_path_factory.mktemp("var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KETACLINIC_", "DJANGO_"))}
    env["KETACLINIC_VAR_DIR"] = str(var)
    # The anchor key lives apart from the data (0600, outside var/), and anchors go to a real syslog collector.
    key = tmp_path_factory.mktemp("secrets") / "anchor.key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    env["KETACLINIC_ANCHOR_KEY_FILE"] = str(key)
    collector = Collector(tmp_path_factory.mktemp("collector") / "anchors.log")
    env["KETACLINIC_ANCHOR_SYSLOG"] = collector.url
    env["KETACLINIC_ANCHOR_PUBLISHED_FILE"] = str(collector.path)
    created_db = None
    if os.environ.get("KETACLINIC_TEST_DB") == "postgres":
        import psycopg

        base = os.environ["KETACLINIC_TEST_POSTGRES_URL"]
        created_db = f"ketaclinic_cli_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{created_db}"')
        env["KETACLINIC_DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + created_db
    _run(env, "migrate", "--no-input")
    yield env
    collector.close()
    if created_db:
        import psycopg

        with psycopg.connect(os.environ["KETACLINIC_TEST_POSTGRES_URL"], autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)')


def test_help_lists_every_operator_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ketaclinic.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in (
        "serve",
        "migrate",
        "createuser",
        "demo",
        "worker",
        "audit",
        "backup",
        "restore",
        "check",
    ):
        assert f"  {command} " in out


def test_demo_prints_logins_and_is_idempotent(cli_env: dict[str, str]) -> None:
    first = _run(cli_env, "demo")
    assert "demo.nurse" in first.stdout and "TOTP secret" in first.stdout
    again = json.loads(_run(cli_env, "demo", "--json").stdout)
    assert again["changed"] is False and len(again["logins"]) == 5


def test_check_and_audit_verify_pass_on_a_fresh_install(cli_env: dict[str, str]) -> None:
    _run(cli_env, "demo")
    report = json.loads(_run(cli_env, "check", "--json").stdout)
    assert (
        report["integrity"] == "ok" and report["audit"]["ok"] and report["audit_maintenance_switch"] == "off"
    )
    assert report["controlled_substance_register"] == "ok"
    assert report["anchor_key"].startswith("ok (file ") and report["anchor_sink"].startswith(
        "publishing to tcp://"
    )
    verify = json.loads(_run(cli_env, "audit", "verify", "--json").stdout)
    assert verify["ok"] and verify["entries"] == verify["anchor_seq"] == verify["published_seq"] > 40
    assert verify["registers"] and all(r["ok"] and r["published_seq"] for r in verify["registers"])


def test_check_fails_when_the_anchor_key_sits_beside_the_database(cli_env: dict[str, str]) -> None:
    beside = Path(cli_env["KETACLINIC_VAR_DIR"]) / "anchor.key"
    beside.write_bytes(Path(cli_env["KETACLINIC_ANCHOR_KEY_FILE"]).read_bytes())
    beside.chmod(0o600)
    try:
        checked = _run(dict(cli_env, KETACLINIC_ANCHOR_KEY_FILE=str(beside)), "check", "--json", check=False)
        assert checked.returncode == 1
        assert "inside the data directory" in json.loads(checked.stdout)["anchor_key"]
    finally:
        beside.unlink()
    unset = {k: v for k, v in cli_env.items() if k != "KETACLINIC_ANCHOR_KEY_FILE"}
    checked = _run(unset, "check", check=False)
    assert checked.returncode == 1 and "derived from the data directory" in checked.stdout


def test_a_restore_without_the_anchor_key_is_not_reported_intact(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 15 (Low): restored on a machine without the key, the restore fails and `audit verify` says the
    log cannot be verified instead of intact."""
    _run(cli_env, "demo")
    backup = tmp_path / "keyless.backup"
    _run(cli_env, "backup", str(backup))
    keyless = dict(cli_env, KETACLINIC_ANCHOR_KEY_FILE=str(tmp_path / "not-copied.key"))
    restored = _run(keyless, "restore", str(backup), "--yes", "--json", check=False)
    assert restored.returncode == 1 and json.loads(restored.stdout)["audit"]["status"] == "unverifiable"
    verify = _run(keyless, "audit", "verify", check=False)
    assert verify.returncode == 1 and "CANNOT BE VERIFIED" in verify.stderr and "intact" not in verify.stdout
    # With the key back, the restore verifies and re-anchors, and the log verifies again.
    _run(cli_env, "restore", str(backup), "--yes")
    assert json.loads(_run(cli_env, "audit", "verify", "--json").stdout)["ok"]


def test_createuser_reads_the_password_and_enforces_length(cli_env: dict[str, str]) -> None:
    weak = _run(
        cli_env,
        "createuser",
        "shorty",
        "--role",
        "nurse",
        "--org",
        "demo",
        "--password-stdin",
        check=False,
        stdin="short\n",
    )
    assert weak.returncode != 0 and "too short" in weak.stderr
    ok = _run(
        cli_env,
        "createuser",
        "new.nurse",
        "--role",
        "nurse",
        "--org",
        "demo",
        "--site",
        "harbor",
        "--password-stdin",
        stdin="a long enough passphrase\n",
    )
    assert "Created new.nurse (Nurse)" in ok.stdout


def test_backup_then_restore_brings_back_the_backed_up_state(cli_env: dict[str, str], tmp_path: Path) -> None:
    _run(cli_env, "demo")
    backup = tmp_path / "clinic.backup"
    _run(cli_env, "backup", str(backup))
    assert backup.exists() and (tmp_path / "clinic.backup.anchor.json").exists()
    _run(
        cli_env,
        "createuser",
        "after.backup",
        "--role",
        "nurse",
        "--org",
        "demo",
        "--password-stdin",
        stdin="a long enough passphrase\n",
    )
    # The signed consent documents (the demo's three tablet signatures) are copied beside the backup, private.
    copies = [p for p in (tmp_path / "clinic.backup.documents").rglob("*") if p.is_file()]
    assert len(copies) == 3 and {stat.S_IMODE(p.stat().st_mode) for p in copies} == {0o600}
    store = Path(cli_env["KETACLINIC_VAR_DIR"]) / "consent-documents"
    lost = next(p for p in store.rglob("*") if p.is_file())
    lost.unlink()
    checked = _run(cli_env, "check", "--json", check=False)
    assert checked.returncode == 1
    assert json.loads(checked.stdout)["consent_documents"].startswith(
        "1 of 3 signed documents cannot be shown"
    )
    restored = json.loads(_run(cli_env, "restore", str(backup), "--yes", "--json").stdout)
    assert restored["integrity"] == "ok" and restored["audit"]["ok"]
    assert restored["consent_documents"] == "ok (3 documents)" and lost.exists()
    again = _run(
        cli_env,
        "createuser",
        "after.backup",
        "--role",
        "nurse",
        "--org",
        "demo",
        "--password-stdin",
        stdin="a long enough passphrase\n",
    )
    assert "Created after.backup" in again.stdout  # the account made after the backup is gone
    assert json.loads(_run(cli_env, "audit", "verify", "--json").stdout)["ok"]


def test_restore_of_a_corrupt_file_fails_and_says_why(cli_env: dict[str, str], tmp_path: Path) -> None:
    if cli_env.get("KETACLINIC_DATABASE_URL", "").startswith("postgres"):
        junk = tmp_path / "junk.backup"
        junk.write_bytes(b"not a dump")
        result = _run(cli_env, "restore", str(junk), "--yes", check=False)
        assert result.returncode != 0 and "pg_restore failed" in result.stderr
        return
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    result = _run(cli_env, "restore", str(junk), "--yes", check=False)
    assert result.returncode != 0 and "not a SQLite database" in result.stderr


def test_a_bad_setting_stops_start_up_with_a_clear_message(cli_env: dict[str, str]) -> None:
    env = dict(cli_env, KETACLINIC_IDLE_TIMEOUT_MIN="90")
    result = _run(env, "check", check=False)
    assert (
        result.returncode == 2 and "KETACLINIC_IDLE_TIMEOUT_MIN=90 is above the maximum 30" in result.stderr
    )


def test_score_is_wired_into_the_console_command() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ketaclinic.cli",
            "score",
            "phq9",
            "1",
            "1",
            "1",
            "1",
            "1",
            "1",
            "1",
            "1",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout)
    assert data["total"] == 10  # 8 × 1 + 2
    assert any("suicid" in json.dumps(flag).lower() for flag in data["flags"])


def test_migrations_match_the_models(db: object) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_pk_and_planning_calculators_are_wired_into_the_console_command(tmp_path: Path) -> None:
    plot = tmp_path / "out.svg"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ketaclinic.cli",
            "pk",
            "simulate",
            "--drug",
            "esketamine",
            "--route",
            "intranasal",
            "--dose",
            "84mg",
            "--population",
            "200",
            "--plot",
            str(plot),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(result.stdout)
    assert data["model"] == "perezruixo2021" and data["bands"]
    assert abs(data["cmax_ng_ml"] - 101.0) / 101.0 < 0.02  # pk.md row 11: 84 mg model Cmax 101.0 ng/mL
    assert plot.read_text().startswith("<svg") or "<svg" in plot.read_text()[:300]
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "ketaclinic.cli",
            "pk",
            "simulate",
            "--drug",
            "esketamine",
            "--route",
            "intranasal",
            "--dose",
            "50mg",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "28" in bad.stderr
    protocols = subprocess.run(
        [sys.executable, "-m", "ketaclinic.cli", "protocols", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "esk-trd-label" in protocols.stdout
