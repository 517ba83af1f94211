from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def changes(raw: str) -> list[tuple[str, Any]]:
    """Render an audit before/after JSON object as (field, value) pairs for a human."""
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return [("", raw)]
    if not isinstance(data, dict):
        return [("", data)]
    return [
        (key.replace("_", " "), "—" if value in ("", None) else value) for key, value in sorted(data.items())
    ]
