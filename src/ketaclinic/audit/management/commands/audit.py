from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.audit import services


class Command(BaseCommand):
    help = (
        "Audit log tools. 'verify' walks the whole hash chain, checks it against the signed anchor kept outside "
        "the database and names the first bad entry; it exits 1 if the log was altered, truncated or reordered. "
        "'anchor' re-signs the current head (after a restore that was verified)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["verify", "anchor"])
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "anchor":
            services.anchor_head()
            self.stdout.write("Anchored the current audit head.")
            return
        result = services.verify()
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        elif result.ok:
            anchored = f", anchored at #{result.anchor_seq}" if result.anchor_seq else ", no anchor yet"
            self.stdout.write(
                f"Audit log intact: {result.entries} entries, head #{result.head_seq}{anchored}."
            )
        if not result.ok:
            if not options["json"]:
                self.stderr.write(
                    f"AUDIT LOG FAILED VERIFICATION at #{result.first_bad_seq}: {result.problem}"
                )
            raise CommandError("audit verification failed", returncode=1)
