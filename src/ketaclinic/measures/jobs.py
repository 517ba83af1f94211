"""Background jobs of the rating-scale app (run by the job loop of ``ketaclinic serve`` or ``ketaclinic worker``)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ketaclinic.core import jobs


@jobs.handler("measures.sweep")
def sweep(payload: dict[str, Any]) -> None:
    """Every 5 minutes (core.jobs.RECURRING): widen safety alerts left unacknowledged (services.escalate_safety_alerts)."""
    from ketaclinic.measures.services import escalate_safety_alerts

    escalate_safety_alerts()
    if payload.get("repeat", True):
        jobs.enqueue(
            "measures.sweep", {"repeat": True}, run_after=timezone.now() + jobs.RECURRING["measures.sweep"]
        )


@jobs.handler("measures.pre_session_link")
def pre_session_link(payload: dict[str, Any]) -> None:
    from ketaclinic.measures.services import send_pre_session_link

    if payload.get("plan_session_id"):
        from ketaclinic.treatment.models import PlanSession

        planned = PlanSession.objects.filter(pk=payload["plan_session_id"]).first()
        # Skip a session that was missed, cancelled or moved since (moving it queues a new link).
        from datetime import datetime

        queued_for = datetime.fromisoformat(str(payload.get("session_start")))
        if planned is None or planned.status != "booked" or planned.start != queued_for:
            return
    send_pre_session_link(
        patient_id=payload["patient_id"],
        instruments=list(payload["instruments"]),
        purpose=str(payload.get("purpose", "before session")),
    )
