from __future__ import annotations

import io
import json
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ketaclinic.audit import anchoring
from ketaclinic.audit import services as audit
from ketaclinic.audit.chain import UNVERIFIABLE, ChainCheck
from ketaclinic.core import backup


class Command(BaseCommand):
    help = (
        "Check that this installation is fit to run: Django's system checks, unapplied migrations, the "
        "database integrity check, where the anchor key is kept (fails when it sits in the data directory or other "
        "users can read it), whether anchors are published off the host, the audit chain and every "
        "controlled-substance register chain against their anchors and the published checkpoints, and the audit "
        "maintenance switch (must be off), and every signed consent document against its fingerprint. Exits 1 if "
        "anything fails."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print the results as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        results: dict[str, Any] = {}
        call_command("check", stdout=io.StringIO())
        results["system_checks"] = "ok"
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        results["migrations"] = "ok" if not pending else f"{len(pending)} unapplied; run `ketaclinic migrate`"
        results["database"] = connection.vendor
        results["integrity"] = backup.integrity_check()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM ketaclinic_audit_maintenance WHERE allow_purge = %s",
                [True if connection.vendor == "postgresql" else 1],
            )
            results["audit_maintenance_switch"] = (
                "off" if cursor.fetchone()[0] == 0 else "ON (audit rows deletable!)"
            )
        key_ok, results["anchor_key"] = anchoring.key_status()
        results["anchor_sink"] = anchoring.sink_status()
        verify = audit.verify()
        results["audit"] = verify.as_dict()
        results["controlled_substance_register"] = _ledger_chains()
        results["background_sweeps"] = _sweeps()
        results["consent_documents"] = _consent_documents()
        results["debug"] = settings.DEBUG
        results["secure_cookies"] = settings.SECURE_COOKIES
        results["client_addresses"] = _client_addresses()
        results["web_workers"] = settings.KETACLINIC_WEB_WORKERS
        ok = (
            results["migrations"] == "ok"
            and results["integrity"] == "ok"
            and verify.ok
            and key_ok
            and results["audit_maintenance_switch"] == "off"
            and results["controlled_substance_register"] == "ok"
            and results["consent_documents"].startswith("ok")
        )
        if options["json"]:
            self.stdout.write(json.dumps(results))
        else:
            for key, value in results.items():
                self.stdout.write(f"{key:<26} {value if key != 'audit' else _audit_words(verify)}")
        if not ok:
            raise CommandError("checks failed", returncode=1)


def _audit_words(verify: ChainCheck) -> str:
    if verify.ok:
        return "ok"
    if verify.status == UNVERIFIABLE:
        return f"CANNOT BE VERIFIED: {verify.problem}"
    return f"FAILED at #{verify.first_bad_seq}: {verify.problem}"


def _ledger_chains() -> str:
    """Every organization's controlled-substance register chain, compared with its anchor and the published
    checkpoints like the audit log (ledger.services.check_register)."""
    from ketaclinic.accounts.models import Organization
    from ketaclinic.ledger.services import check_register

    published = anchoring.load_published()
    broken = []
    for org in Organization.objects.order_by("pk"):
        result = check_register(org.pk, published=published)
        if result.ok:
            continue
        if result.status == UNVERIFIABLE:
            broken.append(f"{org.slug}: cannot be verified ({result.problem})")
        else:
            broken.append(f"{org.slug}: entry {result.first_bad_seq} does not check out ({result.problem})")
    return "; ".join(broken) if broken else "ok"


def _consent_documents() -> str:
    from ketaclinic.consent.services import check_document_store

    return check_document_store()


def _sweeps() -> str:
    """Whether the safety sweeps ran recently (core.jobs.sweeps_status): staff see the same on the home page."""
    from ketaclinic.core import jobs

    status = jobs.sweeps_status()
    if status.running:
        last = status.last_run_at
        return f"ok (last ran {last:%Y-%m-%d %H:%M:%S} UTC)" if last else "ok"
    stopped = ", ".join(
        f"{s.kind} last ran {s.last_run_at:%Y-%m-%d %H:%M:%S} UTC" if s.last_run_at else f"{s.kind} never ran"
        for s in status.stopped
    )
    return (
        f"NOT RUNNING ({stopped}): overdue readings and unacknowledged alerts are not escalated; "
        "start `ketaclinic serve` (runs them) or `ketaclinic worker`"
    )


def _client_addresses() -> str:
    """Where client addresses come from (reported, not a failure): behind a TLS proxy with no trusted proxy
    named, every client has the proxy's address — one client's wrong passwords pause everyone's sign-in."""
    trusted = tuple(settings.KETACLINIC_TRUSTED_PROXIES)
    if trusted:
        return "X-Forwarded-For from trusted proxies " + ", ".join(trusted)
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        return (
            "WARNING: KETACLINIC_BEHIND_TLS_PROXY is set but KETACLINIC_TRUSTED_PROXIES is empty: every client "
            "has the proxy's address (sign-in lockouts, audit log)"
        )
    return "the connection's address (no proxy trusted)"
