"""Monitor feed storage: devices, received HL7 messages, vital readings and the alerts raised on them.

Readings are stored one row per observation (``kind`` + ``value`` in the canonical UCUM unit of the
kind, interop.md §1.5) so that monitors, chairside entry and the API write the same table. A reading
that cannot be bound to a patient is kept with ``bound=False`` and listed for staff to attach: none is
dropped. Ids of messages and readings are integers: they never appear in URLs (forms POST them).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from ketaclinic.interop.hl7.mdc import VitalKind
from ketaclinic.monitoring.trust import default_sources


class MonitorDevice(models.Model):
    """A bedside monitor or gateway, known by its EUI-64 (MSH-3/OBX-18) or a name/PV1-3 location.

    A monitor's readings are taken only from its ``allowed_sources`` (IP addresses or networks); a
    monitor nobody registered, or one sending from another address, waits under "Unknown senders" for an
    administrator (trust.py, issue 15 M2).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, null=True, blank=True)
    identifier = models.CharField(
        max_length=120, help_text="EUI-64 in upper-case hex, or the PV1-3 location text the monitor sends."
    )
    label = models.CharField(max_length=80, blank=True)
    chair = models.ForeignKey(
        "accounts.Chair", on_delete=models.SET_NULL, null=True, blank=True, related_name="monitors"
    )
    active = models.BooleanField(default=True)
    allowed_sources = models.JSONField(
        default=default_sources,
        blank=True,
        help_text="IP addresses or networks (CIDR) the monitor may send from; this computer only by default.",
    )
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "identifier"], name="monitor_device_identifier_unique_in_org"
            )
        ]
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.label or self.identifier


class AckCodeChoice(models.TextChoices):
    ACCEPT = "AA", "Accepted"
    ERROR = "AE", "Error"
    REJECT = "AR", "Rejected"


class ReviewStatus(models.TextChoices):
    """A message from an unknown monitor or address (trust.py) waits for an administrator."""

    NONE = "", "Not held"
    HELD = "held", "Waiting for review"
    RELEASED = "released", "Accepted after review"
    DISCARDED = "discarded", "Discarded after review"


class HL7Message(models.Model):
    """One message received over MLLP, as sent. A repeat (same sender, MSH-10 and content) is not stored
    again; a reused MSH-10 with different content is stored and flagged (see feed.py). A message from an
    unknown monitor or address is kept with ``review_status`` held and no readings until reviewed."""

    id = models.BigAutoField(primary_key=True)
    # organization: the unique constraint's index starts with it.
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, db_index=False)
    sender = models.CharField(max_length=250, help_text="MSH-3, and MSH-4 after '@' when present.")
    control_id = models.CharField(max_length=199, blank=True, help_text="MSH-10")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the message with CR line ends.")
    message_type = models.CharField(max_length=30, blank=True)
    received_at = models.DateTimeField()
    peer = models.CharField(max_length=64, blank=True)
    raw = models.TextField()
    ack_code = models.CharField(max_length=2, choices=AckCodeChoice.choices)
    ack_error = models.TextField(blank=True)
    device_feed = models.BooleanField(default=False)
    device = models.ForeignKey(
        MonitorDevice, on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    location = models.CharField(max_length=200, blank=True, help_text="PV1-3 as sent.")
    issues = models.JSONField(default=list, blank=True, help_text="What the parser skipped or doubted.")
    device_identifier = models.CharField(
        max_length=120, blank=True, help_text="The monitor the message names (OBX-18 or MSH-3 EUI-64)."
    )
    source_address = models.CharField(
        max_length=45, blank=True, help_text="The sender's IP address as the listener saw it."
    )
    peer_certificate = models.CharField(
        max_length=200, blank=True, help_text="Subject of the sender's TLS client certificate."
    )
    review_status = models.CharField(max_length=10, choices=ReviewStatus.choices, default="", blank=True)
    held_reason = models.CharField(max_length=300, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                # control_id first after organization: the repeat check looks up a batch of MSH-10s.
                fields=["organization", "control_id", "sender", "digest"],
                name="hl7_message_once",
            )
        ]
        indexes = [
            # The review queue: only held messages are in it, so the feed's accepted majority costs nothing.
            models.Index(
                fields=["organization", "received_at"],
                condition=models.Q(review_status="held"),
                name="hl7message_held",
            )
        ]
        # No index on received_at: nothing lists messages by time, and every index is one more page
        # written per monitor commit (bench/README.md "## mllp").

    def __str__(self) -> str:
        return f"{self.sender} {self.control_id} {self.ack_code}"


