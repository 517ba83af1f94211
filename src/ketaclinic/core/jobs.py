"""A database-table job queue. A worker claims a job with a conditional UPDATE, so no broker is needed
and two workers never run the same job (the healthchecks pattern, design.md).

Who runs it: ``ketaclinic serve`` runs ``work`` in a background thread (``JobThread``) unless started
with ``--no-sweeps``, so one process is a whole clinic and the safety sweeps cannot be forgotten;
``ketaclinic worker`` runs the same loop as its own process (a clinic network, or beside
``serve --no-sweeps``). Both may run at once: the claim hands each job to one of them.

Each recurring sweep records a ``Heartbeat`` when it finishes; ``sweeps_status`` says whether every
sweep has run within ``STALE_AFTER_INTERVALS`` of its interval (the home page warns staff when not).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from ketaclinic.core.models import Heartbeat, Job

log = logging.getLogger("ketaclinic.jobs")
HANDLERS: dict[str, Callable[[dict[str, Any]], None]] = {}
MAX_ATTEMPTS = 5


def handler(kind: str) -> Callable[[Callable[[dict[str, Any]], None]], Callable[[dict[str, Any]], None]]:
    def register(func: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        HANDLERS[kind] = func
        return func

    return register


def enqueue(kind: str, payload: dict[str, Any] | None = None, *, run_after: datetime | None = None) -> Job:
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}")
    return Job.objects.create(kind=kind, payload=payload or {}, run_after=run_after or timezone.now())


def _claim(worker: str) -> Job | None:
    now = timezone.now()
    candidate = (
        Job.objects.filter(finished_at__isnull=True, claimed_at__isnull=True, run_after__lte=now)
        .order_by("run_after", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    if candidate is None:
        return None
    claimed = Job.objects.filter(pk=candidate, claimed_at__isnull=True).update(
        claimed_at=now, claimed_by=worker
    )
    return Job.objects.get(pk=candidate) if claimed == 1 else None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def run_due_jobs(limit: int = 100) -> int:
    worker = worker_name()
    ran = 0
    while ran < limit:
        with transaction.atomic():
            job = _claim(worker)
        if job is None:
            return ran
        func = HANDLERS.get(job.kind)
        try:
            if func is None:
                raise LookupError(f"no handler for {job.kind!r}")
            with transaction.atomic():
                func(job.payload)
                finished = timezone.now()
                Job.objects.filter(pk=job.pk).update(finished_at=finished, attempts=job.attempts + 1)
                if job.kind in RECURRING:
                    Heartbeat.objects.update_or_create(
                        name=job.kind, defaults={"beat_at": finished, "ran_by": worker}
                    )
        except Exception as exc:  # a failed job is retried later, never lost
            log.exception("job %s #%s failed", job.kind, job.pk)
            attempts = job.attempts + 1
            update: dict[str, Any] = {
                "attempts": attempts,
                "error": f"{type(exc).__name__}: {exc}"[:2000],
                "claimed_at": None,
                "claimed_by": "",
            }
            if attempts >= MAX_ATTEMPTS:
                update["finished_at"] = timezone.now()
            else:
                update["run_after"] = timezone.now() + timedelta(seconds=30 * 2**attempts)
            Job.objects.filter(pk=job.pk).update(**update)
        ran += 1
    return ran


# The recurring sweeps and how often each runs (each handler re-enqueues itself this far ahead).
RECURRING: dict[str, timedelta] = {
    "chairside.sweep": timedelta(minutes=1),  # overdue readings, escalation of session alerts
    "measures.sweep": timedelta(minutes=5),  # escalation of suicidality and mania alerts
}
# A sweep counts as stopped when it has not finished for this many of its intervals (an operational
# default, not a clinical threshold: one missed run can be a long job or a restart, three is a stop).
STALE_AFTER_INTERVALS = 3
SWEEP_LABELS = {
    "chairside.sweep": "overdue readings and unacknowledged session alerts",
    "measures.sweep": "unacknowledged suicidality and mania alerts",
}


def ensure_recurring() -> None:
    """Make sure each recurring job has one pending run. The loop calls this at start and every
    ``ENSURE_EVERY``, so a sweep whose job failed for good (``MAX_ATTEMPTS``) starts again by itself.
    A running sweep counts as pending (its row is unfinished until it has queued its next run)."""
    for kind in RECURRING:
        if kind in HANDLERS and not Job.objects.filter(kind=kind, finished_at__isnull=True).exists():
            enqueue(kind, {"repeat": True})


@dataclass(frozen=True)
class SweepState:
    kind: str
    label: str
    interval: timedelta
    last_run_at: datetime | None
    ran_by: str
    stale: bool

    @property
    def interval_minutes(self) -> int:
        return int(self.interval.total_seconds() // 60)


@dataclass(frozen=True)
class SweepsStatus:
    sweeps: tuple[SweepState, ...]

    @property
    def running(self) -> bool:
        return not any(s.stale for s in self.sweeps)

    @property
    def stopped(self) -> tuple[SweepState, ...]:
        return tuple(s for s in self.sweeps if s.stale)

    @property
    def last_run_at(self) -> datetime | None:
        """The most recent run of any sweep (None: never ran on this database)."""
        times = [s.last_run_at for s in self.sweeps if s.last_run_at is not None]
        return max(times) if times else None


def sweeps_status(now: datetime | None = None) -> SweepsStatus:
    """Whether each recurring sweep finished within ``STALE_AFTER_INTERVALS`` of its interval."""
    now = now or timezone.now()
    beats = {b.name: b for b in Heartbeat.objects.filter(name__in=list(RECURRING))}
    states = []
    for kind, interval in RECURRING.items():
        beat = beats.get(kind)
        stale = beat is None or now - beat.beat_at > STALE_AFTER_INTERVALS * interval
        states.append(
            SweepState(
                kind=kind,
                label=SWEEP_LABELS.get(kind, kind),
                interval=interval,
                last_run_at=beat.beat_at if beat is not None else None,
                ran_by=beat.ran_by if beat is not None else "",
                stale=stale,
            )
        )
    return SweepsStatus(tuple(states))


ENSURE_EVERY = timedelta(minutes=1)
log_loop = logging.getLogger("ketaclinic.jobs.loop")


def work(
    *, interval: float = 2.0, stop: threading.Event | None = None, on_ran: Callable[[int], None] | None = None
) -> None:
    """Run due jobs until ``stop`` is set (for ever without one): the loop of ``ketaclinic worker`` and of
    ``serve``'s background thread. A database error (the server restarting, a locked SQLite file) is
    logged and retried on the next round with a fresh connection: the loop never dies quietly."""
    stop = stop or threading.Event()
    ensured_at: datetime | None = None
    while not stop.is_set():
        try:
            now = timezone.now()
            if ensured_at is None or now - ensured_at >= ENSURE_EVERY:
                with transaction.atomic():
                    ensure_recurring()
                ensured_at = now
            ran = run_due_jobs()
            if ran and on_ran is not None:
                on_ran(ran)
        except Exception:
            log_loop.exception("background jobs: round failed; retrying in %.0f s", interval)
            connection.close()
        finally:
            close_old_connections()
        stop.wait(interval)


class JobThread(threading.Thread):
    """``work`` in a daemon thread of the web process (``ketaclinic serve``). ``stop()`` lets the round in
    progress finish its transaction, then returns."""

    def __init__(self, *, interval: float = 2.0) -> None:
        super().__init__(name="ketaclinic-jobs", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            work(interval=self.interval, stop=self.stopping)
        finally:
            connection.close()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.join(timeout)


@handler("audit.anchor")
def _anchor(payload: dict[str, Any]) -> None:
    from ketaclinic.audit.services import anchor_head

    anchor_head()
