"""``ketaclinic mllp``: receive vital signs from bedside monitors (HL7 v2 ORU^R01 over MLLP)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from ketaclinic.accounts.models import Organization, Site
from ketaclinic.monitoring.feed import FeedStore
from ketaclinic.monitoring.listener import MLLPListener, run
from ketaclinic.monitoring.trust import server_context

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Receive vital signs from bedside monitors and gateways (HL7 v2 ORU^R01, IHE PCD-01, over MLLP). "
        "Monitors keep their connection open and stream; each message is stored, then acknowledged. "
        "Readings that cannot be matched to a chair or patient are kept for staff to attach; messages from "
        "monitors that are not registered, or from addresses not allowed for them, wait for an administrator "
        "under Unknown senders and are never charted. Limits and TLS: docs/operations.md. "
        "`kill -USR1 PID` prints a 'feed stats' line per listener process (messages, batches, write-lock "
        "and checkpoint timings since the last one; no patient data); stopping prints the last."
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
        parser.add_argument(
            "--max-frame-bytes",
            type=int,
            default=settings.KETACLINIC_HL7_MAX_MESSAGE_BYTES,
            help="largest message accepted, in bytes (default KETACLINIC_HL7_MAX_MESSAGE_BYTES, "
            f"{settings.KETACLINIC_HL7_MAX_MESSAGE_BYTES}); larger ones are answered AE and not read",
        )
        parser.add_argument(
            "--idle-timeout",
            type=int,
            default=settings.KETACLINIC_HL7_IDLE_TIMEOUT_S,
            help="close a connection that delivers no complete message for this many seconds (default "
            f"KETACLINIC_HL7_IDLE_TIMEOUT_S, {settings.KETACLINIC_HL7_IDLE_TIMEOUT_S})",
        )
        parser.add_argument(
            "--max-connections-per-address",
            type=int,
            default=settings.KETACLINIC_HL7_MAX_CONNECTIONS_PER_ADDRESS,
            help="most open connections from one address, per listener process (default "
            f"KETACLINIC_HL7_MAX_CONNECTIONS_PER_ADDRESS, {settings.KETACLINIC_HL7_MAX_CONNECTIONS_PER_ADDRESS})",
        )
        parser.add_argument(
            "--tls-cert",
            default=settings.KETACLINIC_HL7_TLS_CERT,
            help="PEM certificate of the listener: MLLP over TLS, with client certificates required "
            "(default KETACLINIC_HL7_TLS_CERT; off when empty)",
        )
        parser.add_argument(
            "--tls-key",
            default=settings.KETACLINIC_HL7_TLS_KEY,
            help="its PEM private key (KETACLINIC_HL7_TLS_KEY)",
        )
        parser.add_argument(
            "--tls-ca",
            default=settings.KETACLINIC_HL7_TLS_CA,
            help="PEM file of the CA that signs the monitors' client certificates (KETACLINIC_HL7_TLS_CA)",
        )
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
            "--processes",
            type=int,
            default=1,
            help="listener processes sharing the port (default 1: enough for a clinic's monitors). More use "
            "more CPU cores for thousands of messages a second: each process reads, parses and stores its "
            "own connections; on SQLite they take turns to write",
        )
        parser.add_argument(
            "--no-alerts", action="store_true", help="store readings without running the alerts"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Until the listener's own handler is in place, a statistics request must not stop the process.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        self._host, self._port = options["host"], options["port"]
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

        processes = options["processes"]
        if processes < 1:
            raise CommandError("--processes must be 1 or more.")
        bad = [
            f"{flag} must be between {low} and {high}"
            for flag, key, low, high in (
                ("--max-frame-bytes", "max_frame_bytes", 4096, 1024 * 1024),
                ("--idle-timeout", "idle_timeout", 10, 86400),
                ("--max-connections-per-address", "max_connections_per_address", 1, 100000),
            )
            if not low <= options[key] <= high
        ]
        if bad:
            raise CommandError("; ".join(bad) + ".")
        context = None
        if options["tls_cert"] or options["tls_key"] or options["tls_ca"]:
            try:
                context = server_context(
                    cert=options["tls_cert"], key=options["tls_key"], ca=options["tls_ca"]
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        self._tls = context is not None

        def make_store(label: str = "") -> FeedStore:
            return FeedStore(
                organization=org,
                default_site=site,
                mrn_authorities=authorities,
                run_alerts=not options["no_alerts"],
                label=label,
            )

        def listener_for(sock: socket.socket | None, store: Any, checkpoints: bool = True) -> MLLPListener:
            return MLLPListener(
                store,
                host=options["host"],
                port=options["port"],
                max_frame_bytes=options["max_frame_bytes"],
                max_batch=options["max_batch"],
                parse_workers=max(0, options["parse_workers"]),
                sock=sock,
                checkpoints=checkpoints,
                idle_timeout=float(options["idle_timeout"]),
                max_connections_per_address=options["max_connections_per_address"],
                ssl_context=context,
            )

        if processes == 1:
            asyncio.run(run(listener_for(None, make_store), ready=self._ready))
            return
        self._serve_processes(processes, listener_for, make_store)

    def _ready(self, lst: MLLPListener) -> None:
        self._announce(lst.host, lst.port)

    def _announce(self, host: str, port: int) -> None:
        # Tests and scripts wait for this line.
        self.stdout.write(f"listening on {host}:{port}")
        if self._tls:
            self.stdout.write("MLLP over TLS: every monitor must present a certificate signed by the CA")
        self.stdout.flush()
        sys.stdout.flush()

    def _serve_processes(self, processes: int, listener_for: Any, make_store: Any) -> None:
        """Fork ``processes`` listeners on one listening socket (the kernel hands each new connection to
        one of them) and supervise them: SIGTERM/SIGINT stops them all; one that dies is started again."""
        sock = socket.create_server((self._host, self._port), backlog=4096)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        connections.close_all()  # each process opens its own database connection

        def start(k: int) -> int:
            pid = os.fork()
            if pid:
                return pid
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until run() handles it
                label = f"listener {k + 1} of {processes}"
                store = functools.partial(make_store, label)
                # One process copies the write-ahead log into the database file for all of them.
                asyncio.run(run(listener_for(sock, store, checkpoints=k == 0)))
            except BaseException:
                log.exception("monitor listener process %d failed", k + 1)
                code = 1
            finally:
                os._exit(code)

        children = {start(k): k for k in range(processes)}
        self._announce(self._host, port)
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

        def statistics(signum: int, frame: Any) -> None:
            for pid in children:  # each process prints its own line (FeedStats)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, statistics)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            k = children.pop(pid, None)
            if k is None:
                continue
            if not stopping:
                log.error("monitor listener process %d ended (status %d); starting it again", k + 1, status)
                time.sleep(1)
                children[start(k)] = k
        sock.close()
