"""A treatment session and everything recorded during it. Every row carries its organization.

Clinical rules (gate, cadence, alert thresholds, discharge, REMS form) are the pure modules in
``ketaclinic.clinical``; these tables store their inputs and results with who, when and why.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CHECKED_IN = "checked_in", "Checked in"
    PRE_DOSE = "pre_dose", "Pre-dose checks"
    DOSING = "dosing", "Dosing"
    MONITORING = "monitoring", "Monitoring"
    RECOVERY = "recovery", "Recovery"
    DISCHARGED = "discharged", "Discharged"
    STOPPED = "stopped", "Stopped"


ACTIVE_STATUSES = (Status.CHECKED_IN, Status.PRE_DOSE, Status.DOSING, Status.MONITORING, Status.RECOVERY)


class Drug(models.TextChoices):
    KETAMINE = "ketamine", "Ketamine (racemic)"
    ESKETAMINE = "esketamine", "Esketamine (Spravato)"


class Route(models.TextChoices):
    IV = "iv", "Intravenous infusion"
    IM = "im", "Intramuscular injection"
    INTRANASAL = "intranasal", "Intranasal"
    SUBLINGUAL = "sublingual", "Sublingual"


class TreatmentSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="treatment_sessions"
    )
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT)
    chair = models.ForeignKey("accounts.Chair", on_delete=models.PROTECT, null=True, blank=True)
    protocol_id = models.CharField(max_length=80)
    protocol_version = models.PositiveIntegerField(default=1)
    drug = models.CharField(max_length=12, choices=Drug.choices)
    route = models.CharField(max_length=12, choices=Route.choices)
    planned_dose_mg = models.DecimalField(max_digits=7, decimal_places=2)
    # The dose decision behind planned_dose_mg (clinical/dose_check.py): the course session number whose
    # dose rule applies, the weight basis, and a prescriber's reason when the dose is outside the usual range.
    session_number = models.PositiveSmallIntegerField(null=True, blank=True)
    dose_basis = models.CharField(max_length=10, default="actual")
    dose_override_reason = models.TextField(blank=True)
    dose_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The booked course session this one carries out, when it came from a treatment plan: one treatment
    # session per course session, held by the database (a one-to-one key on the same column,
    # chairside/0008). Opened only through treatment.opening.start_booked_session.
    planned_session = models.OneToOneField(
        "treatment.PlanSession",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_column="planned_session_id",
        related_name="treatment_session",
    )
    scheduled_at = models.DateTimeField()
    # The patient is here (front desk or nurse, from Today: treatment/arrivals.py), for a session outside a
    # plan; a course session's arrival is kept on its booking (treatment.PlanSession). Not a check-in.
    arrived_at = models.DateTimeField(null=True, blank=True)
    arrival_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    gate_opened_at = models.DateTimeField(
        null=True, blank=True, help_text="When the pre-dose gate last opened (no dose may be dated earlier)."
    )
    dose_started_at = models.DateTimeField(null=True, blank=True)
    dosing_ended_at = models.DateTimeField(null=True, blank=True)
    # Entry-checked times (clinical/dose_check.check_dose_time): observation clocks run from these, so a
    # back-dated entry cannot shorten them.
    dose_clock_at = models.DateTimeField(null=True, blank=True)
    dose_end_clock_at = models.DateTimeField(null=True, blank=True)
    discharged_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(
        null=True, blank=True, help_text="When the patient would have been ready (REMS)"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last change to the session row.")
    version = models.PositiveIntegerField(default=1, help_text="Optimistic lock: bumped on every change.")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "site", "status"]),
            models.Index(fields=["patient", "scheduled_at"]),
        ]
        ordering = ["-scheduled_at"]

    def __str__(self) -> str:
        return f"{self.drug} {self.route} session {self.scheduled_at:%Y-%m-%d}"


class SessionEvent(models.Model):
    """Every lifecycle transition: by whom, when, and why (stops and overrides carry a reason)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=12, choices=Status.choices)
    to_status = models.CharField(max_length=12, choices=Status.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status}→{self.to_status}"


