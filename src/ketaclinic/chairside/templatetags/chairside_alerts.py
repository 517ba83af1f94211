"""The critical-alert banners (chairside.critical_alerts): the session page's own banner as one inclusion
tag (``{% session_alert_banner session %}``, so the session view and template need no other change), and
``open_for``, how long an alert has been open in the board's wording (``42 min``, ``1 h 05 min``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

from ketaclinic.chairside.board import elapsed_text
from ketaclinic.clinical import vitals

register = template.Library()


@register.filter
def open_for(raised_at: datetime | None, now: datetime | None = None) -> str:
    if raised_at is None:
        return ""
    return elapsed_text(vitals.minutes_between(raised_at, now or timezone.now()))


@register.inclusion_tag("chairside/_alert_banner_session.html", takes_context=True)
def session_alert_banner(context: dict[str, Any], session: Any) -> dict[str, Any]:
    """At the top of the session page: this session's open critical alerts and this patient's open
    suicidality alerts (each with its acknowledge form), then the other chairs with critical alerts at
    the user's sites (links) and how many other patients' suicidality alerts are open. One audited read."""
    from ketaclinic.chairside.critical_alerts import CRITICAL, critical_alerts_for

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    found = critical_alerts_for(user=user, request=request, purpose="session page")
    # This session's own alerts whatever its status (the read above covers active sessions only).
    here = list(session.alerts.filter(severity=CRITICAL, acknowledged_at__isnull=True).order_by("raised_at"))
    patient_alerts = found.of_patient(session.patient_id)
    elsewhere = found.other_sessions(session.pk)
    other_patients = len(found.other_patients(session.patient_id))
    return {
        "show": bool(here or patient_alerts or elsewhere or other_patients),
        "session": session,
        "here": here,
        "patient_alerts": patient_alerts,
        "elsewhere": elsewhere,
        "other_patients": other_patients,
        "csrf_token": context.get("csrf_token"),
        "next": f"/sessions/{session.pk}/",
    }
