"""The assessment section of the patient chart (owned by the assessment app)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("assessment/_chart_section.html", takes_context=True)
def assessment_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    return {"patient": patient, "request": context.get("request")}