class GateCheck(models.Model):
    """One evaluation of the pre-dose gate: the answers given, each item's status, overrides."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="gate_checks")
    answers = models.JSONField()
    items = models.JSONField()
    overrides = models.JSONField(default=list)
    passed = models.BooleanField()
    evaluated_at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-evaluated_at", "-pk"]

    def __str__(self) -> str:
        return f"gate {'open' if self.passed else 'closed'} at {self.evaluated_at:%H:%M}"


class AdministrationKind(models.TextChoices):
    NASAL_DEVICE = "nasal_device", "Nasal spray device"
    INFUSION_START = "infusion_start", "Infusion started"
    RATE_CHANGE = "rate_change", "Infusion rate changed"
    INFUSION_STOP = "infusion_stop", "Infusion stopped"
    INJECTION = "injection", "IM injection"
    SUBLINGUAL = "sublingual", "Sublingual dose"


class Administration(models.Model):
    """A dose event (DEA 1304.22(c) record fields, security.md §4): drug, form, amount, who gave and verified."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="administrations")
    kind = models.CharField(max_length=16, choices=AdministrationKind.choices)
    at = models.DateTimeField()
    drug = models.CharField(max_length=12, choices=Drug.choices)
    # The stock lot the dose was drawn from (issue 14): product, strength, lot number and expiry below are
    # the lot's, copied so the record reads on its own; rate changes and the stop draw nothing.
    stock_lot = models.ForeignKey(
        "ledger.StockLot", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    product = models.CharField(max_length=200)
    concentration_mg_ml = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    lot = models.CharField(max_length=60)
    expiry = models.DateField()
    container_volume_ml = models.DecimalField(
        max_digits=7, decimal_places=2, null=True, blank=True, help_text="Final bag or syringe volume (IV)."
    )
    final_concentration_mg_ml = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    dose_mg = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    rate_ml_per_h = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    rate_mg_per_h = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    device_number = models.PositiveSmallIntegerField(null=True, blank=True)
    given_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Text (not a 300-character column): a warning or a note is kept whole, never cut to fit (issue 14).
    warning = models.TextField(blank=True)
    note = models.TextField(blank=True)
    recorded_at = models.DateTimeField(default=timezone.now, editable=False, help_text="When it was entered.")
    clock_at = models.DateTimeField(null=True, blank=True, help_text="Entry-checked time clocks run from.")
    late_entry_reason = models.TextField(blank=True)
    # A prescriber who re-authenticated to go past a limit (more than planned, faster than the protocol)
    # or recorded the reason for a dose outside the usual range, and that reason.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%H:%M}"


class Observation(models.Model):
    """One set of chairside observations at one moment (missing measurements are empty)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="observations")
    observed_at = models.DateTimeField()
    sbp_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    dbp_mmhg = models.PositiveSmallIntegerField(null=True, blank=True)
    hr_bpm = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    rr_per_min = models.PositiveSmallIntegerField(null=True, blank=True)
    temp_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    moaas = models.PositiveSmallIntegerField(null=True, blank=True)
    cadss_total = models.PositiveSmallIntegerField(null=True, blank=True)
    mental_status = models.TextField(blank=True)  # kept whole, never cut to fit a column (issue 14)
    source = models.CharField(max_length=10, default="manual")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey("IngestBatch", on_delete=models.PROTECT, null=True, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now, editable=False, help_text="When it was entered.")

    class Meta:
        indexes = [models.Index(fields=["session", "observed_at"])]
        ordering = ["observed_at", "pk"]

    def __str__(self) -> str:
        return f"obs {self.observed_at:%H:%M}"


class IngestBatch(models.Model):
    """An API batch of readings, keyed by the sender's idempotency key: a resent batch stores nothing twice."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    key = models.CharField(max_length=100)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT)
    received_at = models.DateTimeField(auto_now_add=True)
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="ingest_batch_key_unique")
        ]

    def __str__(self) -> str:
        return f"batch {self.key}"


class SessionAlert(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="alerts")
    code = models.CharField(max_length=40)
    severity = models.CharField(max_length=10)
    # Whole texts: an overdue alert's source is the cadence's source and the rule's (a clinic's may be 300
    # characters), so neither is cut to fit a column.
    message = models.TextField()
    source = models.TextField()
    confirmed = models.BooleanField(default=True)
    dedup_key = models.CharField(max_length=200)
    raised_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "dedup_key"], name="session_alert_dedup")]
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"{self.severity} {self.code}"


class ChecklistRun(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="checklists")
    code = models.CharField(max_length=40)
    title = models.CharField(max_length=120)
    steps = models.JSONField(help_text="[{text, source, done_at, by}] in order")
    started_at = models.DateTimeField()
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return self.title


class AdverseEvent(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="adverse_events")
    term = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=12)
    serious = models.BooleanField(default=False)
    onset_at = models.DateTimeField()
    action_taken = models.TextField(blank=True)
    outcome = models.CharField(max_length=40)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.term


class DischargeRecord(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="discharge")
    criteria = models.JSONField()
    overrides = models.JSONField(default=list)
    escort_present = models.BooleanField()
    driving_advice_given = models.BooleanField()
    decided_at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The prescriber who re-authenticated to discharge with a criterion not met (overrides).
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"discharge {self.decided_at:%H:%M}"


class RemsMonitoringForm(models.Model):
    """The SPRAVATO REMS Patient Monitoring Form of one esketamine session (clinical.md §2.4, security.md §4):
    assembled from the session, signed off when complete, submitted within 7 days."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="rems_form")
    data = models.JSONField(help_text="The form's fields as assembled and edited")
    due_on = models.DateField()
    signed_off_at = models.DateTimeField(null=True, blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    confirmation_number = models.CharField(max_length=60, blank=True)
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"REMS form due {self.due_on}"
