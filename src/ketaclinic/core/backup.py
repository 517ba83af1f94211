"""Consistent backups: SQLite's online backup API (never a copy of the open file) or pg_dump.

A backup is one file plus ``<file>.anchor.json``, the audit anchor at the time of the backup, so a restore can
prove the restored audit chain is the one that was backed up (security.md §5.4), plus ``<file>.documents/``,
the private document store (signed consent forms and signatures, ``consent.documents``). The documents are
copied after the database, so every document the backed-up rows point at is in the copy (documents are never
changed or deleted, only added). A restore copies them back without overwriting, and the restore command
checks every consent's document against its fingerprint.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.conf import settings
from django.db import connection


class BackupError(Exception):
    pass


def _pg_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return env


def _pg_args() -> list[str]:
    db = settings.DATABASES["default"]
    args = ["--dbname", str(db["NAME"])]
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    return args


def anchor_copy_path(path: Path) -> Path:
    return path.with_name(path.name + ".anchor.json")


def documents_copy_path(path: Path) -> Path:
    return path.with_name(path.name + ".documents")


def _documents_dir() -> Path:
    return Path(settings.VAR_DIR) / "consent-documents"


def _copy_private(source: Path, target: Path) -> int:
    """Copy every file of ``source`` into ``target`` (directories 0700, files 0600), never overwriting."""
    copied = 0
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        dest = target / path.relative_to(source)
        folder = dest.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:  # mkdir's mode is cut by the umask and ignored for folders that exist
            os.chmod(folder, 0o700)
            if folder == target:
                break
            folder = folder.parent
        if dest.exists():
            continue
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(path.read_bytes())
        os.chmod(dest, 0o600)
        copied += 1
    return copied


def backup(path: Path) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        source = connection.connection
        tmp = path.with_name(path.name + ".partial")
        dest = sqlite3.connect(tmp)
        try:
            source.backup(dest)
        finally:
            dest.close()
        os.replace(tmp, path)
    elif connection.vendor == "postgresql":
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is not installed on this machine.")
        result = subprocess.run(
            ["pg_dump", "--format=custom", "--file", str(path), *_pg_args()],
            env=_pg_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    else:
        raise BackupError(f"Backups of {connection.vendor} databases are not supported.")
    os.chmod(path, 0o600)
    anchor = settings.KETACLINIC_AUDIT_ANCHOR_PATH
    if anchor.exists():
        shutil.copyfile(anchor, anchor_copy_path(path))
    if _documents_dir().exists():
        _copy_private(_documents_dir(), documents_copy_path(path))


def restore(path: Path) -> None:
    path = path.resolve()
    if not path.exists():
        raise BackupError(f"{path} does not exist.")
    if connection.vendor == "sqlite":
        try:
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            ok = source.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not a SQLite database: {exc}") from None
        if ok != "ok":
            raise BackupError(f"{path} fails SQLite's integrity check: {ok}")
        connection.ensure_connection()
        try:
            source.backup(connection.connection)
        finally:
            source.close()
    elif connection.vendor == "postgresql":
        if shutil.which("pg_restore") is None:
            raise BackupError("pg_restore is not installed on this machine.")
        connection.close()
        result = subprocess.run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                *_pg_args(),
                str(path),
            ],
            env=_pg_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
    else:
        raise BackupError(f"Restoring {connection.vendor} databases is not supported.")
    if documents_copy_path(path).exists():
        _copy_private(documents_copy_path(path), _documents_dir())


def integrity_check() -> str:
    """'ok' or the database's complaint."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA integrity_check")
            return str(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM pg_catalog.pg_class")
        return "ok"
