"""Inventories of a site's controlled-substance stock (21 CFR 1304.11; security.md §4).

What security.md §4 asks: an initial inventory on day one, then a **biennial** one within 2 years of the
previous; record the date and whether it was taken at opening or close of business; keep it printed at the
location (and, with every record, at least 2 years: 1304.04). Schedule III opened containers may be
estimated, but several states require exact counts, so the app takes measured mL: every quantity here is
counted or measured, never estimated.

An inventory counts every lot on hand at the site (a balance above 0 in the register, expired lots
included: they are on hand until destroyed) on one date, by two people — the one recording and a second
who re-authenticates (accounts/cosign.py) — and stores each lot's count as a register COUNT entry pointing
to the ``Inventory`` row (so the counts are hash-chained with the rest of the register). A count that differs
from the register needs its reason and notifies the administrators, as any count does. A site with nothing
on hand records that fact (an inventory without lines). The printable form is ``reports.inventory_pdf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.cosign import Signature
from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.ledger.models import CountTime, Inventory, InventoryKind, LedgerEntry, StockLot
from ketaclinic.ledger.services import (
    CATEGORY,
    HANDLERS,
    READERS,
    Counted,
    LedgerError,
    LedgerInputError,
    StockLine,
    _require,
    balance,
    book_count,
    check_count,
    witness_signs,
)

#: security.md §4 (21 CFR 1304.11): the next inventory within 2 years of the previous one.
BIENNIAL_YEARS = 2
INVENTORY_SOURCE = (
    "21 CFR 1304.11 (security.md §4): an initial inventory, then a biennial one within 2 years of the "
    "previous; the date and whether taken at opening or close of business; kept printed at the location"
)


@dataclass(frozen=True)
class LotCount:
    """One lot's line as typed: the quantity counted (in the lot's unit), the containers on hand (sealed
    and opened), and why it differs from the register, if it does."""

    counted: Any
    containers: Any = None
    reason: str = ""


@dataclass(frozen=True)
class InventoryStatus:
    last: Inventory | None
    due_by: date | None  # the last one's date + 2 years; None before the initial inventory

    def overdue(self, today: date) -> bool:
        return self.due_by is not None and today > self.due_by


def _plus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def status(site: Site) -> InventoryStatus:
    """The site's last inventory and when the next is due (no patient data: not audited)."""
    last = Inventory.objects.filter(site=site).order_by("-taken_on", "-recorded_at").first()
    return InventoryStatus(last, _plus_years(last.taken_on, BIENNIAL_YEARS) if last else None)


def lots_on_hand(site: Site) -> list[StockLine]:
    """Every lot the register says is on hand at the site (expired ones too), by drug, product and lot."""
    lots = StockLot.objects.filter(site=site).order_by("drug", "product", "expiry", "lot")
    lines = [StockLine(lot, balance(lot)) for lot in lots]
    return [line for line in lines if line.balance > 0]


def inventories(*, user: User, site: Site) -> list[Inventory]:
    _require(user, READERS, "read controlled-substance inventories")
    if site not in covered_sites(user):
        raise LedgerError("No such site.")
    return list(Inventory.objects.filter(site=site).select_related("taken_by", "witness"))


def get_inventory(*, user: User, inventory_id: Any) -> tuple[Inventory, list[LedgerEntry]]:
    """An inventory of one of the user's sites and its counts (lots, quantities: no patient data)."""
    _require(user, READERS, "read controlled-substance inventories")
    row = (
        Inventory.objects.filter(pk=inventory_id, organization_id=user.org_id)
        .select_related("site", "taken_by", "witness", "organization")
        .first()
    )
    if row is None or row.site not in covered_sites(user):
        raise LedgerError("No such inventory.")
    counts = list(
        row.counts.order_by("lot__drug", "lot__product", "lot__expiry", "lot__lot").select_related("lot")
    )
    return row, counts


def take_inventory(
    *,
    user: User,
    site: Site,
    kind: str,
    count_time: str,
    counts: Mapping[str, LotCount],
    witness: Signature | None,
    request: HttpRequest | None = None,
) -> Inventory:
    """Count every lot on hand at ``site`` today, by two people. ``counts`` maps each lot's id (text) to its
    line; every lot on hand needs one, and a line for a lot that is not on hand is refused (nothing is
    dropped). Errors are keyed ``<lot id>.counted`` / ``.containers`` / ``.reason`` for the lines."""
    _require(user, HANDLERS, "take a controlled-substance inventory")
    if site not in covered_sites(user):
        raise LedgerError("No such site.")
    errors: dict[str, str] = {}
    today = timezone.localdate(timezone.now(), site.zone)
    previous = status(site).last
    if kind not in InventoryKind.values:
        errors["kind"] = "choose the initial inventory or a biennial one"
    elif kind == InventoryKind.INITIAL and previous is not None:
        errors["kind"] = (
            f"the initial inventory is behind you (an inventory was taken on {previous.taken_on.isoformat()}): "
            "this one is biennial"
        )
    if count_time not in CountTime.values:
        errors["count_time"] = "say whether it is taken at opening or at close of business"
    elif Inventory.objects.filter(site=site, taken_on=today, count_time=count_time).exists():
        errors["count_time"] = f"an inventory was already taken today at {CountTime(count_time).label}"
    lines = lots_on_hand(site)
    on_hand = {str(line.lot.pk) for line in lines}
    for key in counts:
        if key not in on_hand:
            errors[f"{key}.counted"] = "is not a lot on hand at this site: receive or correct it on its page"
    checked: list[Counted] = []
    for line in lines:
        key = str(line.lot.pk)
        given = counts.get(key)
        if given is None:
            errors[f"{key}.counted"] = f"is required: count lot {line.lot.lot}"
            continue
        one = check_count(
            lot=line.lot,
            counted=given.counted,
            containers=given.containers,
            reason=given.reason,
            errors=errors,
            prefix=f"{key}.",
            containers_required=True,
        )
        if one is not None:
            checked.append(one)
    signer = witness_signs(
        witness, user, errors, field="witness", purpose="second person taking the inventory", site=site
    )
    if errors:
        raise LedgerInputError(errors)
    assert signer is not None
    now = timezone.now().replace(microsecond=0)
    row = Inventory.objects.create(
        organization_id=site.organization_id,
        site=site,
        kind=kind,
        taken_on=today,
        count_time=count_time,
        taken_by=user,
        witness=signer,
        witness_signed_at=now,
        recorded_at=now,
    )
    for one in checked:
        book_count(
            user=user,
            count=one,
            count_time=count_time,
            witness=signer,
            at=now,
            inventory_id=row.pk,
            request=request,
        )
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        organization=site.organization,
        object_type="Inventory",
        object_id=row.pk,
        request=request,
        after={
            "kind": kind,
            "site": site.code,
            "taken_on": today.isoformat(),
            "count_time": count_time,
            "lots": len(checked),
            "differences": sum(1 for one in checked if one.difference),
            "witness": signer.get_username(),
        },
    )
    return row
