"""``ketaclinic fhir export DIR``: write an organization's FHIR resources as NDJSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ketaclinic.accounts.models import Organization
from ketaclinic.interop.fhir import export
from ketaclinic.interop.fhir.params import parse_date
from ketaclinic.interop.fhir.resources import REGISTRY


class Command(BaseCommand):
    help = (
        "Export an organization's records as FHIR R4 NDJSON: one file per resource type (Patient.ndjson, "
        "Observation.ndjson, ...) in DIR. The files contain patient health information: write them only "
        "to an encrypted disk. The export is recorded in the audit log."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("directory", help="folder to write the .ndjson files into (created if missing)")
        parser.add_argument("--org", required=True, help="organization slug, e.g. harbor-clinics")
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            choices=sorted(REGISTRY),
            help="only this type (repeatable)",
        )
        parser.add_argument("--since", help="only resources changed after this time, e.g. 2026-01-01T00:00Z")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        since = None
        if options["since"]:
            try:
                since = parse_date(options["since"]).start
            except ValueError as exc:
                raise CommandError(f"--since: {exc}") from None
        counts = export.write_directory(
            organization=org, directory=Path(options["directory"]), types=options["type"] or None, since=since
        )
        if options["json"]:
            self.stdout.write(json.dumps(counts))
            return
        for name, count in counts.items():
            self.stdout.write(f"{name}.ndjson: {count} resources")
