"""Writing and verifying the audit log.

``record()`` is called by every use case that reads or writes PHI, inside the use case's transaction, so the
change and its audit row commit or roll back together (security.md §0). Appends are serialised: on PostgreSQL
by a transaction-scoped advisory lock, on SQLite by the write lock that ``BEGIN IMMEDIATE`` takes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.audit import chain
from ketaclinic.audit.models import Action, AuditEntry, Outcome

ADVISORY_LOCK_ID = 727_001  # arbitrary, fixed: "audit append" on PostgreSQL


def anchor_key() -> bytes:
    configured = settings.KETACLINIC_AUDIT_ANCHOR_KEY
    if configured:
        return configured.encode()
    # Derived from the secret key when no separate key is configured; docs/operations.md recommends a
    # separate key kept off the database host.
    return hashlib.sha256(f"ketaclinic-audit-anchor:{settings.SECRET_KEY}".encode()).digest()


def client_ip(request: HttpRequest | None) -> str:
    """The client's address, behind trusted proxies too (``core.client_address``)."""
    if request is None:
        return ""
    from ketaclinic.core.client_address import client_address

    return (client_address(request) or "")[:45]


def record(
    *,
    user: Any,
    action: str,
    category: str,
    organization: Any = None,
    patient: Any = None,
    object_type: str = "",
    object_id: Any = "",
    before: Any = None,
    after: Any = None,
    request: HttpRequest | None = None,
    client: str = "",
    outcome: str = Outcome.SUCCESS,
    detail: str = "",
) -> AuditEntry:
    """Append one entry. Must run inside the use case's transaction (it opens one if there is none)."""
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    if user is None:
        raise ValueError("every audit entry names a user (164.312(a)(2)(i)); use a service account")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_ID])
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, chain.GENESIS)
        if organization is None and patient is not None:
            organization = patient.organization
        if organization is None:
            organization = getattr(user, "organization", None)
        fields: dict[str, Any] = {
            "seq": seq,
            "occurred_at": timezone.now(),
            "organization_id": organization.pk if organization is not None else None,
            "user_id": user.pk,
            "username": user.get_username(),
            "patient_id": patient.pk if patient is not None else None,
            "action": action,
            "category": category,
            "object_type": object_type,
            "object_id": str(object_id or ""),
            "before": chain.canonical_json(before) if before is not None else "",
            "after": chain.canonical_json(after) if after is not None else "",
            "source_ip": client_ip(request),
            "client": client or ("web" if request is not None else "system"),
            "outcome": outcome,
            "detail": detail[:400],
        }
        digest = chain.entry_hash(prev_hash, fields)
        entry = AuditEntry.objects.create(prev_hash=prev_hash, entry_hash=digest, **fields)
        transaction.on_commit(anchor_head)
        return entry


def anchor_head() -> None:
    """Move the external anchor to the committed chain head."""
    head = AuditEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()
    if head is not None:
        chain.write_anchor(settings.KETACLINIC_AUDIT_ANCHOR_PATH, anchor_key(), head[0], head[1])


def record_denied(request: HttpRequest, *, what: str, patient: Any = None) -> None:
    """Access-control failures are logged (ASVS 7.1.3)."""
    user = request.user
    if not user.is_authenticated:
        return
    record(
        user=user,
        action=Action.DENIED,
        category="access",
        patient=patient,
        request=request,
        outcome=Outcome.DENIED,
        detail=what[:400],
    )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_seq: int
    first_bad_seq: int | None
    problem: str
    anchor_seq: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "anchor_seq": self.anchor_seq,
        }


def _rows() -> Iterator[AuditEntry]:
    return AuditEntry.objects.order_by("seq").iterator(chunk_size=2000)


def verify(*, use_anchor: bool = True, anchor: chain.Anchor | None = None) -> VerifyResult:
    """Walk the chain from the genesis; report the first bad sequence number.

    Detects an edited row (hash mismatch), a deleted middle row (gap), reordered rows (hash mismatch at the
    first moved row), a truncated tail and a replaced chain (both against the signed external anchor).
    """
    prev = chain.GENESIS
    expected = 1
    count = 0
    hash_at: dict[int, str] = {}
    if use_anchor and anchor is None:
        try:
            anchor = chain.read_anchor(settings.KETACLINIC_AUDIT_ANCHOR_PATH)
        except chain.AnchorError as exc:
            return VerifyResult(False, 0, 0, None, str(exc), None)
    anchor_seq = anchor.seq if anchor else None
    for row in _rows():
        count += 1
        if row.seq != expected:
            problem = f"sequence gap: expected #{expected}, found #{row.seq} (rows deleted or renumbered)"
            return VerifyResult(False, count, row.seq, expected, problem, anchor_seq)
        fields = {name: getattr(row, name) for name in chain.HASHED_FIELDS}
        if row.prev_hash != prev:
            return VerifyResult(
                False, count, row.seq, row.seq, f"#{row.seq} does not link to #{row.seq - 1}", anchor_seq
            )
        digest = chain.entry_hash(prev, fields)
        if digest != row.entry_hash:
            return VerifyResult(
                False, count, row.seq, row.seq, f"#{row.seq} was altered (hash mismatch)", anchor_seq
            )
        if anchor is not None and row.seq == anchor.seq:
            hash_at[row.seq] = digest
        prev = digest
        expected += 1
    head = expected - 1
    if anchor is not None:
        if not chain.anchor_is_authentic(anchor, anchor_key()):
            return VerifyResult(
                False, count, head, anchor.seq, "the external anchor's signature is invalid", anchor_seq
            )
        if head < anchor.seq:
            problem = f"entries #{head + 1}–#{anchor.seq} are missing (the log was truncated)"
            return VerifyResult(False, count, head, head + 1, problem, anchor_seq)
        if hash_at.get(anchor.seq) != anchor.hash:
            problem = f"#{anchor.seq} differs from the anchored head (the chain was rewritten)"
            return VerifyResult(False, count, head, anchor.seq, problem, anchor_seq)
    return VerifyResult(True, count, head, None, "", anchor_seq)
