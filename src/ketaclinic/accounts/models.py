"""Organizations (a clinic network), sites with their hours and chairs, and staff accounts with one role."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.utils import timezone

from ketaclinic.core.access import ADMIN, ROLE_CHOICES

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a time zone name such as America/New_York.") from None


def validate_opening_hours(value: Any) -> None:
    """``{"mon": [["08:00", "18:00"]], ...}``; a missing day is closed."""
    if not isinstance(value, dict):
        raise ValidationError("Opening hours must map weekdays to lists of [open, close] times.")
    for day, spans in value.items():
        if day not in WEEKDAYS:
            raise ValidationError(f"{day!r} is not a weekday (use mon … sun).")
        for span in spans:
            try:
                start, end = (time.fromisoformat(t) for t in span)
            except (TypeError, ValueError):
                raise ValidationError(f"{day}: {span!r} is not a pair of HH:MM times.") from None
            if start >= end:
                raise ValidationError(f"{day}: opening {span[0]} is not before closing {span[1]}.")


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sites")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    opening_hours = models.JSONField(default=dict, validators=[validate_opening_hours])
    # The site as a registrant (accounts/site_identifiers.py): printed on the controlled-drug register and
    # prefilled into the SPRAVATO REMS Patient Monitoring Form's setting fields (clinical.md §2.4).
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=2, blank=True, help_text="US state or territory code, e.g. NY.")
    zip_code = models.CharField("ZIP", max_length=10, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    dea_registration = models.CharField(
        "DEA registration number",
        max_length=9,
        blank=True,
        help_text="The site's registration (21 CFR 1301).",
    )
    rems_certified = models.BooleanField(
        "certified in the SPRAVATO REMS",
        null=True,
        blank=True,
        help_text="Empty: not recorded (the pre-dose gate asks); no: esketamine may not be given here.",
    )
    rems_certification_id = models.CharField("REMS certification ID", max_length=60, blank=True)
    rems_certified_on = models.DateField("REMS certification date", null=True, blank=True)
    crisis_resources = models.TextField(
        blank=True, help_text="Shown to patients after a self-report that raises a safety flag."
    )
    nurse_capacity = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Patients the nurses on shift can monitor at once (empty = no limit).",
    )
    alert_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Site policy for session alert rules: {code: {threshold, enabled, severity, source}}, changed by "
            "prescribers within clinical/alerts.py's limits (accounts/alert_policy.py)."
        ),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="site_code_unique_in_org")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def today(self, now: datetime | None = None) -> date:
        """The calendar day at the site (its own time zone), now or at ``now``. A clinic's "today" is never
        the server's: at 20:00 in New York the server's UTC date is already tomorrow."""
        return timezone.localdate(now or timezone.now(), self.zone)

    @property
    def address_lines(self) -> list[str]:
        """The postal address as printed: street lines, then 'City, ST 12345'; empty parts left out."""
        last = " ".join(p for p in (f"{self.city}," if self.city else "", self.state, self.zip_code) if p)
        return [line for line in (self.address_line1, self.address_line2, last.rstrip(",")) if line]


class Chair(models.Model):
    """A treatment chair or room where a patient is dosed and monitored."""

    KIND_CHOICES = [("chair", "Chair"), ("room", "Room")]
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="chairs")
    label = models.CharField(max_length=60)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default="chair")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "label"], name="chair_label_unique_in_site")]
        ordering = ["site", "label"]

    def __str__(self) -> str:
        return f"{self.site.code}/{self.label}"


class User(AbstractUser):
    """A person (or a named service account) who signs in. One role each; no shared logins (164.312(a)(2)(i))."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="users"
    )
    role = models.CharField(max_length=20, choices=ROLE_CHOICES, blank=True)
    sites = models.ManyToManyField(Site, blank=True, related_name="staff")
    all_sites = models.BooleanField(
        default=False, help_text="Sees patients of every site of the organization."
    )
    is_service = models.BooleanField(default=False, help_text="A system account; cannot sign in.")
    break_glass_allowed = models.BooleanField(default=False)
    # A clinician's identifiers (accounts/staff.py; clinical/identifiers.py checks them): shown on their
    # account page, printed beside their name on the controlled-drug register; the work phone fills the
    # REMS form's monitoring-HCP telephone.
    phone = models.CharField("work phone", max_length=40, blank=True)
    npi = models.CharField("NPI", max_length=10, blank=True)
    dea_number = models.CharField("DEA number", max_length=9, blank=True)
    licence_number = models.CharField("state licence number", max_length=30, blank=True)
    licence_state = models.CharField("licence state", max_length=2, blank=True)
    on_duty_site = models.ForeignKey(
        Site,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="on_duty",
        help_text="Set by a clinician starting a shift: receives the site's safety alerts.",
    )

    @property
    def org_id(self) -> int:
        """The organization this account works in, for organization-scoped queries and new rows.

        Staff accounts always belong to one (``createuser`` and ``accounts.services.create_account`` require
        it); only a few global service accounts that merely sign audit rows have none. Such an account is
        refused here rather than scoped to the rows whose organization is empty, which is what
        ``filter(organization_id=None)`` would silently do.
        """
        if self.organization_id is None:
            raise PermissionDenied("This account belongs to no organization.")
        return self.organization_id

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class BreakGlassGrant(models.Model):
    """Emergency access to one patient outside the user's sites, time-limited, reasoned and audited."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    user = models.ForeignKey(User, on_delete=models.PROTECT)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT)
    reason = models.TextField()
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "patient", "expires_at"])]

    def __str__(self) -> str:
        return f"break-glass by {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class UserSession(models.Model):
    """Which server-side sessions belong to a user, so disabling an account ends them all (ASVS 7.4.2)."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="session_keys")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"session of {self.user_id}"


