"""Hash chain and external anchor for the audit log (security.md §5.3).

``entry_hash = SHA-256(prev_hash ‖ canonical_json(entry))`` from a fixed genesis. The chain head is anchored
outside the database: an HMAC-SHA-256 over ``seq:hash`` written to a file (``KETACLINIC_AUDIT_ANCHOR_PATH``),
so a truncated tail or a rewritten chain is detected even by someone who can edit every row.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "organization_id",
    "user_id",
    "username",
    "patient_id",
    "action",
    "category",
    "object_type",
    "object_id",
    "before",
    "after",
    "source_ip",
    "client",
    "outcome",
    "detail",
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8, non-JSON values as strings: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_payload(fields: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = fields[name]
        if isinstance(value, datetime):
            value = _format_time(value)
        elif value is not None and name.endswith("_id"):
            value = str(value)
        payload[name] = value
    return payload


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(entry_payload(fields)).encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    mac: str
    written_at: str


def _mac(key: bytes, seq: int, head_hash: str) -> str:
    return hmac.new(key, f"ketaclinic-audit:{seq}:{head_hash}".encode(), hashlib.sha256).hexdigest()


def read_anchor(path: Path) -> Anchor | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AnchorError(f"The audit anchor {path} cannot be read: {exc}") from exc
    try:
        return Anchor(
            seq=int(data["seq"]), hash=str(data["hash"]), mac=str(data["mac"]), written_at=str(data["at"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorError(f"The audit anchor {path} is malformed: {exc}") from exc


def anchor_is_authentic(anchor: Anchor, key: bytes) -> bool:
    return hmac.compare_digest(anchor.mac, _mac(key, anchor.seq, anchor.hash))


def write_anchor(path: Path, key: bytes, seq: int, head_hash: str, *, force: bool = False) -> bool:
    """Advance the anchor to ``seq`` (never backwards unless ``force``). Returns True when written.

    A lock file serialises writers across processes; the new anchor replaces the old one atomically.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(path.suffix + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = read_anchor(path)
        except AnchorError:
            current = None
        if current is not None and current.seq >= seq and not force:
            return False
        data = {
            "seq": seq,
            "hash": head_hash,
            "mac": _mac(key, seq, head_hash),
            "at": datetime.now(UTC).isoformat(),
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data))
        os.replace(tmp, path)
        return True


class AnchorError(Exception):
    pass
