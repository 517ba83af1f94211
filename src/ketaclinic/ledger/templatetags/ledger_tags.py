"""Quantities as staff write them (100, 0.7) on the controlled-drug pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from ketaclinic.ledger.services import qty as _qty

register = template.Library()


@register.filter
def qty(value: Any) -> str:
    return "" if value is None else _qty(Decimal(value))


@register.filter
def registrant(site: Any) -> str:
    """The site as the register's registrant: name, address, phone, DEA registration."""
    from ketaclinic.ledger.reports import registrant_text

    return registrant_text(site)


@register.inclusion_tag("ledger/_session_card.html", takes_context=True)
def ledger_session_card(context: dict[str, Any], session: Any) -> dict[str, Any]:
    """On the session page: the controlled-drug stock drawn for this session (register entries) and the
    form to record a draw, what was given and what was wasted, from a lot of the session's drug at its site."""
    from ketaclinic.accounts.models import User
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status
    from ketaclinic.core.access import CLINICIANS
    from ketaclinic.ledger import services
    from ketaclinic.ledger.models import LedgerEntry

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or getattr(user, "role", None) not in CLINICIANS:
        return {"visible": False}
    entries = list(
        LedgerEntry.objects.filter(session=session)
        .order_by("seq")
        .select_related("lot", "witness", "corrected_by")
    )
    lots = [
        line
        for line in services.stock(user=user, site=session.site)
        if line.lot.drug == session.drug and line.balance > 0
    ]
    witnesses = (
        User.objects.filter(organization_id=user.organization_id, role__in=CLINICIANS, is_active=True)
        .exclude(pk=user.pk)
        .order_by("last_name", "first_name")
    )
    return {
        "visible": True,
        "request": request,
        "session": session,
        "entries": entries,
        "lots": lots,
        "witnesses": witnesses,
        "can_record": session.status in (*ACTIVE_STATUSES, Status.DISCHARGED),
    }
