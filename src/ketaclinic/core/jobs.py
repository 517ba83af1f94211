"""A database-table job queue. A worker claims a job with a conditional UPDATE, so no broker is needed
and two workers never run the same job (the healthchecks pattern, design.md)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketaclinic.core.models import Job

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


def run_due_jobs(limit: int = 100) -> int:
    worker = f"{socket.gethostname()}:{os.getpid()}"
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
                Job.objects.filter(pk=job.pk).update(finished_at=timezone.now(), attempts=job.attempts + 1)
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


RECURRING = ("chairside.sweep", "measures.sweep")


def ensure_recurring() -> None:
    """Make sure each recurring job has one pending run (the worker calls this at start)."""
    for kind in RECURRING:
        if kind in HANDLERS and not Job.objects.filter(kind=kind, finished_at__isnull=True).exists():
            enqueue(kind, {"repeat": True})


@handler("audit.anchor")
def _anchor(payload: dict[str, Any]) -> None:
    from ketaclinic.audit.services import anchor_head

    anchor_head()
