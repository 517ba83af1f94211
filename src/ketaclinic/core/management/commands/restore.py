from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.audit import anchoring, chain
from ketaclinic.audit import services as audit
from ketaclinic.core import backup
from ketaclinic.ledger.services import RegisterChain


class Command(BaseCommand):
    help = (
        "Replace the current database with the backup at PATH, then run the database integrity check and verify "
        "the audit chain and every controlled-substance register against the anchors saved with the backup (and the "
        "published checkpoints up to them), and every signed consent document (copied back "
        "from PATH.documents) against its fingerprint. When all pass, the live anchors are moved to "
        "the restored heads and a reset is published. A backup without its anchor file cannot be verified. "
        "This overwrites everything entered since the backup: stop the server first."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--json", action="store_true", help="print the checks as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not options["yes"]:
            answer = input(f"Replace the database with {path}? Type 'restore' to continue: ")
            if answer.strip() != "restore":
                raise CommandError("Nothing restored.")
        try:
            backup.restore(path)
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        integrity = backup.integrity_check()
        from ketaclinic.consent.services import check_document_store

        consent_documents = check_document_store()
        anchor_file = backup.anchor_copy_path(path.resolve())
        try:
            saved = chain.read_anchors(anchor_file) or {}
        except chain.AnchorError:
            saved = {}
        # Compared with the anchors saved with the backup, and with the published checkpoints up to them (the
        # collector also holds the later, now abandoned, history; a reset is published once all passes).
        published = anchoring.load_published()
        result = anchoring.check(
            audit.AUDIT_CHAIN,
            anchors=saved,
            published=published,
            published_limit=saved["audit"].seq if "audit" in saved else 0,
        )
        registers = [
            anchoring.check(
                source,
                anchors=saved,
                published=published,
                published_limit=saved[source.name].seq if source.name in saved else 0,
            )
            for source in _registers()
        ]
        report = {
            "restored": str(path),
            "integrity": integrity,
            "audit": result.as_dict(),
            "registers": [r.as_dict() for r in registers],
            "consent_documents": consent_documents,
        }
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            self.stdout.write(f"Restored {path}. Database integrity: {integrity}.")
            if result.ok:
                self.stdout.write(f"Audit log intact: {result.entries} entries (head #{result.head_seq}).")
            self.stdout.write(f"Signed consent documents: {consent_documents}.")
        bad_registers = [r for r in registers if not r.ok]
        if integrity != "ok" or not result.ok or bad_registers or not consent_documents.startswith("ok"):
            if not options["json"]:
                self.stderr.write(
                    f"RESTORE CHECK FAILED: integrity={integrity}; audit at #{result.first_bad_seq}: "
                    f"{result.problem or 'ok'}; registers: "
                    f"{'; '.join(f'{r.chain} #{r.first_bad_seq}: {r.problem}' for r in bad_registers) or 'ok'}; "
                    f"consent documents: {consent_documents}"
                )
            raise CommandError("restore verification failed", returncode=1)
        sources: list[anchoring.ChainSource] = [audit.AUDIT_CHAIN, *_registers()]
        for source in sources:
            anchoring.reset(source)


def _registers() -> list[RegisterChain]:
    from ketaclinic.accounts.models import Organization

    return [RegisterChain(pk) for pk in Organization.objects.order_by("pk").values_list("pk", flat=True)]
