"""The PHI database, its WAL/SHM files and the e-mail outbox are readable by the service account only
(issue 15 M6): the ``ketaclinic`` command (and the ASGI/WSGI entry points) set umask 077."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path


def _run(var: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETACLINIC_")}
    env |= {"KETACLINIC_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "ketaclinic.settings"}
    env.pop("KETACLINIC_DATABASE_URL", None)
    # A umask that would leave files readable by others, then the command as an operator runs it; the
    # second command (a test e-mail into the outbox) runs in the same process after the first.
    code = (
        "import os, sys; os.umask(0o022); from ketaclinic.cli import main; "
        "sys.exit(main(['migrate', '--no-input']) or main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_database_wal_and_outbox_are_created_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    sent = _run(var, "manage", "sendtestemail", "someone@example.invalid")
    assert sent.returncode == 0, sent.stderr[-2000:]
    created = [p for p in var.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".sqlite3") for p in created)
    assert any(p.parent.name == "outbox" for p in created)
    for path in [*created, *(p for p in var.rglob("*") if p.is_dir())]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.relative_to(var)} is mode {mode:o}"