class ReadingSource(models.TextChoices):
    HL7 = "hl7", "Monitor (HL7)"
    MANUAL = "manual", "Entered by staff"
    API = "api", "API"


class VitalReading(models.Model):
    # Single-column indexes on the foreign keys are left out where a composite index below starts with
    # the column (or the column is only used to delete rarely deleted parents): every index costs time
    # on each of the thousands of readings a second the monitor feed inserts (bench/README.md "## mllp").
    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, db_index=False)
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="vital_readings",
        db_index=False,
    )
    chair = models.ForeignKey(
        "accounts.Chair", on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    device = models.ForeignKey(
        MonitorDevice, on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    message = models.ForeignKey(
        HL7Message, on_delete=models.PROTECT, null=True, blank=True, related_name="readings"
    )
    observed_at = models.DateTimeField()
    received_at = models.DateTimeField()
    time_source = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=20, choices=[(k.value, k.value) for k in VitalKind])
    value = models.FloatField()
    unit = models.CharField(max_length=20, help_text="Canonical UCUM unit of the kind.")
    source = models.CharField(max_length=10, choices=ReadingSource.choices)
    bound = models.BooleanField(default=False)
    mapping_confirmed = models.BooleanField(
        default=True, help_text="False when the code mapping is unconfirmed in the reference."
    )
    source_code = models.CharField(max_length=120, blank=True, help_text="OBX-3 as sent.")
    source_unit = models.CharField(max_length=120, blank=True, help_text="OBX-6 as sent.")
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    attached_at = models.DateTimeField(null=True, blank=True)
    first_of_set = models.BooleanField(
        default=True,
        help_text="The first row of its reading set (one message, one observation time): the patient "
        "index holds only these rows, one entry per set instead of one per value.",
    )
    # Issue 16 point 3: what FHIR needs to serve every monitor value as it was sent.
    mdc_code = models.PositiveIntegerField(
        null=True, blank=True, help_text="The IEEE 11073 (MDC) code the value was sent under (OBX-3)."
    )
    bp_component = models.BooleanField(
        default=False,
        help_text="A blood-pressure value served inside the panel of another row of its set (same message, "
        "time and measuring site: NIBP or arterial); FHIR serves one Observation per row without this.",
    )
    implausible_reason = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Why the value cannot be a real measurement (interop/hl7/bounds.py); empty when plausible. "
        "Kept, marked in FHIR and on the chart, never plotted as a reading.",
    )
    session = models.ForeignKey(
        "chairside.TreatmentSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The treatment session the monitor's chair had when the value came (FHIR encounter).",
    )

    class Meta:
        indexes = [
            # Only unbound readings are listed by organization (for staff to attach): a partial index
            # holds just those, so the bound majority from the feed costs it nothing.
            models.Index(
                fields=["organization", "observed_at"],
                condition=models.Q(bound=False),
                name="vitalreading_unbound",
            ),
            # A patient's latest reading sets (patient page): one entry per set, not one per value —
            # five times fewer index entries, and pages written, for each monitor message
            # (bench/README.md "## mllp").
            models.Index(
                fields=["patient", "observed_at"],
                condition=models.Q(first_of_set=True),
                name="vitalreading_patient_sets",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value:g} {self.unit} at {self.observed_at:%Y-%m-%d %H:%M}"

    @property
    def implausible(self) -> bool:
        return bool(self.implausible_reason)


class MonitoringAlert(models.Model):
    """An alert from the pure engine (clinical/alerts.py) on a bound reading."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="monitoring_alerts"
    )
    chair = models.ForeignKey("accounts.Chair", on_delete=models.SET_NULL, null=True, blank=True)
    reading = models.ForeignKey(VitalReading, on_delete=models.PROTECT, related_name="alerts")
    code = models.CharField(max_length=40)
    severity = models.CharField(max_length=10)
    message = models.CharField(max_length=300)
    rule_source = models.CharField(max_length=300)
    rule_confirmed = models.BooleanField()
    observed_at = models.DateTimeField()
    dedup_key = models.CharField(max_length=120)
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["dedup_key", "acknowledged_at"]),
            models.Index(fields=["patient", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"
