"""Protocol library (built-in versions and each clinic's edited copies), treatment plans and booked sessions.

A ``ProtocolVersion`` row is immutable: editing creates the next version, so a plan always points at the
exact version it used. Built-in protocols (``organization`` empty) are synchronised on demand from
``ketaclinic.clinical.protocol_library``; clinics copy them to edit.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ProtocolVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Empty for the built-in library shared by every clinic.",
    )
    key = models.CharField("protocol ID", max_length=63)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=300)
    drug = models.CharField(max_length=20)
    route = models.CharField(max_length=20)
    data = models.JSONField(help_text="The protocol's JSON form (clinical.protocols.protocol_to_dict).")
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key", "version"],
                condition=models.Q(organization__isnull=False),
                name="protocol_version_unique_in_org",
            ),
            models.UniqueConstraint(
                fields=["key", "version"],
                condition=models.Q(organization__isnull=True),
                name="builtin_protocol_version_unique",
            ),
        ]
        ordering = ["key", "-version"]

    def __str__(self) -> str:
        return f"{self.key}@{self.version}"

    @property
    def built_in(self) -> bool:
        return self.organization_id is None


class PlanStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CANCELLED = "cancelled", "Cancelled"


class Plan(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="treatment_plans")
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="plans")
    protocol_key = models.CharField(max_length=63)
    protocol_version = models.PositiveIntegerField()
    screening = models.ForeignKey("assessment.Screening", on_delete=models.PROTECT, related_name="plans")
    screening_decision = models.CharField(max_length=30)
    screening_override = models.ForeignKey(
        "assessment.ScreeningOverride", on_delete=models.PROTECT, null=True, blank=True, related_name="plans"
    )
    inputs = models.JSONField(help_text="What the prescriber entered (basis, amount, vial, start, …).")
    dose = models.JSONField(help_text="The dose calculation of session 1 (clinical.dosing.DoseCalculation).")
    dose_mg = models.FloatField()
    dose_override_reason = models.TextField(blank=True)
    second_person_required = models.BooleanField(default=False)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateField()
    conflicts = models.JSONField(default=list)
    notes = models.JSONField(default=list)
    unscheduled = models.JSONField(default=list)
    status = models.CharField(max_length=12, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    # A course stopped by a prescriber (services.stop_course): who, when and why.
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    # A second course while another is active needs a prescriber's reason (clinical/schedule_rules.py).
    concurrent_reason = models.TextField(blank=True)
    proposals = models.JSONField(
        default=list,
        help_text="Phases proposed, not booked (maintenance, optional): booked at the end-of-induction review.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1, help_text="Optimistic lock: bumped on every change.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"plan {self.protocol_key}@{self.protocol_version} for {self.patient_id}"


class SessionStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CANCELLED = "cancelled", "Cancelled"
    MISSED = "missed", "Missed"


class PlanSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="sessions")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    chair = models.ForeignKey(
        "accounts.Chair", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    number = models.PositiveIntegerField()
    phase_name = models.CharField(max_length=200)
    phase_kind = models.CharField(max_length=20)
    week = models.PositiveIntegerField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    dose_text = models.CharField(max_length=300)
    # This session's dose when a prescriber titrated it (empty: the plan's dose), with why, who and when.
    dose_mg = models.FloatField(null=True, blank=True)
    dose_reason = models.TextField(blank=True)
    dose_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dose_set_at = models.DateTimeField(null=True, blank=True)
    notes = models.JSONField(default=list)
    status = models.CharField(max_length=12, choices=SessionStatus.choices, default=SessionStatus.BOOKED)
    # The patient is here (front desk or nurse, from Today: treatment/arrivals.py). Not a clinical check-in:
    # the chairside session opened for this course session reads its arrival from here.
    arrived_at = models.DateTimeField(null=True, blank=True)
    arrival_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        # A slot missed or cancelled may be made up (end-of-induction review): one *booked* session per slot.
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "number"],
                condition=models.Q(status="booked"),
                name="plan_session_booked_number_unique",
            )
        ]
        indexes = [models.Index(fields=["site", "start"])]
        ordering = ["start"]

    def __str__(self) -> str:
        return f"session {self.number} of {self.plan_id}"

    @property
    def planned_dose_mg(self) -> float:
        """The dose this session opens with: a prescriber's titrated dose, or the plan's."""
        return self.dose_mg if self.dose_mg is not None else self.plan.dose_mg


class ReviewDecision(models.TextChoices):
    CONTINUE = "continue", "Continue into maintenance"
    STOP = "stop", "Stop the course"
    EXTEND = "extend", "Extend the induction"


class InductionReview(models.Model):
    """A prescriber's end-of-induction review: the response on the protocol's scale by the scale's own rule
    (clinical/schedule_review.py), and the decision — continue into maintenance, stop, or extend."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="reviews")
    scale = models.CharField(max_length=30, blank=True)
    baseline_total = models.FloatField(null=True, blank=True)
    baseline_at = models.DateTimeField(null=True, blank=True)
    latest_total = models.FloatField(null=True, blank=True)
    latest_at = models.DateTimeField(null=True, blank=True)
    percent_change = models.FloatField(null=True, blank=True)
    rule = models.CharField(max_length=300, blank=True)
    rule_source = models.CharField(max_length=300, blank=True)
    response_met = models.BooleanField(null=True, help_text="Empty: the rule could not be evaluated.")
    remission = models.BooleanField(null=True)
    summary = models.CharField(max_length=500, blank=True)
    decision = models.CharField(max_length=10, choices=ReviewDecision.choices)
    phases = models.JSONField(default=list, help_text="Phase indexes booked (continue) or extended.")
    sessions_booked = models.JSONField(default=list, help_text="Course numbers of the sessions it booked.")
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["decided_at"]

    def __str__(self) -> str:
        return f"review of {self.plan_id}: {self.decision}"


class ProtocolSessionSettings(models.Model):
    """A clinic's session settings for one protocol (every version): reading cadence and alert-rule changes.

    Empty values keep the reference defaults (clinical/vitals.py, clinical/alerts.py); every change names
    the clinic policy it comes from (``source``)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    protocol_key = models.CharField(max_length=63)
    reading_every_min = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="During dosing/infusion (or throughout, for IM and sublingual)."
    )
    after_every_min = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="After the infusion ends."
    )
    then_every_min = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Esketamine: after the label's checkpoints, a reading every N minutes.",
    )
    alert_overrides = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=300, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "protocol_key"], name="protocol_session_settings_unique"
            )
        ]

    def __str__(self) -> str:
        return f"session settings for {self.protocol_key}"
