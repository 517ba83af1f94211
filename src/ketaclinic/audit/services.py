"""Writing and verifying the audit log.

``record()`` is called by every use case that reads or writes PHI, inside the use case's transaction, so the
change and its audit row commit or roll back together (security.md §0). Appends are serialised: on PostgreSQL
by a transaction-scoped advisory lock, on SQLite by the write lock that ``BEGIN IMMEDIATE`` takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.audit import anchoring, chain
from ketaclinic.audit.models import Action, AuditEntry, Outcome

ADVISORY_LOCK_ID = 727_001  # arbitrary, fixed: "audit append" on PostgreSQL


class AuditChain:
    """The audit log as a ``ChainSource`` for ``anchoring``."""

    name = "audit"

    def head(self) -> tuple[int, str] | None:
        return AuditEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()

    def rows(self, from_seq: int = 1) -> Iterator[chain.Row]:
        for row in AuditEntry.objects.filter(seq__gte=from_seq).order_by("seq").iterator(chunk_size=2000):
            fields = {name: getattr(row, name) for name in chain.HASHED_FIELDS}
            yield chain.Row(row.seq, row.prev_hash, row.entry_hash, chain.entry_hash(row.prev_hash, fields))


AUDIT_CHAIN = AuditChain()


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
        transaction.on_commit(partial(anchoring.advance, AUDIT_CHAIN, began_here=seq == 1))
        return entry


def anchor_head() -> None:
    """Move the external anchor to the committed chain head (only over a chain that extends it)."""
    anchoring.advance(AUDIT_CHAIN)


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


VerifyResult = chain.ChainCheck


def verify(
    *,
    use_anchor: bool = True,
    anchor: chain.Anchor | None = None,
    published: Path | None = None,
    published_limit: int | None = None,
) -> VerifyResult:
    """Walk the chain from the genesis; compare it with the signed anchor and with every checkpoint the
    collector received (``published`` or ``KETACLINIC_ANCHOR_PUBLISHED_FILE``); name the first bad entry.

    Detects an edited row (hash mismatch), a deleted middle row (gap), reordered rows (link), a truncated
    tail and a replaced chain (the anchor and the published checkpoints), a forged anchor (signature), and
    reports a chain nothing outside the database vouches for as ``unverifiable`` rather than intact.
    """
    return anchoring.check(
        AUDIT_CHAIN,
        anchors={"audit": anchor} if anchor is not None else None,
        use_anchor=use_anchor,
        published=anchoring.load_published(published),
        published_limit=published_limit,
    )
