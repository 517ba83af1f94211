"""Intake records (versioned, signed by a prescriber) and eligibility screenings with their overrides.

Every save of an intake creates a new ``Intake`` row with the next version number; earlier versions are
kept unchanged. A screening stores what the pure engine (``ketaclinic.clinical.screening``) found for one
intake version, with the intake's fingerprint: when the patient's latest intake has another fingerprint,
the screening is stale.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Intake(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="intakes")
    version = models.PositiveIntegerField()
    data = models.JSONField(help_text="Cleaned intake (assessment.intake_data.clean_intake).")
    age_years = models.PositiveIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=80)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "version"], name="intake_version_unique_per_patient")
        ]
        ordering = ["patient", "-version"]

    def __str__(self) -> str:
        return f"intake v{self.version} of {self.patient_id}"

    @property
    def signed(self) -> bool:
        return self.signed_at is not None


class Screening(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="screenings")
    intake = models.ForeignKey(Intake, on_delete=models.PROTECT, related_name="screenings")
    fingerprint = models.CharField(max_length=80)
    findings = models.JSONField()
    decisions = models.JSONField(help_text="drug -> decision (eligible, eligible_with_cautions, ...).")
    trd = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"screening {self.pk}"

    @property
    def signed(self) -> bool:
        return self.signed_at is not None


class ScreeningOverride(models.Model):
    """A prescriber's written decision to go ahead with a drug the screening found not eligible."""

    screening = models.ForeignKey(Screening, on_delete=models.PROTECT, related_name="overrides")
    drug = models.CharField(max_length=20)
    reason = models.TextField()
    overridden_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    overridden_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["screening", "drug"], name="one_override_per_screening_drug")
        ]

    def __str__(self) -> str:
        return f"override of {self.drug} on {self.screening_id}"
