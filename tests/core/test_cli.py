"""The `ketaclinic` command end to end, in subprocesses on a real database file (or PostgreSQL):
migrate, demo, audit verify, check, backup and restore."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    if check and result.returncode != 0:
        raise AssertionError(
            f"ketaclinic {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    var = tmp_path_factory.mktemp("var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KETACLINIC_", "DJANGO_"))}
    env["KETACLINIC_VAR_DIR"] = str(var)
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
    verify = json.loads(_run(cli_env, "audit", "verify", "--json").stdout)
    assert verify["ok"] and verify["entries"] == verify["anchor_seq"] > 40


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
