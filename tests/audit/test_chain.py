"""The audit log is append-only, hash-chained and anchored; verification names the first bad entry."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from ketaclinic.audit import chain, services
from ketaclinic.audit.models import AuditEntry


@pytest.fixture
def entries(nurse: Any, patient: Any) -> list[AuditEntry]:
    for i in range(6):
        services.record(
            user=nurse, action="query", category="demographics", patient=patient, detail=f"read {i}"
        )
    services.anchor_head()
    return list(AuditEntry.objects.order_by("seq"))


class _Maintenance:
    """Lets a test play the attacker: edit rows as a database superuser would (triggers switched off)."""

    def __enter__(self) -> Any:
        on = "TRUE" if connection.vendor == "postgresql" else "1"
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE ketaclinic_audit_maintenance SET allow_purge = {on}")
        return connection.cursor()

    def __exit__(self, *exc: object) -> None:
        off = "FALSE" if connection.vendor == "postgresql" else "0"
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE ketaclinic_audit_maintenance SET allow_purge = {off}")


def test_a_clean_chain_verifies(entries: list[AuditEntry]) -> None:
    result = services.verify()
    assert result.ok, result.problem
    assert result.entries == len(entries) and result.head_seq == entries[-1].seq == result.anchor_seq


def test_sequence_is_gapless_and_each_entry_links_to_the_previous(entries: list[AuditEntry]) -> None:
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == chain.GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash


def test_update_is_refused_by_the_database(entries: list[AuditEntry]) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=2).update(detail="edited")
    assert (
        AuditEntry.objects.get(seq=2).detail == "read 0" or AuditEntry.objects.get(seq=2).detail != "edited"
    )


def test_delete_is_refused_by_the_database(entries: list[AuditEntry]) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=3).delete()
    assert AuditEntry.objects.filter(seq=3).exists()


def test_truncate_is_refused_on_postgresql(transactional_db: Any, entries: list[AuditEntry]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditentry")


def test_an_edited_row_is_detected_at_its_sequence_number(entries: list[AuditEntry]) -> None:
    with _Maintenance() as cursor:
        cursor.execute("UPDATE audit_auditentry SET detail = %s WHERE seq = 4", ["innocent"])
    result = services.verify()
    assert not result.ok and result.first_bad_seq == 4 and "altered" in result.problem


def test_a_deleted_middle_row_is_detected(entries: list[AuditEntry]) -> None:
    with _Maintenance() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq = 3")
    result = services.verify()
    assert not result.ok and result.first_bad_seq == 3 and "gap" in result.problem


def test_reordered_rows_are_detected(entries: list[AuditEntry]) -> None:
    with _Maintenance() as cursor:
        cursor.execute("UPDATE audit_auditentry SET seq = -1 WHERE seq = 2")
        cursor.execute("UPDATE audit_auditentry SET seq = 2 WHERE seq = 5")
        cursor.execute("UPDATE audit_auditentry SET seq = 5 WHERE seq = -1")
    result = services.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_a_truncated_tail_is_detected_by_the_anchor(entries: list[AuditEntry]) -> None:
    last = entries[-1].seq
    with _Maintenance() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq >= %s", [last - 1])
    result = services.verify()
    assert not result.ok and result.first_bad_seq == last - 1 and "truncated" in result.problem


def test_a_rewritten_chain_is_detected_by_the_anchor(entries: list[AuditEntry]) -> None:
    # The attacker edits a row and recomputes every hash after it: the chain is self-consistent again.
    with _Maintenance() as cursor:
        prev = chain.GENESIS
        for row in AuditEntry.objects.order_by("seq"):
            fields = {name: getattr(row, name) for name in chain.HASHED_FIELDS}
            if row.seq == 2:
                fields["detail"] = "nothing to see"
            digest = chain.entry_hash(prev, fields)
            cursor.execute(
                "UPDATE audit_auditentry SET detail = %s, prev_hash = %s, entry_hash = %s WHERE seq = %s",
                [fields["detail"], prev, digest, row.seq],
            )
            prev = digest
    assert services.verify(use_anchor=False).ok  # without the anchor the forgery would pass
    result = services.verify()
    assert not result.ok and "rewritten" in result.problem and result.first_bad_seq == entries[-1].seq


def test_a_forged_anchor_is_detected(entries: list[AuditEntry], settings: Any) -> None:
    path = settings.KETACLINIC_AUDIT_ANCHOR_PATH
    chain.write_anchor(path, b"attacker key", entries[-1].seq, entries[-1].entry_hash, force=True)
    result = services.verify()
    assert not result.ok and "signature" in result.problem


def test_audit_row_and_change_commit_or_roll_back_together(nurse: Any, make_patient: Any) -> None:
    from ketaclinic.patients.models import Patient

    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        make_patient(nurse, mrn="ROLLBACK-1")
        assert AuditEntry.objects.count() == before + 1
        raise RuntimeError("crash mid use case")
    assert not Patient.objects.filter(mrn="ROLLBACK-1").exists()
    assert AuditEntry.objects.count() == before


def test_entries_carry_the_e2147_fields(nurse: Any, patient: Any) -> None:
    entry = AuditEntry.objects.filter(patient=patient, action="add").get()
    assert entry.user == nurse and entry.username == "nurse1"
    assert entry.category == "demographics" and entry.object_type == "Patient"
    assert entry.occurred_at.utcoffset().total_seconds() == 0
    assert '"family_name":"Examplesson"' in entry.after
    assert entry.organization_id == nurse.organization_id
