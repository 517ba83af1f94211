"""Today's list on the home page (owned by the treatment app): who is booked in which chair today, per site."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core.access import CLINICIANS, PATIENT_REGISTRY

register = template.Library()


@register.inclusion_tag("treatment/_today.html", takes_context=True)
def treatment_today(context: dict[str, Any]) -> dict[str, Any]:
    """Per site the user covers (the on-duty site first), today's sessions in start order. Front desk sees
    names, times, chairs and whether the patient is in the chair; clinicians also the protocol and dose,
    a pending second-person dose check, and the button that opens a booked course session at the chair."""
    request = context.get("request")
    user = getattr(request, "user", None)
    role = getattr(user, "role", None)
    if user is None or role not in PATIENT_REGISTRY:
        return {"visible": False}
    from ketaclinic.accounts.services import covered_sites
    from ketaclinic.treatment import services

    sites = sorted(covered_sites(user), key=lambda s: (s.pk != user.on_duty_site_id, s.name))
    days = [(site, services.site_today(user=user, site=site, request=request)) for site in sites]
    return {
        "visible": True,
        "request": request,
        "days": [(site, rows) for site, rows in days if rows],
        "clinical": role in CLINICIANS,
    }
