"""Rating-scale administrations, patient self-report links and the safety alerts they raise."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class EnteredBy(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    PATIENT = "patient", "Patient (self-report)"


class ScaleAdministration(models.Model):
    """One completed rating scale: the answers as given and the scores computed from them at the time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="scales")
    instrument = models.CharField(max_length=20)
    instrument_version = models.CharField(max_length=20)
    answers = models.JSONField()
    total = models.FloatField(null=True)
    band = models.CharField(max_length=60, blank=True)
    subscores = models.JSONField(default=dict)
    flags = models.JSONField(default=list)
    entered_by_kind = models.CharField(max_length=10, choices=EnteredBy.choices)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    administered_at = models.DateTimeField()
    # The treatment session the scale was taken in, if any (pre-session and in-session scales).
    session = models.ForeignKey(
        "chairside.TreatmentSession", on_delete=models.PROTECT, null=True, blank=True, related_name="scales"
    )
    self_report_link = models.ForeignKey("SelfReportLink", on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "instrument", "administered_at"])]
        ordering = ["administered_at"]

    def __str__(self) -> str:
        return f"{self.instrument} {self.total} at {self.administered_at:%Y-%m-%d}"

    @property
    def suicidality(self) -> bool:
        return any(flag.get("kind") == "suicidality" for flag in self.flags)


class SelfReportLink(models.Model):
    """A one-time link a patient opens on their phone. Only a SHA-256 of the token is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="self_report_links"
    )
    instruments = models.JSONField()
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    invalid_submissions = models.PositiveIntegerField(default=0)
    purpose = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"self-report link {self.pk}"


class LinkAttempt(models.Model):
    """Failed opens of self-report links per source address (hashed), for rate limiting."""

    address_hash = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"attempt at {self.at:%H:%M:%S}"


class SafetyAlert(models.Model):
    """A suicidality (or other safety) flag that must be acknowledged by a clinician with a note."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="safety_alerts")
    administration = models.ForeignKey(ScaleAdministration, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=30)
    rule_code = models.CharField(max_length=60)
    message = models.CharField(max_length=500)
    source = models.CharField(max_length=300)
    raised_at = models.DateTimeField()
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="safety_alerts")
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True)
    escalated_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was widened to every clinician of the site, unacknowledged."
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "acknowledged_at"])]
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"{self.kind} alert {self.pk}"
