"""Hash chains and their anchors (security.md §5.3, issue 15 H3).

``entry_hash = SHA-256(prev_hash ‖ canonical_json(entry))`` from a fixed genesis. Each chain (``audit``, and
``register:<organization id>`` for each controlled-substance register) has its head anchored outside the
database: a MAC over ``chain:seq:hash`` by a key kept apart from the data (``anchor_keys``), written to the
anchor file (``KETACLINIC_AUDIT_ANCHOR_PATH``) and published to an append-only collector (``publish``).

An anchor only ever moves forward over a chain that extends it: a rewritten chain is never re-anchored by the
application, and a missing anchor is never silently re-created (only at a chain's first entry, or by an
operator's ``ketaclinic audit anchor --reset``). ``check_chain`` compares a chain with its anchor and with
every published checkpoint and names the first mismatch.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ketaclinic.audit.anchor_keys import AnchorKeyError, AnchorKeyProvider
from ketaclinic.audit.publish import Published

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


class AnchorError(Exception):
    pass


class AnchorRefused(AnchorError):
    """The anchor was not moved: the chain does not extend it, or it is missing."""


Signer = AnchorKeyProvider | bytes


def anchor_message(chain: str, seq: int, head_hash: str, *, reset: bool = False) -> bytes:
    return f"ketaclinic-{chain}:{seq}:{head_hash}{':reset' if reset else ''}".encode()


def sign(signer: Signer, message: bytes) -> str:
    if isinstance(signer, bytes):  # a raw key (kept for tests that play an attacker holding some key)
        return hmac.new(signer, message, hashlib.sha256).hexdigest()
    return signer.sign(message)


def authentic(signer: Signer, message: bytes, mac: str) -> bool:
    if isinstance(signer, bytes):
        return hmac.compare_digest(mac, sign(signer, message))
    return signer.verify(message, mac)


def anchor_is_authentic(anchor: Anchor, signer: Signer, chain: str = "audit") -> bool:
    return authentic(signer, anchor_message(chain, anchor.seq, anchor.hash), anchor.mac)


def _parse_anchor(path: Path, data: Any) -> Anchor:
    try:
        return Anchor(
            seq=int(data["seq"]), hash=str(data["hash"]), mac=str(data["mac"]), written_at=str(data["at"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorError(f"The anchor file {path} is malformed: {exc}") from exc


def read_anchors(path: Path) -> dict[str, Anchor] | None:
    """Every chain's anchor; None when the file does not exist. (A file of the first format, one audit anchor
    at the top level, reads as the ``audit`` chain's.)"""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AnchorError(f"The anchor file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise AnchorError(f"The anchor file {path} is malformed")
    if "chains" not in data:
        return {"audit": _parse_anchor(path, data)}
    chains = data["chains"]
    if not isinstance(chains, dict):
        raise AnchorError(f"The anchor file {path} is malformed")
    return {str(name): _parse_anchor(path, value) for name, value in chains.items()}


def read_anchor(path: Path, chain: str = "audit") -> Anchor | None:
    anchors = read_anchors(path)
    return None if anchors is None else anchors.get(chain)


