"""The attacker's tools for the tamper tests: real DDL and SQL, as someone with database access would use."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from ketaclinic.audit import chain
from ketaclinic.core.append_only import trigger_sql

AUDIT_TRIGGERS = {
    "table": "audit_auditentry",
    "prefix": "audit_entry",
    "function": "ketaclinic_audit_append_only",
    "what": "the audit log",
}


def drop_triggers(names: dict[str, str]) -> None:
    vendor = "postgresql" if connection.vendor == "postgresql" else "sqlite"
    with connection.cursor() as cursor:
        for sql in trigger_sql(vendor, **names)[1]:
            cursor.execute(sql)


def rehash(
    table: str,
    rows: list[dict[str, Any]],
    hash_of: Callable[[str, dict[str, Any]], str],
    *,
    delete: set[int] = frozenset(),  # type: ignore[assignment]
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Delete the rows numbered ``delete``, renumber the rest without gaps and recompute every hash from the
    genesis, so the chain is self-consistent again. ``rows``: each row's ``id`` and hashed fields."""
    with connection.cursor() as cursor:
        for row in rows:
            if row["seq"] in delete:
                cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row["id"]])
        prev, seq = chain.GENESIS, 0
        for row in rows:
            if row["seq"] in delete:
                continue
            seq += 1
            fields = dict(row, seq=seq)
            if edit is not None:
                edit(fields)
            digest = hash_of(prev, fields)
            changed = [name for name in fields if name not in ("id", "seq") and fields[name] != row[name]]
            assignments = ", ".join(f"{name} = %s" for name in ["seq", "prev_hash", "entry_hash", *changed])
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE id = %s",
                [seq, prev, digest, *(fields[name] for name in changed), row["id"]],
            )
            prev = digest


def key_beside_the_database() -> bytes:
    """What a person reading the data directory can derive: the old default anchor key, from the secret key
    (``var/secret_key`` on a default install; the test settings give it by environment)."""
    return hashlib.sha256(f"ketaclinic-audit-anchor:{settings.SECRET_KEY}".encode()).digest()


def resign_anchor(chain_name: str, seq: int, head_hash: str, key: bytes) -> None:
    chain.write_anchor(
        Path(settings.KETACLINIC_AUDIT_ANCHOR_PATH), key, seq, head_hash, chain=chain_name, force=True
    )
