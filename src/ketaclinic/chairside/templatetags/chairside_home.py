"""The REMS line on the home page (owned by the chairside app): esketamine monitoring forms due or overdue."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("chairside/_home_rems.html", takes_context=True)
def rems_due(context: dict[str, Any]) -> dict[str, Any]:
    """How many Patient Monitoring Forms are overdue and how many fall due within the queue's window, for
    the staff who submit them (clinical.md §2.4: within 7 days of the session); no names, a link to the
    queue. Reading the queue is audited (rems_services.rems_queue)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    from ketaclinic.chairside import rems_services

    if user is None or getattr(user, "role", None) not in rems_services.SUBMITTERS:
        return {"visible": False}
    items = rems_services.rems_queue(user=user, request=request)
    overdue = sum(1 for i in items if i.overdue)
    return {"visible": bool(items), "overdue": overdue, "due": len(items) - overdue}
