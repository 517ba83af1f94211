"""``ketaclinic mllp``: receive vital signs from bedside monitors (HL7 v2 ORU^R01 over MLLP)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.accounts.models import Organization, Site
from ketaclinic.monitoring.feed import FeedStore
from ketaclinic.monitoring.listener import MLLPListener, run


class Command(BaseCommand):
    help = (
        "Receive vital signs from bedside monitors and gateways (HL7 v2 ORU^R01, IHE PCD-01, over MLLP). "
        "Monitors keep their connection open and stream; each message is stored, then acknowledged. "
        "Readings that cannot be matched to a chair or patient are kept for staff to attach."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument(
            "--port", type=int, default=2575, help="TCP port (default 2575; 0 picks a free one)"
        )
        parser.add_argument(
            "--organization",
            help="slug of the organization the monitors belong to (needed when there is more than one)",
        )
        parser.add_argument("--site", help="code of the site whose time zone applies to unassigned monitors")
        parser.add_argument(
            "--mrn-authority",
            action="append",
            default=None,
            help="only match PID-3 identifiers from this assigning authority (repeatable; empty always matches)",
        )
        parser.add_argument("--max-frame-bytes", type=int, default=1 << 20, help="largest message accepted")
        parser.add_argument(
            "--max-batch", type=int, default=1000, help="most messages stored per transaction"
        )
        parser.add_argument(
            "--parse-workers",
            type=int,
            default=0,
            help="processes that parse messages while the listener stores the previous batch (default 0: parse "
            "in the listener; 1 or more uses more CPU cores)",
        )
        parser.add_argument(
            "--no-alerts", action="store_true", help="store readings without running the alerts"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        orgs = Organization.objects.all()
        if options["organization"]:
            org = orgs.filter(slug=options["organization"]).first()
            if org is None:
                raise CommandError(f"No organization with slug {options['organization']!r}.")
        else:
            if orgs.count() != 1:
                raise CommandError("Say which organization the monitors belong to: --organization SLUG.")
            org = orgs.get()
        site = None
        if options["site"]:
            site = Site.objects.filter(organization=org, code=options["site"]).first()
            if site is None:
                raise CommandError(f"No site with code {options['site']!r} in {org}.")
        elif Site.objects.filter(organization=org).count() == 1:
            site = Site.objects.get(organization=org)
        authorities = frozenset(options["mrn_authority"]) if options["mrn_authority"] else None

        def make_store() -> FeedStore:
            return FeedStore(
                organization=org,
                default_site=site,
                mrn_authorities=authorities,
                run_alerts=not options["no_alerts"],
            )

        listener = MLLPListener(
            make_store,
            host=options["host"],
            port=options["port"],
            max_frame_bytes=options["max_frame_bytes"],
            max_batch=options["max_batch"],
            parse_workers=max(0, options["parse_workers"]),
        )

        def ready(lst: MLLPListener) -> None:
            # Tests and scripts wait for this line.
            self.stdout.write(f"listening on {lst.host}:{lst.port}")
            self.stdout.flush()
            sys.stdout.flush()

        asyncio.run(run(listener, ready=ready))
