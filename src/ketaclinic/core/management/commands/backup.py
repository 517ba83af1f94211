from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.core import backup


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the whole database to PATH while the clinic keeps working (SQLite online "
        "backup API, or pg_dump for PostgreSQL), plus PATH.anchor.json, the audit anchor at that moment. "
        "Keep backups encrypted and off this machine; test them with `ketaclinic restore` on a spare system."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup.backup(options["path"])
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Backup written to {options['path']}")
