"""Controlled-substance stock and its register (security.md §4).

A ``StockLot`` is one lot of one product at one site, counted in its unit (mL of a vial's solution, nasal
devices, tablets). Every change to a lot's balance is a ``LedgerEntry``: never edited or deleted (database
triggers refuse it), numbered per organization and hash-chained like the audit log; a mistake is undone by
a correction entry that reverses it, with a reason.

A use is tied to the dose it was drawn for (``administration``: the dose at the chair records its draw in
the same transaction); a count taken as part of an inventory (21 CFR 1304.11: the initial one and then every
two years) points to its ``Inventory``, which records the date, opening or close of business, and the two
people who took it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Unit(models.TextChoices):
    ML = "mL", "mL"
    DEVICE = "device", "nasal spray device"
    TABLET = "tablet", "tablet"


class StockLot(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    drug = models.CharField(max_length=12, choices=[("ketamine", "Ketamine"), ("esketamine", "Esketamine")])
    product = models.CharField(
        max_length=200, help_text="Finished form, e.g. 'Ketamine HCl 50 mg/mL, 10 mL vial'."
    )
    ndc = models.CharField("NDC", max_length=20, blank=True)
    lot = models.CharField(max_length=60)
    expiry = models.DateField()
    unit = models.CharField(max_length=8, choices=Unit.choices)
    mg_per_unit = models.DecimalField(
        max_digits=8, decimal_places=3, help_text="mg/mL, mg per device or tablet."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "product", "lot"], name="stock_lot_once_per_site"),
            models.CheckConstraint(condition=Q(mg_per_unit__gt=0), name="stock_lot_strength_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product} lot {self.lot}"


class InventoryKind(models.TextChoices):
    INITIAL = "initial", "Initial inventory"
    BIENNIAL = "biennial", "Biennial inventory"


class CountTime(models.TextChoices):
    OPENING = "opening", "opening of business"
    CLOSING = "closing", "close of business"


class Inventory(models.Model):
    """An inventory of every lot on hand at a site on one date (21 CFR 1304.11, security.md §4): the initial
    inventory, then one at least every two years. Each lot's count is a ``LedgerEntry`` of kind count pointing
    here (hash-chained with the rest of the register); this row is append-only like the register (migration
    0004's triggers). Taken by two people: the one recording and a second who signs by re-authenticating."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=InventoryKind.choices)
    taken_on = models.DateField(help_text="The site's date the inventory was taken.")
    count_time = models.CharField(max_length=8, choices=CountTime.choices)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    witness = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    witness_signed_at = models.DateTimeField(help_text="When the second person re-authenticated.")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-taken_on", "-recorded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "taken_on", "count_time"], name="inventory_once_per_site_date_and_time"
            ),
            models.CheckConstraint(condition=~Q(witness=F("taken_by")), name="inventory_two_people"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.taken_on.isoformat()}"


class EntryKind(models.TextChoices):
    RECEIPT = "receipt", "Received"
    USE = "use", "Used for a patient"
    COUNT = "count", "Counted"
    LOSS = "loss", "Loss or theft"
    CORRECTION = "correction", "Correction"


class LedgerEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    seq = models.PositiveBigIntegerField(help_text="Gapless per organization.")
    lot = models.ForeignKey(StockLot, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=EntryKind.choices)
    at = models.DateTimeField(help_text="When it happened.")
    recorded_at = models.DateTimeField(help_text="When it was entered.")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(
        max_digits=10, decimal_places=3, help_text="Change to the balance (units)."
    )
    balance_after = models.DecimalField(max_digits=10, decimal_places=3)
    # use: drawn = administered + wasted (a database constraint); the waste is witnessed
    session = models.ForeignKey(
        "chairside.TreatmentSession", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    drawn = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    administered = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    wasted = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    witness_signed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the witness re-authenticated."
    )
    # receipt (1304.21(d))
    containers = models.PositiveIntegerField(null=True, blank=True)
    supplier_name = models.CharField(max_length=200, blank=True)
    supplier_address = models.CharField(max_length=300, blank=True)
    supplier_dea = models.CharField("supplier DEA number", max_length=9, blank=True)
    # count (1304.11)
    counted = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    count_time = models.CharField(max_length=8, blank=True, help_text="opening or closing of business")
    reason = models.TextField(blank=True)
    # use: the dose it was drawn for (issue 14: a use needs an administration of the same session)
    administration = models.ForeignKey(
        "chairside.Administration",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stock_draws",
    )
    # count: the inventory it belongs to, if any
    inventory = models.ForeignKey(
        "ledger.Inventory", on_delete=models.PROTECT, null=True, blank=True, related_name="counts"
    )
    corrects = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrected_by"
    )
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="ledger_seq_once"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_not_negative"),
            # security.md §4, software rules for waste 1: administered + wasted = drawn.
            models.CheckConstraint(
                condition=~Q(kind="use")
                | Q(
                    drawn__isnull=False,
                    administered__isnull=False,
                    wasted__isnull=False,
                    drawn=F("administered") + F("wasted"),
                ),
                name="ledger_use_drawn_is_given_plus_wasted",
            ),
            # rule 2: the witness is not the person who recorded the waste.
            models.CheckConstraint(
                condition=Q(witness__isnull=True) | ~Q(witness=F("by")), name="ledger_witness_is_someone_else"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.seq} {self.kind} {self.quantity}"
