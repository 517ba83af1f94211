from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.audit import anchoring, services
from ketaclinic.audit.chain import UNVERIFIABLE, ChainCheck


def register_checks(published: Path | None = None) -> list[ChainCheck]:
    """Every organization's controlled-substance register, compared like the audit log."""
    from ketaclinic.accounts.models import Organization
    from ketaclinic.ledger.services import check_register

    loaded = anchoring.load_published(published)
    return [
        check_register(pk, published=loaded)
        for pk in Organization.objects.order_by("pk").values_list("pk", flat=True)
    ]


class Command(BaseCommand):
    help = (
        "Audit log tools. 'verify' walks the whole hash chain and every controlled-substance register chain, "
        "checks each against its anchor (signed with a key kept apart from the database) and against the "
        "checkpoints the syslog collector received (--published PATH or KETACLINIC_ANCHOR_PUBLISHED_FILE), and "
        "names the first bad entry; it exits 1 if a log was altered, truncated, reordered or rewritten, or "
        "cannot be verified. 'anchor' moves the anchors to the current heads after a clean verification; "
        "'anchor --reset' re-anchors the current heads unconditionally (after a lost anchor file or a new key), "
        "publishing a reset the collector keeps."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", choices=["verify", "anchor"])
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument(
            "--published", type=Path, help="the collector's received records (or an export of them)"
        )
        parser.add_argument(
            "--reset", action="store_true", help="with 'anchor': accept the current heads as they are"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        published: Path | None = options["published"]
        if options["action"] == "anchor":
            self._anchor(published, reset=options["reset"])
            return
        result = services.verify(published=published)
        registers = register_checks(published)
        ok = result.ok and all(r.ok for r in registers)
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict() | {"registers": [r.as_dict() for r in registers]}))
        else:
            for check in (result, *registers):
                self._say(check)
        if not ok:
            raise CommandError("audit verification failed", returncode=1)

    def _say(self, check: ChainCheck) -> None:
        label = "Audit log" if check.chain == "audit" else f"Controlled-substance register ({check.chain})"
        if check.ok:
            anchored = f", anchored at #{check.anchor_seq}" if check.anchor_seq else ", no entries yet"
            published = f", published up to #{check.published_seq}" if check.published_seq else ""
            self.stdout.write(
                f"{label} intact: {check.entries} entries, head #{check.head_seq}{anchored}{published}."
            )
        elif check.status == UNVERIFIABLE:
            self.stderr.write(f"{label.upper()} CANNOT BE VERIFIED: {check.problem}")
        else:
            self.stderr.write(
                f"{label.upper()} FAILED VERIFICATION at #{check.first_bad_seq}: {check.problem}"
            )

    def _anchor(self, published: Path | None, *, reset: bool) -> None:
        from ketaclinic.accounts.models import Organization
        from ketaclinic.ledger.services import RegisterChain

        sources: list[anchoring.ChainSource] = [
            services.AUDIT_CHAIN,
            *(RegisterChain(pk) for pk in Organization.objects.order_by("pk").values_list("pk", flat=True)),
        ]
        if reset:
            for source in sources:
                written = anchoring.reset(source)
                if written is not None:
                    self.stdout.write(f"Re-anchored {source.name} at #{written.seq} (reset published).")
            return
        checks = [services.verify(published=published), *register_checks(published)]
        bad = [c for c in checks if not c.ok]
        if bad:
            for check in bad:
                self._say(check)
            raise CommandError(
                "not anchoring a chain that does not verify; if the anchor file was lost or the key changed, "
                "and you accept the chains as they are, run `ketaclinic audit anchor --reset`",
                returncode=1,
            )
        for source in sources:
            anchoring.advance(source)
        self.stdout.write("Anchored the current heads.")
