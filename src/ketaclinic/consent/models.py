"""Consent forms (one published version per row, never changed) and the consents patients sign on them.

The rules — what a form must say, how long a consent lasts, whether it covers a session — are the pure
``ketaclinic.clinical.consent``; these tables keep the words each patient signed, the signature or scan, and
who recorded, witnessed and withdrew it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from ketaclinic.clinical import consent as rules


class ConsentDrug(models.TextChoices):
    KETAMINE = "ketamine", "Ketamine (racemic)"
    ESKETAMINE = "esketamine", "Esketamine (SPRAVATO)"


class ConsentRoute(models.TextChoices):
    IV = "iv", "Intravenous infusion"
    IM = "im", "Intramuscular injection"
    INTRANASAL = "intranasal", "Nasal spray"
    SUBLINGUAL = "sublingual", "Sublingual"


class ConsentMethod(models.TextChoices):
    TABLET = "tablet", "Signed on the clinic tablet"
    SCAN = "scan", "Signed paper form (scan)"
    UNSIGNED = "unsigned", "Recorded before signed forms were kept"


class TemplateChanged(Exception):
    """A published consent form is never edited: publish a new version instead."""


class ConsentTemplate(models.Model):
    """One published version of a consent form for a drug and route, in one organization.

    Rows are never changed after they are written (``save`` refuses): what a patient signed is what the
    record shows. A new version is a new row with the next ``version``."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    drug = models.CharField(max_length=12, choices=ConsentDrug.choices)
    route = models.CharField(max_length=12, choices=ConsentRoute.choices)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=rules.MAX_TITLE_CHARS)
    sections = models.JSONField(
        help_text="[{key, heading, text, source}] in the order the patient reads them"
    )
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the words (clinical.consent.fingerprint)"
    )
    builtin_revision = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The software's built-in text this version is; empty: the clinic's words",
    )
    change_note = models.TextField(blank=True)
    sign_again = models.BooleanField(
        default=False,
        help_text="Patients who signed an earlier version sign this one before their next dose.",
    )
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "drug", "route", "version"], name="consent_template_version_unique"
            )
        ]
        ordering = ["drug", "route", "-version"]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TemplateChanged("A published consent form is never changed: publish a new version.")
        super().save(*args, **kwargs)

    def form_text(self) -> rules.FormText:
        return rules.FormText(
            drug=self.drug,
            route=self.route,
            title=self.title,
            sections=tuple(rules.Section(**s) for s in self.sections),
        )

    @property
    def label(self) -> str:
        return rules.form_label(self.drug, self.route)

    @property
    def is_builtin(self) -> bool:
        return self.builtin_revision is not None


class Consent(models.Model):
    """A patient's informed consent to one drug by one route, on one version of the form.

    The evidence is a file kept outside the database (``consent.storage``): the PNG of the signature drawn on
    the clinic tablet, or the scan of the signed paper form, with its SHA-256 so any change to it shows.
    Rows recorded before signed forms were kept (``method=unsigned``) stay readable but never satisfy the
    pre-dose gate."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="consents")
    drug = models.CharField(max_length=12, choices=ConsentDrug.choices)
    route = models.CharField(max_length=12, choices=ConsentRoute.choices, blank=True)
    template = models.ForeignKey(
        ConsentTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="consents"
    )
    template_fingerprint = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=10, choices=ConsentMethod.choices, default=ConsentMethod.UNSIGNED)
    signed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    validity_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The clinic's validity period when it was signed"
    )
    signer_name = models.CharField(max_length=200, blank=True, help_text="The name the patient typed")
    witness = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    document_file = models.CharField(
        max_length=200, blank=True, help_text="Name in the consent-documents store"
    )
    document_type = models.CharField(max_length=40, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    document_bytes = models.PositiveIntegerField(null=True, blank=True)
    document_filename = models.CharField(max_length=200, blank=True, help_text="The uploaded file's name")
    withdrawn_on = models.DateField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last change (signing or withdrawal)")

    class Meta:
        # The table keeps the name it had when consent lived in the chairside app (moved without a copy).
        db_table = "chairside_consent"
        indexes = [
            models.Index(fields=["patient", "drug", "route", "signed_on"], name="consent_patient_route")
        ]
        ordering = ["-signed_on", "-pk"]

    def __str__(self) -> str:
        return f"consent {self.drug} {self.route} {self.signed_on}"

    @property
    def label(self) -> str:
        return rules.form_label(self.drug, self.route) if self.route else self.get_drug_display()
