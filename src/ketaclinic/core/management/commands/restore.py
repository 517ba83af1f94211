from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ketaclinic.audit import chain
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import AuditEntry
from ketaclinic.core import backup


class Command(BaseCommand):
    help = (
        "Replace the current database with the backup at PATH, then run the database integrity check and verify "
        "the audit chain against the anchor saved with the backup, and every signed consent document (copied back "
        "from PATH.documents) against its fingerprint. When all pass, the live anchor is moved to "
        "the restored head. This overwrites everything entered since the backup: stop the server first."
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
        saved_anchor = chain.read_anchor(anchor_file) if anchor_file.exists() else None
        result = audit.verify(use_anchor=saved_anchor is not None, anchor=saved_anchor)
        report = {
            "restored": str(path),
            "integrity": integrity,
            "audit": result.as_dict(),
            "consent_documents": consent_documents,
        }
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            self.stdout.write(f"Restored {path}. Database integrity: {integrity}.")
            if result.ok:
                self.stdout.write(f"Audit log intact: {result.entries} entries (head #{result.head_seq}).")
            self.stdout.write(f"Signed consent documents: {consent_documents}.")
        if integrity != "ok" or not result.ok or not consent_documents.startswith("ok"):
            if not options["json"]:
                self.stderr.write(
                    f"RESTORE CHECK FAILED: integrity={integrity}; audit at #{result.first_bad_seq}: "
                    f"{result.problem}; consent documents: {consent_documents}"
                )
            raise CommandError("restore verification failed", returncode=1)
        if result.head_seq:
            head = AuditEntry.objects.get(seq=result.head_seq)
            chain.write_anchor(
                settings.KETACLINIC_AUDIT_ANCHOR_PATH,
                audit.anchor_key(),
                head.seq,
                head.entry_hash,
                force=True,
            )
