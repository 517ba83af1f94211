"""The chairside section of the patient chart (owned by the chairside app)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("chairside/_chart_section.html", takes_context=True)
def chairside_chart_section(context: dict[str, Any], patient: Any) -> dict[str, Any]:
    return {"patient": patient, "request": context.get("request")}
