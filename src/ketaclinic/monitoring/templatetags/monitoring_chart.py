"""The monitoring section of the patient chart (owned by the monitoring app): recent monitor readings and
the alerts raised on them. Clinicians only; the chart view has already audited the read of the chart."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core.access import CLINICIANS

register = template.Library()


@register.inclusion_tag("monitoring/_chart_section.html", takes_context=True)
def monitoring_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    request = context.get("request")
    role = getattr(getattr(request, "user", None), "role", None)
    out: dict[str, Any] = {"patient": patient, "request": request, "visible": False}
    if role not in CLINICIANS:
        return out
    from ketaclinic.monitoring.services import recent_for_patient

    sets, alerts = recent_for_patient(patient=patient)
    out.update(visible=True, sets=sets, alerts=alerts, zone=patient.site.time_zone)
    return out
