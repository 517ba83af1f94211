from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ketaclinic.core import jobs


class Command(BaseCommand):
    help = (
        "Serve ketaclinic through uvicorn. For one clinic this single process is enough: it also runs the "
        "background jobs (the safety sweeps that raise overdue-reading alerts and escalate unacknowledged "
        "alerts, reminders, exports) in a thread. Start it with --no-sweeps only when `ketaclinic worker` "
        "runs as its own process. Put a TLS proxy (nginx, Caddy) in front of it for anything but the "
        "loopback address."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
        parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
        parser.add_argument(
            "--no-sweeps",
            action="store_true",
            help="do not run the background jobs in this process (then run `ketaclinic worker` beside it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

        thread = None
        if not options["no_sweeps"]:
            thread = jobs.JobThread()
            thread.start()
        self.stdout.write(
            f"ketaclinic serving on http://{options['host']}:{options['port']}/ (Ctrl-C stops); "
            + (
                "background jobs and safety sweeps run in this process"
                if thread is not None
                else "background jobs NOT run here: start `ketaclinic worker`"
            )
        )
        try:
            uvicorn.run(
                "ketaclinic.asgi:application",
                host=options["host"],
                port=options["port"],
                workers=options["workers"],
                log_level="warning",
                access_log=False,  # request lines are not logged: no PHI ever reaches the log
                proxy_headers=False,
            )
        finally:
            if thread is not None:
                thread.stop()
