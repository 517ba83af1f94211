"""The consent section of the patient chart: each consent with its form version, route, dates, witness and
status, a link to what was signed, and the buttons to sign on the tablet or upload a signed paper form."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from ketaclinic.core.access import CLINICIANS

register = template.Library()


@register.inclusion_tag("consent/_chart_section.html", takes_context=True)
def consent_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    from ketaclinic.accounts.models import User
    from ketaclinic.consent import services

    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User) or user.role not in CLINICIANS:
        return {"show": False}
    today = timezone.localdate(timezone.now(), patient.site.zone)
    rows = [
        {"consent": c, "status": services.consent_status(c, today), "how": services.describe_method(c)}
        for c in services.patient_consents(user=user, patient=patient, request=request)
    ]
    return {
        "show": True,
        "patient": patient,
        "consents": rows,
        "templates": services.current_templates(patient.organization_id),
        "validity": services.validity_policy(),
    }
