"""The audit log is append-only, hash-chained, anchored with a key kept apart from the database and published
to a syslog collector; verification compares all three and names the first bad entry (issue 15 H3)."""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.signals import user_login_failed
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from tests.audit.collector import Collector
from tests.audit.tamper import AUDIT_TRIGGERS, drop_triggers, key_beside_the_database, rehash, resign_anchor

from ketaclinic.audit import anchoring, chain, publish, services
from ketaclinic.audit.models import AuditEntry

ROWS = 6


@pytest.fixture
def collector(settings: Any, tmp_path: Path) -> Iterator[Collector]:
    """A real RFC 5424 collector on localhost (TCP, octet counting); verify reads the file it appends to."""
    running = Collector(tmp_path / "collector" / "anchors.log")
    running.path.parent.mkdir()
    settings.KETACLINIC_ANCHOR_SYSLOG = running.url
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = str(running.path)
    yield running
    running.close()


@pytest.fixture
def entries(
    nurse: Any, patient: Any, collector: Collector, django_capture_on_commit_callbacks: Any
) -> list[AuditEntry]:
    """The fixtures' entries anchored by the operator, then six reads, each committed (so each is anchored
    and published as it would be in the clinic)."""
    anchoring.reset(services.AUDIT_CHAIN)
    for i in range(ROWS):
        with django_capture_on_commit_callbacks(execute=True):
            services.record(
                user=nurse, action="query", category="demographics", patient=patient, detail=f"read {i}"
            )
    collector.wait_for(1 + ROWS)
    return list(AuditEntry.objects.order_by("seq"))


def _committed(capture: Any, what: Any) -> Any:
    with capture(execute=True):
        return what()


def _failed_login(capture: Any, n: int) -> None:
    """Anonymous failed sign-ins: each writes one audit entry, as anyone on the network can cause."""
    for i in range(n):
        with capture(execute=True):
            user_login_failed.send(sender=__name__, credentials={"username": f"nobody{i}"}, request=None)


def _audit_rows() -> list[dict[str, Any]]:
    return [
        {"id": row.pk, **{name: getattr(row, name) for name in chain.HASHED_FIELDS}}
        for row in AuditEntry.objects.order_by("seq")
    ]


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


# --------------------------------------------------------------------------- a clean chain


def test_a_clean_chain_verifies_against_the_anchor_and_the_collector(entries: list[AuditEntry]) -> None:
    result = services.verify()
    assert result.ok and result.status == "intact", result.problem
    head = entries[-1].seq
    assert (
        result.entries == len(entries)
        and result.head_seq == head == result.anchor_seq == result.published_seq
    )


def test_each_commit_publishes_an_rfc5424_record_to_the_collector(
    entries: list[AuditEntry], collector: Collector
) -> None:
    lines = collector.lines()
    assert len(lines) == 1 + ROWS
    last = lines[-1]
    # <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG, facility "log audit" (13), severity notice (5)
    message = last.split(" ", 2)[2]
    assert (
        message.startswith("<109>1 ")
        and " ketaclinic " in message
        and " anchor - ketaclinic-anchor " in message
    )
    assert f"chain=audit seq={entries[-1].seq} hash={entries[-1].entry_hash} " in message
    assert "reset" in lines[0] and "reset" not in last


