"""Issue 15 Low: a lot that expired in 2000, or dated 9999, or received in year 1, is refused at receipt
with the field named; nothing enters the register."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from tests.ledger.stock import SUPPLIER

from ketaclinic.ledger import services
from ketaclinic.ledger.models import StockLot


def _data(site: Any, **extra: str) -> dict[str, str]:
    today = timezone.localdate(timezone.now(), site.zone)
    return {
        "drug": "ketamine",
        "product": "Ketamine HCl 10 mg/mL",
        "lot": "K-2000",
        "ndc": "",
        "expiry": (today + timedelta(days=400)).isoformat(),
        "unit": "mL",
        "mg_per_unit": "10",
        "quantity": "500",
        "containers": "10",
        "received_on": today.isoformat(),
        **SUPPLIER,
    } | extra


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("expiry", "2000-06-30", "has passed"),
        ("expiry", "9999-12-31", "longer than any product keeps"),
        ("received_on", "0001-01-01", "before 2000-01-01"),
    ],
)
def test_an_implausible_lot_is_refused_at_receipt(
    nurse: Any, site: Any, field: str, value: str, words: str
) -> None:
    with pytest.raises(services.LedgerInputError) as refused:
        services.receive(user=nurse, site=site, data=_data(site, **{field: value}))
    assert words in refused.value.errors[field]
    assert not StockLot.objects.exists()
