"""The patient record: identity, contacts, escort and body size. Every row carries its organization."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Patient(models.Model):
    # Opaque ids: URLs carry no PHI and do not reveal how many patients a clinic has.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField("MRN", max_length=40)
    # Search keys of the MRN (patients.services.mrn_key): lower-case letters and digits only, and the same
    # reversed, so a search by the start or the end of an MRN, in any case, is an index range scan.
    mrn_key = models.CharField(max_length=40, editable=False, default="")
    mrn_key_reversed = models.CharField(max_length=40, editable=False, default="")
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    given_norm = models.CharField(max_length=100, editable=False)
    family_norm = models.CharField(max_length=100, editable=False)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address = models.CharField(max_length=300, blank=True)
    emergency_contact_name = models.CharField(max_length=200, blank=True)
    emergency_contact_phone = models.CharField(max_length=40, blank=True)
    emergency_contact_relation = models.CharField(max_length=60, blank=True)
    escort_name = models.CharField(max_length=200, blank=True)
    escort_phone = models.CharField(max_length=40, blank=True)
    prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="patients_prescribed",
        help_text="The responsible prescriber: receives this patient's safety alerts.",
    )
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    height_cm = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    age_range_reason = models.TextField(
        blank=True,
        help_text="Why the patient is treated outside the clinic's age range (clinical/age_range.py), as given "
        "when the birth date was entered; shown on the chart while the patient is outside it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1, help_text="Optimistic lock: bumped on every change.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "mrn"], name="patient_mrn_unique_in_org"),
            models.CheckConstraint(
                condition=models.Q(weight_kg__isnull=True)
                | models.Q(weight_kg__gte=Decimal("20"), weight_kg__lte=Decimal("350")),
                name="patient_weight_20_350_kg",
            ),
            models.CheckConstraint(
                condition=models.Q(height_cm__isnull=True)
                | models.Q(height_cm__gte=Decimal("100"), height_cm__lte=Decimal("250")),
                name="patient_height_100_250_cm",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "family_norm"]),
            models.Index(fields=["organization", "given_norm"]),
            models.Index(fields=["organization", "date_of_birth"]),
            models.Index(fields=["organization", "mrn_key"]),
            models.Index(fields=["organization", "mrn_key_reversed"]),
        ]
        ordering = ["family_name", "given_name"]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"
