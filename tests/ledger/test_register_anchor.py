"""The controlled-substance register's chain is anchored, published and compared like the audit log (issue 15
H3): rewriting it with the triggers dropped, deleting its anchor or re-signing that anchor with the key beside
the database is named by `ketaclinic check` and `ketaclinic audit verify`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from tests.audit.collector import Collector
from tests.audit.tamper import drop_triggers, key_beside_the_database, rehash, resign_anchor

from ketaclinic.audit import anchoring
from ketaclinic.core.management.commands.clinic_check import _ledger_chains
from ketaclinic.ledger import services
from ketaclinic.ledger.models import LedgerEntry
from ketaclinic.ledger.services import HASHED, HASHED_WHEN_SET, RegisterChain

LEDGER_TRIGGERS = {
    "table": "ledger_ledgerentry",
    "prefix": "ledger_entry",
    "function": "ketaclinic_ledger_append_only",
    "what": "the controlled-substance register",
}


@pytest.fixture
def collector(settings: Any, tmp_path: Path) -> Iterator[Collector]:
    running = Collector(tmp_path / "anchors.log")
    settings.KETACLINIC_ANCHOR_SYSLOG = running.url
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = str(running.path)
    yield running
    running.close()


@pytest.fixture
def register(
    stocked: Any, nurse: Any, collector: Collector, django_capture_on_commit_callbacks: Any
) -> list[LedgerEntry]:
    """The receipt, anchored by the operator, then four losses, each committed (anchored and published)."""
    from ketaclinic.audit.services import AUDIT_CHAIN

    source = RegisterChain(nurse.organization_id)
    anchoring.reset(AUDIT_CHAIN)
    anchoring.reset(source)
    for i in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            services.report_loss(user=nurse, lot=stocked, quantity="1", reason=f"Vial {i} broke")
    entries = list(LedgerEntry.objects.filter(organization_id=nurse.organization_id).order_by("seq"))
    published = [r for r in collector_records(collector) if r.chain == source.name]
    assert published and published[-1].seq == entries[-1].seq
    return entries


def collector_records(collector: Collector) -> list[Any]:
    from ketaclinic.audit import publish

    for _ in range(50):
        records = publish.read_published(collector.path) if collector.path.exists() else []
        if records:
            last_register = [r for r in records if r.chain.startswith("register:")]
            if last_register and last_register[-1].seq >= 5:
                return records
        import time

        time.sleep(0.05)
    return publish.read_published(collector.path)


def _rows(org_id: int) -> list[dict[str, Any]]:
    return [
        {"id": row["id"], **{name: row.get(name) for name in (*HASHED, *HASHED_WHEN_SET)}}
        for row in LedgerEntry.objects.filter(organization_id=org_id).order_by("seq").values()
    ]


def test_a_clean_register_verifies_against_its_anchor_and_the_collector(
    register: list[LedgerEntry], nurse: Any
) -> None:
    result = services.check_register(nurse.organization_id)
    assert result.ok and result.chain == f"register:{nurse.organization_id}", result.problem
    assert result.anchor_seq == result.published_seq == register[-1].seq
    assert _ledger_chains() == "ok"


def test_a_rehashed_register_with_new_entries_is_detected(
    register: list[LedgerEntry], nurse: Any, stocked: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Drop the triggers, delete a loss, re-hash the register, then book two more: still found."""
    gone = register[2].seq
    drop_triggers(LEDGER_TRIGGERS)
    rehash("ledger_ledgerentry", _rows(nurse.organization_id), services.entry_hash, delete={gone})
    assert services.verify_chain(nurse.organization_id) is None  # the rows alone agree again
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.report_loss(user=nurse, lot=stocked, quantity="1", reason="Another")
    result = services.check_register(nurse.organization_id)
    assert not result.ok and result.first_bad_seq == gone and "rewritten" in result.problem
    assert _ledger_chains().startswith(f"{nurse.organization.slug}: entry {gone} does not check out")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit", "verify", "--json", stdout=out)
    registers = json.loads(out.getvalue())["registers"]
    assert [r["first_bad_seq"] for r in registers if not r["ok"]] == [gone]


def test_a_register_anchor_re_signed_with_the_key_beside_the_database_is_detected(
    register: list[LedgerEntry], nurse: Any, settings: Any
) -> None:
    target = register[1].seq

    def edit(fields: dict[str, Any]) -> None:
        if fields["seq"] == target:
            fields["reason"] = "Counted twice"

    drop_triggers(LEDGER_TRIGGERS)
    rehash("ledger_ledgerentry", _rows(nurse.organization_id), services.entry_hash, edit=edit)
    last = LedgerEntry.objects.filter(organization_id=nurse.organization_id).order_by("-seq").first()
    assert last is not None
    resign_anchor(f"register:{nurse.organization_id}", last.seq, last.entry_hash, key_beside_the_database())
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""
    result = services.check_register(nurse.organization_id)
    assert not result.ok and "signature is invalid" in result.problem


def test_a_deleted_register_anchor_is_reported_not_intact(
    register: list[LedgerEntry], nurse: Any, settings: Any
) -> None:
    data = json.loads(anchoring.anchor_path().read_text())
    del data["chains"][f"register:{nurse.organization_id}"]  # the register's anchor is cut out of the file
    anchoring.anchor_path().write_text(json.dumps(data))
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""
    result = services.check_register(nurse.organization_id)
    assert not result.ok and result.status == "unverifiable" and "anchor is missing" in result.problem
    assert _ledger_chains().startswith(f"{nurse.organization.slug}: cannot be verified")