class AccountLink(models.Model):
    """A one-time link e-mailed to a staff member: an invitation to a new account or a password reset
    (accounts/invitations.py). Only a SHA-256 of the token is stored; the link works once, until it expires,
    and a newer link, a deactivation or a change of e-mail address revokes it."""

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        RESET = "reset", "Password reset"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="account_links")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField(help_text="Where the link was sent.")
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "used_at", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.kind} link for {self.user_id}"


class ClosureKind(models.TextChoices):
    CLOSURE = "closure", "Local closure"
    PUBLIC_HOLIDAY = "public_holiday", "Public holiday"


class SiteClosure(models.Model):
    """A day a site is closed (a public holiday, a training day): the scheduler places no session on it and
    nobody books one (treatment.services.site_calendar reads these rows). Kept by administrators
    (accounts/sites.py)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="closures")
    day = models.DateField()
    reason = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ClosureKind.choices, default=ClosureKind.CLOSURE)
    added_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "day"], name="site_closure_unique_day")]
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.site_id} closed {self.day}"


class SafetySettingChange(models.Model):
    """One change to one safety setting — an alert rule at a site or for a protocol, or a protocol's reading
    interval — kept to show staff who changed what, when, from what to what (accounts/alert_policy.py). Rows
    are only added; the audit log records the same change in its hash chain.

    ``site`` is set for a site's alert policy, ``protocol_key`` for a protocol's session settings (one of the
    two). ``setting`` is an alert code (clinical/alerts.AlertCode) or a cadence field name; ``before`` and
    ``after`` are the stored override (``{}`` = the reference default)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    protocol_key = models.CharField(max_length=63, blank=True)
    setting = models.CharField(max_length=40)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=300, blank=True)
    changed_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [
            models.Index(fields=["site", "setting", "changed_at"]),
            models.Index(fields=["organization", "protocol_key", "changed_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(site__isnull=False) & models.Q(protocol_key=""))
                | (models.Q(site__isnull=True) & ~models.Q(protocol_key="")),
                name="safety_setting_change_site_or_protocol",
            )
        ]

    def __str__(self) -> str:
        where = f"site {self.site_id}" if self.site_id else f"protocol {self.protocol_key}"
        return f"{self.setting} at {where} by {self.changed_by_id} {self.changed_at:%Y-%m-%d %H:%M}"
