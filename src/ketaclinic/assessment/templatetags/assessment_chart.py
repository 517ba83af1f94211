"""The assessment section of the patient chart (owned by the assessment app)."""

from __future__ import annotations

from typing import Any

from django import template

from ketaclinic.core.access import CLINICIANS

register = template.Library()


@register.inclusion_tag("assessment/_chart_section.html", takes_context=True)
def assessment_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    """Clinicians see the intake status and the latest screening decision; front desk sees nothing here."""
    request = context.get("request")
    user = getattr(request, "user", None)
    out: dict[str, Any] = {"patient": patient, "request": request, "clinical": False}
    if user is None or getattr(user, "role", None) not in CLINICIANS:
        return out
    from ketaclinic.assessment import services
    from ketaclinic.audit import services as audit
    from ketaclinic.audit.models import Action
    from ketaclinic.clinical.conditions import DRUG_LABELS, Drug

    intake = services.latest_intake(patient)
    screening = services.latest_screening(patient)
    decisions = []
    if screening is not None:
        decisions = [
            {"label": DRUG_LABELS[Drug(k)], "decision": services.DECISION_LABELS[v]}
            for k, v in sorted(screening.decisions.items())
        ]
    if intake is not None:
        audit.record(
            user=user,
            action=Action.QUERY,
            category=services.CATEGORY,
            patient=patient,
            object_type="Intake",
            object_id=intake.pk,
            request=request,
            detail="chart summary",
        )
    out.update(
        clinical=True,
        intake=intake,
        screening=screening,
        decisions=decisions,
        stale=services.is_stale(screening) if screening is not None else False,
    )
    return out
