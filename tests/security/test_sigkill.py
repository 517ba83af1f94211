"""SIGKILL under write load, a few kills in CI (tests/security/crash_harness.py; `make soak` runs 200+).

The web server and the monitor listener are real processes on a file SQLite database in WAL mode (as in
production); writers keep the HL7 feed, reading batches and esketamine doses (each drawing a device from the
register) through the API and controlled-drug receipts through the form going while the processes are killed with SIGKILL and restarted. Every acknowledged write must be
there afterwards, whole (a dose with its stock draw, a draw with its dose), and the audit and register chains must verify.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.security.crash_harness import PrivatePostgres, crash_everything, postgres_bin, run

KILLS = 4


def _has_account(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_sigkill_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    result = run(tmp_path, kills=KILLS, seed=15)
    assert result.kills == KILLS
    assert len(result.acked.hl7) > 20 and result.acked.batches and result.acked.lots, "writes went through"
    assert result.acked.doses, "doses went through"
    assert result.missing == {"hl7": [], "batches": [], "lots": [], "doses": []}
    assert result.partial == {"hl7": [], "batches": [], "lots": [], "doses": []}
    assert result.audit_ok, result.details
    assert result.check_ok, result.details


def test_postgres_crash_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """The same on a private PostgreSQL cluster stopped with ``pg_ctl stop -m immediate`` at each kill."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_account("postgres")):
        pytest.skip("initdb refuses root, and there is no runuser or no postgres account to run it as")
    pg = PrivatePostgres(bindir)
    try:
        url = pg.init()
        result = run(tmp_path, kills=2, seed=5, database_url=url, killer=crash_everything(pg))
    finally:
        pg.destroy()
    assert result.kills == 2
    assert len(result.acked.hl7) > 20 and result.acked.batches and result.acked.lots, "writes went through"
    assert result.acked.doses, "doses went through"
    assert result.missing == {"hl7": [], "batches": [], "lots": [], "doses": []}
    assert result.partial == {"hl7": [], "batches": [], "lots": [], "doses": []}
    assert result.audit_ok, result.details
    assert result.check_ok, result.details
