"""Cross-app rows: staff notifications and the background job queue."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    """Something a staff member must see on their home page until they read or acknowledge it."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=400)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["recipient", "read_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class Job(models.Model):
    """A unit of background work. The worker claims a row with a conditional UPDATE (no broker)."""

    kind = models.CharField(max_length=60)
    payload = models.JSONField(default=dict)
    run_after = models.DateTimeField(db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["finished_at", "claimed_at", "run_after"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Heartbeat(models.Model):
    """When each recurring background sweep last finished (``core.jobs`` writes it in the sweep's own
    transaction). The home page and ``ketaclinic check`` read it to say plainly when the sweeps have
    stopped: without them overdue readings and unacknowledged alerts are not escalated."""

    name = models.CharField(max_length=60, unique=True, help_text="The job kind, e.g. chairside.sweep")
    beat_at = models.DateTimeField()
    ran_by = models.CharField(max_length=80, blank=True, help_text="host:pid of the process that ran it")

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
