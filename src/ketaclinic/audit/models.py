"""The audit log: append-only rows in a gapless sequence, each hashed onto the one before.

Fields follow ASTM E2147-18 as required by ONC 170.315(d)(2) (security.md §2): time (UTC), patient, type of
action, user, change specification (before/after), data category; plus source address, outcome and client
(FHIR AuditEvent / ATNA). Database triggers refuse UPDATE and DELETE (migration 0002).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    ADD = "add", "Add"
    CHANGE = "change", "Change"
    DELETE = "delete", "Delete"
    QUERY = "query", "Query"
    PRINT = "print", "Print"
    EXPORT = "export", "Export"
    COPY = "copy", "Copy"
    LOGIN = "login", "Sign-in"
    LOGOUT = "logout", "Sign-out"
    DENIED = "denied", "Access denied"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    DENIED = "denied", "Denied"


class AuditEntry(models.Model):
    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, null=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    username = models.CharField(max_length=150)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, related_name="+", db_constraint=False
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    category = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.TextField(blank=True, help_text="Canonical JSON of the values before a change.")
    after = models.TextField(blank=True, help_text="Canonical JSON of the values after a change.")
    source_ip = models.CharField(max_length=45, blank=True)
    client = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    detail = models.CharField(max_length=400, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["organization", "occurred_at"]),
            models.Index(fields=["patient", "seq"]),
            models.Index(fields=["user", "seq"]),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.category}"
