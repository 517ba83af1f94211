"""FHIR API clients, their access tokens and bulk exports. Every row carries its organization.

A client authenticates either with a signed JWT assertion (``private_key_jwt``, SMART Backend Services: its
public keys are registered as a JWK Set or a JWK Set URL) or, when registered so for a local tool, with a
shared secret. Secrets and tokens are random 256-bit strings shown once; only their SHA-256 is stored (a
slow password hash adds nothing for secrets of that entropy and would cost ~19 MiB per API call).
"""

# The Django mypy plugin is not configured for this repository, so ORM fields cannot be inferred.
# mypy: disable-error-code="var-annotated"
from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models


class AuthMethod(models.TextChoices):
    """How a client proves who it is at the token and introspection endpoints (RFC 7591 names)."""

    PRIVATE_KEY_JWT = "private_key_jwt", "Signed JWT assertion (SMART Backend Services)"
    CLIENT_SECRET = "client_secret", "Shared secret (local tools only)"


class ApiClient(models.Model):
    """A backend system (EHR, billing, research) allowed to read this organization's data over FHIR."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    name = models.CharField(max_length=200)
    client_id = models.CharField(max_length=64, unique=True)
    auth_method = models.CharField(
        max_length=20, choices=AuthMethod.choices, default=AuthMethod.CLIENT_SECRET
    )
    # client_secret clients only; empty for private_key_jwt clients (no secret exists).
    secret_hash = models.CharField(max_length=64, blank=True)
    # private_key_jwt clients: the public keys as a JWK Set, or the URL where the client publishes it.
    jwks = models.JSONField(null=True, blank=True)
    jwks_url = models.CharField(max_length=500, blank=True)
    allowed_scopes = models.CharField(
        max_length=1000, help_text="Space-separated SMART scopes the client may be granted, e.g. system/*.rs."
    )
    # A patient-facing client is bound to one patient: patient/ scopes reach that patient's compartment only.
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # user/ scopes act with this staff member's permissions (their sites, their role).
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The service account named in the audit rows of this client's requests.
    service_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Foreign-key columns, declared for the type checker only.
    organization_id: int
    patient_id: Any
    acting_user_id: int | None
    service_user_id: int

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"


class AccessToken(models.Model):
    """A short-lived opaque bearer token: only its hash is stored, with the scopes granted."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.CharField(max_length=1000)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    organization_id: int
    patient_id: Any

    def __str__(self) -> str:
        return f"access token #{self.pk} until {self.expires_at:%H:%M:%S}"


class UsedAssertion(models.Model):
    """A client assertion's ``jti`` seen at the token endpoint, kept until the assertion expires: a second
    use of the same ``jti`` is a replay (RFC 7523 §3, SMART Backend Services). In the database, so the check
    holds across worker processes; the unique constraint decides a race."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    jti_hash = models.CharField(max_length=64)  # SHA-256 of the jti: any length, fixed-size column
    expires_at = models.DateTimeField(db_index=True)
    client_id: int
    organization_id: int

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "jti_hash"], name="fhir_assertion_jti_once_per_client")
        ]

    def __str__(self) -> str:
        return f"assertion {self.jti_hash[:8]} until {self.expires_at:%H:%M:%S}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BulkExport(models.Model):
    """One asynchronous ``$export`` request; its NDJSON files are served to the same client only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="exports")
    scopes = models.CharField(max_length=1000, help_text="The scopes of the token that asked for it.")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    types = models.JSONField(default=list)
    since = models.DateTimeField(null=True, blank=True)
    request_url = models.CharField(max_length=2000)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    error = models.TextField(blank=True)
    transaction_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    organization_id: int
    client_id: int
    patient_id: Any
    files: Any  # reverse accessor of BulkExportFile.export

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"


class BulkExportFile(models.Model):
    export = models.ForeignKey(BulkExport, on_delete=models.CASCADE, related_name="files")
    resource_type = models.CharField(max_length=60)
    count = models.PositiveIntegerField()
    ndjson = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["export", "resource_type"], name="fhir_export_file_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}.ndjson ({self.count})"