def write_anchor(
    path: Path,
    signer: Signer,
    seq: int,
    head_hash: str,
    *,
    chain: str = "audit",
    force: bool = False,
    may_create: bool = False,
    extends: Callable[[Anchor], bool] | None = None,
) -> Anchor | None:
    """Advance ``chain``'s anchor to ``seq``; returns the new anchor, or None when it already stood there or
    beyond. Without ``force`` the current anchor must be authentic and ``extends(current)`` true, and a
    missing anchor is created only when ``may_create`` (the chain began in the committing transaction);
    otherwise ``AnchorRefused``. A lock file serialises writers across processes; the file is replaced
    atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(path.suffix + ".lock")
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            anchors = read_anchors(path) or {}
        except AnchorError:
            if not force:
                raise
            anchors = {}
        current = anchors.get(chain)
        if not force:
            if current is None:
                if not may_create:
                    raise AnchorRefused(
                        f"the {chain} anchor is missing; not re-creating it over an unverified chain "
                        "(run `ketaclinic audit verify`, then `ketaclinic audit anchor --reset`)"
                    )
            elif current.seq >= seq:
                return None
            elif not anchor_is_authentic(current, signer, chain):
                raise AnchorRefused(f"the {chain} anchor at #{current.seq} is not signed with the anchor key")
            elif extends is not None and not extends(current):
                raise AnchorRefused(
                    f"the {chain} chain no longer extends its anchor at #{current.seq}: not moving the anchor"
                )
        new = Anchor(
            seq=seq,
            hash=head_hash,
            mac=sign(signer, anchor_message(chain, seq, head_hash)),
            written_at=datetime.now(UTC).isoformat(),
        )
        anchors[chain] = new
        data = {
            "version": 2,
            "chains": {
                name: {"seq": a.seq, "hash": a.hash, "mac": a.mac, "at": a.written_at}
                for name, a in sorted(anchors.items())
            },
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return new


# --- comparing a chain with its anchor and its published checkpoints -----------------------------------


@dataclass(frozen=True)
class Row:
    """One stored entry: its number, the stored link and hash, and the hash recomputed from its fields
    (over the stored ``prev_hash``)."""

    seq: int
    prev_hash: str
    entry_hash: str
    computed: str


INTACT, ALTERED, UNVERIFIABLE = "intact", "altered", "unverifiable"


@dataclass(frozen=True)
class ChainCheck:
    chain: str
    ok: bool
    status: str
    entries: int
    head_seq: int
    first_bad_seq: int | None
    problem: str
    anchor_seq: int | None
    published_seq: int | None = None
    published_resets: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "status": self.status,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "anchor_seq": self.anchor_seq,
            "published_seq": self.published_seq,
            "published_resets": self.published_resets,
        }


def check_chain(
    chain: str,
    rows: Iterable[Row],
    *,
    signer: Signer | None,
    anchor: Anchor | None,
    use_anchor: bool = True,
    anchor_problem: str = "",
    published: list[Published] | None = None,
    published_problem: str = "",
    published_limit: int | None = None,
) -> ChainCheck:
    """Walk ``rows`` from the genesis and compare them with the anchor and every published checkpoint.

    ``altered`` names the first bad sequence number: an edited row (hash), a deleted or renumbered row (gap),
    a reordered row (link), a truncated tail or a rewritten chain (anchor or published checkpoint), a forged
    anchor or published record (signature). ``unverifiable``: nothing outside the database vouches for the
    entries (anchor missing, key unavailable, published records unreadable or empty). ``published_limit``:
    ignore published checkpoints beyond it (a restore compares only up to the backup's own anchor).
    """
    wanted: set[int] = set()
    if use_anchor and anchor is not None:
        wanted.add(anchor.seq)
    authentic_records: dict[int, Published] = {}
    problems: list[tuple[int, str, str]] = []  # (seq, status, text); the lowest seq is reported
    unverifiable: list[str] = []
    resets = 0
    if published is not None:
        for record in published:
            if record.chain != chain:
                continue
            if signer is None:
                break
            message = anchor_message(chain, record.seq, record.hash, reset=record.reset)
            try:
                genuine = authentic(signer, message, record.mac)
            except AnchorKeyError:
                break
            if not genuine:
                problems.append(
                    (
                        record.seq,
                        ALTERED,
                        f"the published checkpoint #{record.seq} (collector line {record.line}) is not signed "
                        "with the anchor key: someone else sent it",
                    )
                )
                continue
            if record.reset:
                resets += 1
                authentic_records = {s: r for s, r in authentic_records.items() if s <= record.seq}
            if published_limit is not None and record.seq > published_limit:
                continue
            earlier = authentic_records.get(record.seq)
            if earlier is not None and earlier.hash != record.hash and not record.reset:
                problems.append(
                    (
                        record.seq,
                        ALTERED,
                        f"two published checkpoints for #{record.seq} disagree (collector lines {earlier.line} "
                        f"and {record.line}) without a reset: the chain was rewritten and re-anchored",
                    )
                )
            authentic_records[record.seq] = record
        wanted |= set(authentic_records)
    prev, expected, count = GENESIS, 1, 0
    hash_at: dict[int, str] = {}
    walk_stopped_at: int | None = None
    for row in rows:
        count += 1
        if row.seq != expected:
            problems.append(
                (
                    expected,
                    ALTERED,
                    f"sequence gap: expected #{expected}, found #{row.seq} (rows deleted or renumbered)",
                )
            )
            walk_stopped_at = expected
            break
        if row.prev_hash != prev:
            problems.append((row.seq, ALTERED, f"#{row.seq} does not link to #{row.seq - 1}"))
            walk_stopped_at = row.seq
            break
        if row.computed != row.entry_hash:
            problems.append((row.seq, ALTERED, f"#{row.seq} was altered (hash mismatch)"))
            walk_stopped_at = row.seq
            break
        if row.seq in wanted:
            hash_at[row.seq] = row.entry_hash
        prev = row.entry_hash
        expected += 1
    head = expected - 1 if walk_stopped_at is None else walk_stopped_at
    anchor_seq = anchor.seq if anchor is not None else None

    def compare(seq: int, expected_hash: str, what: str, matched_below: int) -> None:
        if walk_stopped_at is not None and seq >= walk_stopped_at:
            return
        if seq > head:
            top = max([seq, *authentic_records, *([anchor.seq] if use_anchor and anchor is not None else [])])
            problems.append(
                (
                    head + 1,
                    ALTERED,
                    f"entries #{head + 1}–#{top} are missing ({what} names #{seq}): the log was truncated",
                )
            )
        elif hash_at.get(seq) != expected_hash:
            first = matched_below + 1
            span = f"#{first}" if first == seq else f"#{first}–#{seq}"
            problems.append((first, ALTERED, f"{span} differ from {what} at #{seq}: the chain was rewritten"))

    published_seq: int | None = None
    confirmed: list[int] = []  # published checkpoints the chain matches
    if published_problem:
        unverifiable.append(published_problem)
    elif published is not None:
        if authentic_records:
            published_seq = max(authentic_records)
            matched = 0
            for seq in sorted(authentic_records):
                record = authentic_records[seq]
                before = len(problems)
                compare(
                    seq, record.hash, f"the checkpoint published on collector line {record.line}", matched
                )
                if len(problems) > before:
                    break
                matched = seq
                confirmed.append(seq)
        elif count and signer is not None:
            unverifiable.append(
                f"no checkpoint of the {chain} chain was published, so its {count} entries cannot be "
                "compared with the collector's record"
            )
    if use_anchor:
        if anchor_problem:
            unverifiable.append(anchor_problem)
        elif anchor is None:
            if count:
                unverifiable.append(
                    f"the {chain} anchor is missing, so {count} entries cannot be verified (the anchor file was "
                    "deleted, or the database was restored without it)"
                )
        elif signer is None:
            unverifiable.append(f"the anchor key is unavailable, so the {chain} anchor cannot be checked")
        else:
            try:
                genuine_anchor = anchor_is_authentic(anchor, signer, chain)
            except AnchorKeyError as exc:
                unverifiable.append(f"{exc}, so the {chain} anchor cannot be checked")
            else:
                if not genuine_anchor:
                    problems.append(
                        (
                            anchor.seq,
                            ALTERED,
                            f"the {chain} anchor's signature is invalid (re-signed with another key)",
                        )
                    )
                else:
                    below = max((s for s in confirmed if s < anchor.seq), default=0)
                    compare(anchor.seq, anchor.hash, "the signed anchor", below)
    if problems:
        seq, status, text = min(problems, key=lambda p: p[0])
        return ChainCheck(chain, False, status, count, head, seq, text, anchor_seq, published_seq, resets)
    if unverifiable:
        return ChainCheck(
            chain,
            False,
            UNVERIFIABLE,
            count,
            head,
            None,
            "; ".join(unverifiable),
            anchor_seq,
            published_seq,
            resets,
        )
    return ChainCheck(chain, True, INTACT, count, head, None, "", anchor_seq, published_seq, resets)
