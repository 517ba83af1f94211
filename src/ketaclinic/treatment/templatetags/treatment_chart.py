"""The treatment section of the patient chart (owned by the treatment app): the patient's calendar."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core.access import CLINICIANS, PATIENT_REGISTRY, PRESCRIBER

register = template.Library()


@register.inclusion_tag("treatment/_chart_section.html", takes_context=True)
def treatment_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    """Booked sessions per plan. Front desk sees dates, times and chairs only (no protocol or dose)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    role = getattr(user, "role", None)
    out: dict[str, Any] = {"patient": patient, "request": request, "visible": False}
    if user is None or role not in PATIENT_REGISTRY:
        return out
    from ketaclinic.treatment import services

    plans = services.patient_plans(user=user, patient=patient, request=request)
    out.update(
        visible=True,
        plans=plans,
        clinical=role in CLINICIANS,
        can_plan=role == PRESCRIBER,
        zone=patient.site.time_zone,
    )
    return out
