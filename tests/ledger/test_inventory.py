"""The inventory of a site's controlled substances (21 CFR 1304.11; security.md §4): every lot on hand counted
on one date, at opening or close of business, by two people; stored in the register; printed with what the
record needs; the next one due within two years; never edited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.utils import timezone
from tests.assessment.test_screening_overrides import token_from
from tests.chairside.test_report_pdf import pdf_text
from tests.conftest import sign
from tests.ledger.stock import receive, spravato

from ketaclinic.core.models import Notification
from ketaclinic.ledger import inventory, services
from ketaclinic.ledger.models import Inventory, LedgerEntry


def _token(client: Any, path: str) -> str:
    return token_from(client.get(path).content.decode())


def test_an_inventory_counts_every_lot_on_hand_by_two_people(
    stocked: Any, nurse: Any, prescriber: Any, admin: Any, site: Any
) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=60)):
        expired = receive(nurse, site, strength="10", lot="OLD-10", quantity="20", expiry_days=30)
    devices = spravato(nurse, site, lot="ESK-1", quantity="12")
    empty = receive(nurse, site, strength="100", lot="EMPTY", quantity="5", containers=1)
    services.report_loss(user=nurse, lot=empty, quantity="5", reason="Vial broken on receipt")
    assert [line.lot for line in inventory.lots_on_hand(site)] == [devices, expired, stocked]  # not EMPTY
    counts = {
        str(stocked.pk): inventory.LotCount("99.5", 10, "0.5 mL left in the opened vial was spilled"),
        str(devices.pk): inventory.LotCount("12", 12),
    }

    def take(**kw: Any) -> Any:
        args = {
            "kind": "initial",
            "count_time": "opening",
            "counts": counts,
            "witness": sign(prescriber),
        } | kw
        return inventory.take_inventory(user=nurse, site=site, **args)

    with pytest.raises(services.LedgerInputError) as err:
        take(witness=None)
    assert (
        err.value.errors[f"{expired.pk}.counted"] == "is required: count lot OLD-10"
    )  # expired: still on hand
    assert "choose the nurse or prescriber who signs" in err.value.errors["witness"]
    with pytest.raises(services.LedgerInputError) as extra:
        take(
            counts=counts
            | {str(expired.pk): inventory.LotCount("20", 2), str(empty.pk): inventory.LotCount("1", 1)}
        )
    assert "is not a lot on hand at this site" in extra.value.errors[f"{empty.pk}.counted"]
    full = counts | {str(expired.pk): inventory.LotCount("20", "")}
    with pytest.raises(services.LedgerInputError) as boxes:
        take(counts=full)
    assert "how many containers" in boxes.value.errors[f"{expired.pk}.containers"]
    no_reason = full | {
        str(expired.pk): inventory.LotCount("20", 2),
        str(stocked.pk): inventory.LotCount("99.5", 10),
    }
    with pytest.raises(services.LedgerInputError) as why:
        take(counts=no_reason)
    assert "99.5 mL counted, 100 mL expected" in why.value.errors[f"{stocked.pk}.reason"]
    assert not Inventory.objects.exists() and not LedgerEntry.objects.filter(kind="count").exists()

    row = take(counts=full | {str(expired.pk): inventory.LotCount("20", 2)})
    assert (row.kind, row.count_time, row.taken_by, row.witness) == ("initial", "opening", nurse, prescriber)
    lines = {e.lot.lot: e for e in row.counts.all()}
    assert set(lines) == {"OLD-10", "K2026A", "ESK-1"}
    assert (lines["K2026A"].counted, lines["K2026A"].quantity, lines["K2026A"].containers) == (
        99.5,
        -0.5,
        10,
    )
    assert all(e.witness == prescriber and e.count_time == "opening" for e in lines.values())
    assert services.balance(stocked) == 99.5 and services.verify_chain(nurse.org_id) is None
    # Only the difference reaches the administrators.
    assert Notification.objects.filter(recipient=admin, kind="controlled-substance-count").count() == 1
    state = inventory.status(site)
    assert state.last == row and state.due_by == row.taken_on.replace(year=row.taken_on.year + 2)
    with pytest.raises(services.LedgerInputError) as again:
        take(count_time="opening")
    assert "the initial inventory is behind you" in again.value.errors["kind"]
    assert "already taken today at opening of business" in again.value.errors["count_time"]
    # Never edited or deleted.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Inventory.objects.filter(pk=row.pk).update(count_time="closing")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Inventory.objects.filter(pk=row.pk)._raw_delete("default")  # past Django's own protection


def test_nothing_on_hand_is_recorded_as_such_and_the_biennial_follows(
    nurse: Any, prescriber: Any, site: Any
) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=800)):
        first = inventory.take_inventory(
            user=nurse, site=site, kind="initial", count_time="opening", counts={}, witness=sign(prescriber)
        )
    assert first.counts.count() == 0
    assert inventory.status(site).overdue(timezone.localdate())  # 800 days: past the 2 years
    second = inventory.take_inventory(
        user=nurse, site=site, kind="biennial", count_time="closing", counts={}, witness=sign(prescriber)
    )
    assert inventory.status(site).last == second and not inventory.status(site).overdue(timezone.localdate())


def test_the_pages_take_show_and_print_it(
    stocked: Any,
    nurse: Any,
    prescriber: Any,
    admin: Any,
    front_desk: Any,
    outsider: Any,
    site: Any,
    sign_in: Any,
    tmp_path: Any,
) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    stock = client.get(f"/ledger/?site={site.pk}").content.decode()
    assert "No inventory has been recorded at Main Street" in stock
    page = client.get(f"/ledger/inventories/?site={site.pk}").content.decode()
    assert "take the initial inventory" in page and "K2026A" in page and "100 mL" in page
    token = _token(client, f"/ledger/inventories/?site={site.pk}")
    key = str(stocked.pk)
    form = {
        "csrfmiddlewaretoken": token,
        "site": site.pk,
        "kind": "initial",
        "count_time": "closing",
        f"counted_{key}": "98",
        f"containers_{key}": "10",
        f"reason_{key}": "",
    }
    refused = client.post("/ledger/inventories/take/", form)
    text = refused.content.decode()
    assert refused.status_code == 422 and "reason the count differs from the register" in text
    assert "choose the nurse or prescriber who signs" in text and 'value="98"' in text  # kept
    witness = sign(prescriber)
    signed = form | {
        f"reason_{key}": "2 mL unaccounted for: reported to the pharmacist in charge",
        "witness": prescriber.pk,
        "witness_password": witness.password,
        "witness_code": witness.code,
    }
    done = client.post("/ledger/inventories/take/", signed, follow=True)
    row = Inventory.objects.get()
    assert done.redirect_chain[-1][0] == f"/ledger/inventories/{row.pk}/"
    shown = done.content.decode()
    assert (
        "Initial inventory: Main Street" in shown and "close of business" in shown and "Prescriber1" in shown
    )
    assert "2 mL unaccounted for" in shown
    due = row.taken_on.replace(year=row.taken_on.year + 2).isoformat()
    assert f"due by <strong>{due}</strong>" in client.get(f"/ledger/?site={site.pk}").content.decode()
    pdf = client.get(f"/ledger/inventories/{row.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and row.taken_on.isoformat() in pdf["Content-Disposition"]
    printed = pdf_text(pdf.content, tmp_path)
    for words in (
        "Controlled-substance inventory",
        "Initial inventory",
        "Owner Clinics. Registrant: Main Street",
        f"Taken on {row.taken_on.isoformat()} at the close of business",
        "Schedule III",
        "K2026A",
        "0409-2051-05",
        "98 mL",
        "21 CFR 1304.11",
        "not estimated",
        "Prescriber1 (prescriber1)",
        f"Next inventory due by {due}",
    ):
        assert words in printed, words
    # Who may: administrators read and print, the front desk does not, another clinic sees nothing.
    reader = sign_in(Client(), admin)
    assert reader.get(f"/ledger/inventories/{row.pk}/pdf/").status_code == 200
    assert reader.post("/ledger/inventories/take/", {"site": site.pk}).status_code == 403
    assert sign_in(Client(), front_desk).get(f"/ledger/inventories/?site={site.pk}").status_code == 403
    assert sign_in(Client(), outsider).get(f"/ledger/inventories/{row.pk}/").status_code == 404
