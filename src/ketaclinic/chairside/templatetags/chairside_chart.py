"""The treatment-session section of the patient chart: the patient's sessions and a form to schedule one."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core.access import CLINICIANS

register = template.Library()


@register.inclusion_tag("chairside/_chart_section.html", takes_context=True)
def chairside_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    from ketaclinic.accounts.models import Chair
    from ketaclinic.clinical.protocol_library import PROTOCOLS

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or getattr(user, "role", None) not in CLINICIANS:
        return {"show": False}
    return {
        "show": True,
        "patient": patient,
        "sessions": patient.treatment_sessions.order_by("-scheduled_at")[:20],
        "protocols": sorted(PROTOCOLS.values(), key=lambda p: p.name),
        "chairs": Chair.objects.filter(site=patient.site, active=True),
        "csrf_token": context.get("csrf_token"),
    }
