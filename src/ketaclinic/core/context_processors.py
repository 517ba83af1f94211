from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ketaclinic.core.access import ROLE_LABELS


def clinic(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = getattr(user, "role", "") if user is not None and user.is_authenticated else ""
    return {"role": role, "role_label": ROLE_LABELS.get(role, "")}
