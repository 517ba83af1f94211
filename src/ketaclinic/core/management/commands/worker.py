from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from ketaclinic.core import jobs


class Command(BaseCommand):
    help = (
        "Run background jobs (reminders, escalations, audit anchoring) from the database queue. Several workers "
        "may run at once: each job is claimed by exactly one. --once runs what is due and exits."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run the jobs that are due, then exit")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs.ensure_recurring()
        while True:
            ran = jobs.run_due_jobs()
            if ran:
                self.stdout.write(f"ran {ran} job(s)")
            if options["once"]:
                return
            time.sleep(options["interval"])
