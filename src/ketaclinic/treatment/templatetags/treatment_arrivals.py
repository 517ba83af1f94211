"""The patient's arrival, shown to the chair's nurse on the session page (treatment/arrivals.py)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def arrival_note(session: Any) -> SafeString:
    """ "· arrived 09:12" (site time) with who marked it, or nothing when the arrival was not marked."""
    from ketaclinic.treatment.arrivals import arrival_of

    arrival = arrival_of(session)
    if arrival is None:
        return mark_safe("")
    at = arrival.at.astimezone(session.site.zone)
    return format_html(
        '· <span class="tag arrived" id="arrived" title="marked by {}; not a clinical check-in">arrived {}</span>',
        arrival.recorded_by,
        f"{at:%H:%M}",
    )
