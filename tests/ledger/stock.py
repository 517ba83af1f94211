"""Stock for tests that give doses: every dose at the chair is drawn from a lot of the site's stock (issue 14),
so a test receives one first, through the same use case as the Controlled drugs page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

SUPPLIER = {
    "supplier_name": "Example Wholesale Inc.",
    "supplier_address": "1 Depot Road, Springfield, IL",
    "supplier_dea": "RE1234563",
}


def receive(
    user: Any,
    site: Any,
    *,
    drug: str = "ketamine",
    unit: str = "mL",
    strength: str = "10",
    quantity: str = "500",
    lot: str | None = None,
    product: str | None = None,
    containers: int | None = None,
    expiry_days: int = 400,
    ndc: str = "",
) -> Any:
    """A lot received today at ``site`` (ketamine 10 mg/mL by default; ``drug="esketamine"`` for devices)."""
    from ketaclinic.ledger import services

    if drug == "esketamine":
        unit, strength = "device", "28"
    names = {
        "mL": f"Ketamine HCl {strength} mg/mL",
        "device": "Spravato 28 mg",
        "tablet": f"Ketamine {strength} mg tablet",
    }
    today = timezone.localdate(timezone.now(), site.zone)
    data = {
        "drug": drug,
        "product": product or names[unit],
        "lot": lot or f"{drug[:3].upper()}-{strength}-{unit}",
        "ndc": ndc,
        "expiry": (today + timedelta(days=expiry_days)).isoformat(),
        "unit": unit,
        "mg_per_unit": strength,
        "quantity": quantity,
        "containers": str(containers or (quantity if unit != "mL" else 10)),
        "received_on": today.isoformat(),
        **SUPPLIER,
    }
    return services.receive(user=user, site=site, data=data).lot


def ketamine_ml(user: Any, site: Any, strength: str = "10", **kw: Any) -> Any:
    return receive(user, site, strength=strength, **kw)


def spravato(user: Any, site: Any, **kw: Any) -> Any:
    return receive(user, site, drug="esketamine", quantity=kw.pop("quantity", "30"), **kw)


def lot_for(session: Any, *, strength: str = "10", by: Any = None) -> Any:
    """A lot a dose of ``session`` may be drawn from (its site and drug), received when there is none yet:
    devices for esketamine, else ketamine solution of ``strength`` mg/mL."""
    from ketaclinic.ledger.models import StockLot

    unit = "device" if session.drug == "esketamine" else "mL"
    found = StockLot.objects.filter(site=session.site, drug=session.drug, unit=unit)
    if unit == "mL":
        found = found.filter(mg_per_unit=strength)
    return found.first() or receive(
        by or session.created_by, session.site, drug=session.drug, strength=strength
    )
