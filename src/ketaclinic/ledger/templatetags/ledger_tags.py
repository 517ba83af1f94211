"""Quantities as staff write them (100, 0.7) on the controlled-drug pages, and the session page's card."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from ketaclinic.clinical.stock import words
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


@register.filter
def amount(value: Any, unit: str) -> str:
    """``0.7 mL``, ``1 device``, ``30 devices``."""
    return "" if value is None else words(Decimal(value), unit)


@register.filter
def qty_before(counted: Any, change: Any) -> str:
    """What the register held before a count: the count minus the difference it booked."""
    return _qty(Decimal(counted) - Decimal(change))


@register.inclusion_tag("ledger/_session_card.html", takes_context=True)
def ledger_session_card(context: dict[str, Any], session: Any) -> dict[str, Any]:
    """On the session page: the controlled-drug stock drawn for this session (register entries, each naming
    its dose) and, for a dose whose draw was reversed by a correction, the form to record it again. Doses
    draw from stock in the dose form itself."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status
    from ketaclinic.core.access import CLINICIANS
    from ketaclinic.ledger.draws import undrawn_doses
    from ketaclinic.ledger.models import LedgerEntry

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or getattr(user, "role", None) not in CLINICIANS:
        return {"visible": False}
    entries = list(
        LedgerEntry.objects.filter(session=session)
        .order_by("seq")
        .select_related("lot", "witness", "corrected_by", "administration")
    )
    can_record = session.status in (*ACTIVE_STATUSES, Status.DISCHARGED)
    return {
        "visible": True,
        "request": request,
        "session": session,
        "entries": entries,
        "undrawn": undrawn_doses(session) if can_record else [],
        "witnesses": context.get("colleagues", []),
    }
