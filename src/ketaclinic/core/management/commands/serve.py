from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ketaclinic.core import jobs


class Command(BaseCommand):
    help = (
        "Serve ketaclinic through uvicorn with several worker processes (KETACLINIC_WEB_WORKERS, default 4, "
        "or --workers), so one slow request holds up one process, not the clinic. This command's own process "
        "supervises the workers (restarting one that dies) and runs the background jobs (the safety sweeps "
        "that raise overdue-reading alerts and escalate unacknowledged alerts, reminders, exports) in a "
        "thread, once whatever the number of workers. Start it with --no-sweeps only when `ketaclinic worker` "
        "runs as its own process. Put a TLS proxy (nginx, Caddy) in front of it for anything but the "
        "loopback address, and name it in KETACLINIC_TRUSTED_PROXIES."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="uvicorn worker processes (default KETACLINIC_WEB_WORKERS, 4)",
        )
        parser.add_argument(
            "--no-sweeps",
            action="store_true",
            help="do not run the background jobs in this process (then run `ketaclinic worker` beside it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

        workers = options["workers"] if options["workers"] is not None else settings.KETACLINIC_WEB_WORKERS
        if not 1 <= workers <= 64:
            raise CommandError(f"--workers {workers}: give a number from 1 to 64.")
        # The sweeps run here, in the supervising process, never in the workers: uvicorn starts each worker
        # as a fresh interpreter (multiprocessing "spawn"), which imports the application but not this
        # thread. A job is claimed by one runner anyway (core/jobs.py), so a `ketaclinic worker` beside it
        # is safe too.
        thread = None
        if not options["no_sweeps"]:
            thread = jobs.JobThread()
            thread.start()
        self.stdout.write(
            f"ketaclinic serving on http://{options['host']}:{options['port']}/ with {workers} worker "
            f"process{'es' if workers != 1 else ''} (Ctrl-C stops); "
            + (
                "background jobs and safety sweeps run once, in this process"
                if thread is not None
                else "background jobs NOT run here: start `ketaclinic worker`"
            )
        )
        self.stdout.flush()
        try:
            uvicorn.run(
                "ketaclinic.asgi:application",
                host=options["host"],
                port=options["port"],
                workers=workers,
                log_level="warning",
                access_log=False,  # request lines are not logged: no PHI ever reaches the log
                # Client addresses come from core.client_address (KETACLINIC_TRUSTED_PROXIES), the same
                # rule under any server; uvicorn does not rewrite them.
                proxy_headers=False,
                lifespan="off",  # Django's ASGI handler has no lifespan events
            )
        finally:
            if thread is not None:
                thread.stop()
