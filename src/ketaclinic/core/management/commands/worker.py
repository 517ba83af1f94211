from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ketaclinic.core import jobs


class Command(BaseCommand):
    help = (
        "Run background jobs (the safety sweeps: overdue readings and escalation of unacknowledged alerts; "
        "reminders, emailed links, audit anchoring, exports) from the database queue. `ketaclinic serve` runs "
        "the same loop in a thread unless started with --no-sweeps; run this beside it when it is. Several "
        "workers may run at once: each job is claimed by exactly one. --once runs what is due and exits."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run the jobs that are due, then exit")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            jobs.ensure_recurring()
            ran = jobs.run_due_jobs()
            if ran:
                self.stdout.write(f"ran {ran} job(s)")
            return
        jobs.work(interval=options["interval"], on_ran=lambda ran: self.stdout.write(f"ran {ran} job(s)"))
