"""Background work for sessions: escalate unacknowledged alerts and raise overdue-reading alerts."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ketaclinic.core import jobs


@jobs.handler("chairside.sweep")
def sweep(payload: dict[str, Any]) -> None:
    """Every minute (core.jobs.RECURRING): overdue readings on active sessions, escalation of unacknowledged alerts; re-enqueues itself."""
    from ketaclinic.chairside import services
    from ketaclinic.chairside.models import ACTIVE_STATUSES, TreatmentSession

    for session in TreatmentSession.objects.filter(status__in=ACTIVE_STATUSES):
        services.check_overdue(session)
    services.escalate_unacknowledged()
    if payload.get("repeat", True):
        jobs.enqueue(
            "chairside.sweep", {"repeat": True}, run_after=timezone.now() + jobs.RECURRING["chairside.sweep"]
        )
