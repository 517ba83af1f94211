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