def test_the_collector_can_listen_on_udp(
    settings: Any, tmp_path: Path, nurse: Any, django_capture_on_commit_callbacks: Any
) -> None:
    udp = Collector(tmp_path / "udp.log", protocol="udp")
    try:
        settings.KETACLINIC_ANCHOR_SYSLOG = udp.url
        anchoring.reset(services.AUDIT_CHAIN)
        _committed(
            django_capture_on_commit_callbacks,
            lambda: services.record(user=nurse, action="query", category="x"),
        )
        head = AuditEntry.objects.order_by("-seq").first()
        udp.wait_for(1 if head is not None and head.seq == 1 else 2)
        assert head is not None
        records = publish.read_published(udp.path)
        assert [(r.seq, r.hash) for r in records][-1] == (head.seq, head.entry_hash)
    finally:
        udp.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_collector_can_listen_on_tls(
    settings: Any, tmp_path: Path, nurse: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """RFC 5425: the anchors go over TLS to a collector whose certificate the clinic's CA file vouches for."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=collector")
    (tmp_path / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    tls = Collector(tmp_path / "tls.log", protocol="tls", tls=context)
    try:
        settings.KETACLINIC_ANCHOR_SYSLOG = tls.url
        settings.KETACLINIC_ANCHOR_SYSLOG_CA = str(tmp_path / "ca.pem")
        entry = _committed(
            django_capture_on_commit_callbacks,
            lambda: services.record(user=nurse, action="query", category="x"),
        )
        anchoring.reset(services.AUDIT_CHAIN)
        tls.wait_for(1)
        assert (entry.seq, entry.entry_hash) in [(r.seq, r.hash) for r in publish.read_published(tls.path)]
        # A collector the CA file does not vouch for gets nothing.
        settings.KETACLINIC_ANCHOR_SYSLOG_CA = ""
        assert not publish.publish("audit", entry.seq, entry.entry_hash, "0" * 64)
    finally:
        tls.close()


def test_a_collector_that_is_down_does_not_stop_the_clinic(
    settings: Any, nurse: Any, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    from tests.audit.collector import free_port

    settings.KETACLINIC_ANCHOR_SYSLOG = f"tcp://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.ERROR, logger="ketaclinic.audit.publish"):
        anchoring.reset(services.AUDIT_CHAIN)
        entry = _committed(
            django_capture_on_commit_callbacks,
            lambda: services.record(user=nurse, action="query", category="x"),
        )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert "not published" in caplog.text
    assert chain.read_anchor(anchoring.anchor_path()).seq == entry.seq  # type: ignore[union-attr]


def test_sequence_is_gapless_and_each_entry_links_to_the_previous(entries: list[AuditEntry]) -> None:
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == chain.GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash


def test_update_is_refused_by_the_database(entries: list[AuditEntry]) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=2).update(detail="edited")
    assert AuditEntry.objects.get(seq=2).detail != "edited"


def test_delete_is_refused_by_the_database(entries: list[AuditEntry]) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(seq=3).delete()
    assert AuditEntry.objects.filter(seq=3).exists()


def test_truncate_is_refused_on_postgresql(transactional_db: Any, nurse: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    services.record(user=nurse, action="query", category="x")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE audit_auditentry")


# --------------------------------------------------------------------------- the tamper scenarios


def test_an_edited_row_is_detected_at_its_sequence_number(entries: list[AuditEntry]) -> None:
    target = entries[-3].seq
    with _Maintenance() as cursor:
        cursor.execute("UPDATE audit_auditentry SET detail = %s WHERE seq = %s", ["innocent", target])
    result = services.verify()
    assert not result.ok and result.first_bad_seq == target and "altered" in result.problem


def test_a_deleted_middle_row_is_detected(entries: list[AuditEntry]) -> None:
    target = entries[-4].seq
    with _Maintenance() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq = %s", [target])
    result = services.verify()
    assert not result.ok and result.first_bad_seq == target and "gap" in result.problem


def test_reordered_rows_are_detected(entries: list[AuditEntry]) -> None:
    a, b = entries[-5].seq, entries[-2].seq
    with _Maintenance() as cursor:
        cursor.execute("UPDATE audit_auditentry SET seq = -1 WHERE seq = %s", [a])
        cursor.execute("UPDATE audit_auditentry SET seq = %s WHERE seq = %s", [a, b])
        cursor.execute("UPDATE audit_auditentry SET seq = %s WHERE seq = -1", [b])
    result = services.verify()
    assert not result.ok and result.first_bad_seq == a


def test_a_truncated_tail_is_detected_by_the_anchor_and_the_collector(
    entries: list[AuditEntry], settings: Any
) -> None:
    last = entries[-1].seq
    with _Maintenance() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq >= %s", [last - 1])
    result = services.verify()
    assert not result.ok and result.first_bad_seq == last - 1 and "truncated" in result.problem
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""
    assert services.verify().first_bad_seq == last - 1  # the anchor alone sees it too


def test_truncate_with_the_triggers_dropped_is_detected_on_postgresql(entries: list[AuditEntry]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    drop_triggers(AUDIT_TRIGGERS)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own transaction has deferred checks
        cursor.execute("TRUNCATE audit_auditentry")
    result = services.verify()
    assert not result.ok and result.entries == 0 and result.first_bad_seq == 1
    assert f"#1–#{entries[-1].seq} are missing" in result.problem


def test_dropped_triggers_rehashed_chain_and_new_entries_are_detected(
    entries: list[AuditEntry], django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    """The probe's method (issue 15 H3): drop the triggers, delete rows, re-hash the whole chain, then let
    N+1 anonymous failed sign-ins push the chain past the anchored head."""
    head = entries[-1].seq
    gone = {entries[-4].seq, entries[-3].seq}
    drop_triggers(AUDIT_TRIGGERS)
    rehash("audit_auditentry", _audit_rows(), chain.entry_hash, delete=gone)
    with caplog.at_level(logging.ERROR, logger="ketaclinic.audit.anchoring"):
        _failed_login(django_capture_on_commit_callbacks, len(gone) + 1)
    assert AuditEntry.objects.order_by("-seq").first().seq == head + 1  # type: ignore[union-attr]
    # The application refused to move the anchor over the rewritten chain, and published nothing for it.
    assert "no longer extends its anchor" in caplog.text
    assert chain.read_anchor(anchoring.anchor_path()).seq == head  # type: ignore[union-attr]
    result = services.verify()
    assert not result.ok and result.status == "altered"
    assert result.first_bad_seq == min(gone) and "rewritten" in result.problem


def test_the_rows_alone_would_pass_after_a_rehash(entries: list[AuditEntry]) -> None:
    """Why the anchor and the collector are needed: a re-hashed chain is self-consistent."""
    drop_triggers(AUDIT_TRIGGERS)
    rehash("audit_auditentry", _audit_rows(), chain.entry_hash, delete={entries[-3].seq})
    rows_only = chain.check_chain(
        "audit", services.AUDIT_CHAIN.rows(), signer=None, anchor=None, use_anchor=False
    )
    assert rows_only.ok
    assert not services.verify().ok


def test_a_rewritten_chain_re_signed_with_the_key_beside_the_database_is_detected(
    entries: list[AuditEntry], settings: Any
) -> None:
    target = entries[-4].seq

    def edit(fields: dict[str, Any]) -> None:
        if fields["seq"] == target:
            fields["detail"] = "nothing to see"

    drop_triggers(AUDIT_TRIGGERS)
    rehash("audit_auditentry", _audit_rows(), chain.entry_hash, edit=edit)
    forged = AuditEntry.objects.order_by("-seq").first()
    assert forged is not None
    resign_anchor("audit", forged.seq, forged.entry_hash, key_beside_the_database())
    result = services.verify()
    assert not result.ok and result.first_bad_seq == target and "rewritten" in result.problem
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""  # without the collector, the key kept apart still tells
    alone = services.verify()
    assert not alone.ok and "signature is invalid" in alone.problem


def test_a_deleted_anchor_file_is_detected_and_not_silently_recreated(
    entries: list[AuditEntry], settings: Any, nurse: Any, django_capture_on_commit_callbacks: Any
) -> None:
    anchoring.anchor_path().unlink()
    _committed(
        django_capture_on_commit_callbacks, lambda: services.record(user=nurse, action="query", category="x")
    )
    assert not anchoring.anchor_path().exists()
    result = services.verify()
    assert not result.ok and result.status == "unverifiable" and "anchor is missing" in result.problem
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""
    assert services.verify().status == "unverifiable"


def test_a_deleted_anchor_file_with_a_rewritten_chain_is_named_by_the_collector(
    entries: list[AuditEntry],
) -> None:
    target = entries[-2].seq
    anchoring.anchor_path().unlink()
    drop_triggers(AUDIT_TRIGGERS)
    rehash("audit_auditentry", _audit_rows(), chain.entry_hash, delete={target})
    result = services.verify()
    assert not result.ok and result.status == "altered" and result.first_bad_seq == target


def test_only_the_collector_sees_the_log_and_the_anchor_rolled_back_together(
    entries: list[AuditEntry], settings: Any
) -> None:
    """Someone with file and database access restores an older, genuine anchor and cuts the log to it."""
    older = entries[-3]
    with _Maintenance() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq > %s", [older.seq])
    signer = anchoring.anchor_keys.provider()
    chain.write_anchor(
        anchoring.anchor_path(), signer, older.seq, older.entry_hash, force=True
    )  # the old copy
    result = services.verify()
    assert not result.ok and result.first_bad_seq == older.seq + 1 and "truncated" in result.problem
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""
    assert services.verify().ok  # the documented limit without a collector (docs/operations.md)


def test_a_record_sent_to_the_collector_with_another_key_is_reported(
    entries: list[AuditEntry], collector: Collector
) -> None:
    forged_mac = chain.sign(b"someone else", chain.anchor_message("audit", 2, "f" * 64))
    with collector.path.open("a") as handle:
        handle.write(f"x {publish.record_text('audit', 2, 'f' * 64, forged_mac)}\n")
    result = services.verify()
    assert not result.ok and result.first_bad_seq == 2 and "not signed with the anchor key" in result.problem


def test_an_unreadable_collector_file_is_not_intact(
    entries: list[AuditEntry], settings: Any, tmp_path: Path
) -> None:
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = str(tmp_path / "nowhere.log")
    result = services.verify()
    assert not result.ok and result.status == "unverifiable" and "cannot be read" in result.problem


def test_without_the_anchor_key_the_log_cannot_be_verified(entries: list[AuditEntry], settings: Any) -> None:
    """Issue 15 (Low): a restore without the secret key must not be reported intact."""
    Path(settings.KETACLINIC_ANCHOR_KEY_FILE).unlink()
    result = services.verify()
    assert not result.ok and result.status == "unverifiable" and "cannot be read" in result.problem


def test_verify_command_names_the_first_mismatch_as_json(
    entries: list[AuditEntry], collector: Collector, settings: Any
) -> None:
    import io

    target = entries[-3].seq
    drop_triggers(AUDIT_TRIGGERS)
    rehash("audit_auditentry", _audit_rows(), chain.entry_hash, delete={target})
    settings.KETACLINIC_ANCHOR_PUBLISHED_FILE = ""
    anchoring.anchor_path().unlink()
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit", "verify", "--json", "--published", str(collector.path), stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is False and report["first_bad_seq"] == target and report["status"] == "altered"
    assert report["registers"] == [] or all(r["ok"] for r in report["registers"])


def test_anchor_reset_is_an_operator_act_the_collector_keeps(
    entries: list[AuditEntry], collector: Collector
) -> None:
    anchoring.anchor_path().unlink()
    with pytest.raises(CommandError):
        call_command("audit", "anchor")  # refuses: the anchor is missing, nothing vouches for the chain
    call_command("audit", "anchor", "--reset")
    collector.wait_for(1 + ROWS + 1)
    assert services.verify().ok
    assert services.verify().published_resets == 2 and "reset" in collector.lines()[-1]


# --------------------------------------------------------------------------- where the key is kept


def test_check_fails_when_the_anchor_key_sits_in_the_data_directory(settings: Any, db: Any) -> None:
    inside = Path(settings.VAR_DIR) / "anchor.key"
    inside.write_text("k" * 64)
    inside.chmod(0o600)
    try:
        settings.KETACLINIC_ANCHOR_KEY_FILE = str(inside)
        ok, words = anchoring.key_status()
        assert not ok and "inside the data directory" in words
    finally:
        inside.unlink()


def test_check_fails_when_others_can_read_the_anchor_key(settings: Any, db: Any) -> None:
    key = Path(settings.KETACLINIC_ANCHOR_KEY_FILE)
    key.chmod(0o644)
    ok, words = anchoring.key_status()
    assert not ok and "mode 644" in words
    key.chmod(0o400)
    assert anchoring.key_status() == (True, f"ok (file {key})")
    assert stat.S_IMODE(key.stat().st_mode) == 0o400


def test_check_fails_when_the_key_is_derived_from_the_secret_key(settings: Any, db: Any) -> None:
    settings.KETACLINIC_ANCHOR_KEY_FILE = ""
    settings.KETACLINIC_ANCHOR_KEY = ""
    ok, words = anchoring.key_status()
    assert not ok and "derived from" in words and "KETACLINIC_ANCHOR_KEY_FILE" in words


def test_an_environment_secret_is_accepted(settings: Any, db: Any) -> None:
    settings.KETACLINIC_ANCHOR_KEY_FILE = ""
    settings.KETACLINIC_ANCHOR_KEY = "e" * 40
    settings.KETACLINIC_ANCHOR_KEY_VARIABLE = "KETACLINIC_ANCHOR_KEY"
    assert anchoring.key_status() == (True, "ok (environment secret KETACLINIC_ANCHOR_KEY)")


def test_check_reports_the_key_and_the_sink(entries: list[AuditEntry], settings: Any) -> None:
    import io

    out = io.StringIO()
    call_command("clinic_check", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["anchor_key"].startswith("ok (file ") and report["audit"]["ok"]
    assert report["anchor_sink"].startswith("publishing to tcp://127.0.0.1:")
    Path(settings.KETACLINIC_ANCHOR_KEY_FILE).chmod(0o644)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("clinic_check", "--json", stdout=out)
    assert "mode 644" in json.loads(out.getvalue())["anchor_key"]


def test_a_bad_collector_address_stops_start_up() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from ketaclinic import config

    with pytest.raises(ImproperlyConfigured, match="not a syslog collector address"):
        config.syslog_url("KETACLINIC_ANCHOR_SYSLOG", "syslog.example.org")
    assert config.syslog_url("X", "tls://logs.example.org:6514") == ("tls", "logs.example.org", 6514)


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
