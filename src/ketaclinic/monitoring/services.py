"""Monitoring use cases for staff: unbound monitor readings and monitor-to-chair assignment.

Keyword-only, never commit (the request owns the transaction), audit every PHI write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Chair, Site, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.core.errors import DomainError
from ketaclinic.monitoring.alerts import evaluate_alerts
from ketaclinic.monitoring.models import MonitorDevice, VitalReading
from ketaclinic.monitoring.trust import LOCAL_ONLY, SourceError, parse_sources
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import covers_all_sites, visible_patients

CATEGORY = "monitoring"
T = TypeVar("T")
UNBOUND_PAGE = 50  # messages (reading sets) listed per page


class MonitoringError(DomainError):
    status = 409


class MonitoringValidationError(MonitoringError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def user_sites(user: User) -> QuerySet[Site]:
    sites = Site.objects.filter(organization_id=user.org_id)
    return sites if covers_all_sites(user) else sites.filter(pk__in=user.sites.all())


def _unbound_scope(user: User, site: Site | None) -> QuerySet[VitalReading]:
    qs = VitalReading.objects.filter(organization_id=user.org_id, bound=False)
    if site is not None:
        return qs.filter(site=site)
    # Readings from a monitor nobody has placed yet have no site: every clinician of the organization
    # may see them (the values carry no identity) so they are not left unseen.
    return qs.filter(Q(site__in=user_sites(user)) | Q(site__isnull=True))


@dataclass
class UnboundGroup:
    """One message's unbound readings, shown as one line."""

    message_id: int | None
    readings: int
    observed_at: datetime
    received_at: datetime
    device: str
    chair: str
    site: str
    location: str
    values: list[str] = field(default_factory=list)

    @property
    def more(self) -> int:
        """Values not shown on the line (a message may carry up to KETACLINIC_HL7_MAX_READINGS)."""
        return self.readings - len(self.values)


@dataclass
class Page(Generic[T]):
    """One page of a listing that never loads everything (unmatched readings, unknown senders)."""

    groups: list[T]
    number: int
    pages: int
    total: int  # groups in the whole listing

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


_ORDER = ["sbp", "dbp", "map", "hr", "pulse", "spo2", "rr", "etco2", "temp_c"]
VALUES_SHOWN = 12  # values listed per message; the rest are counted


def page_bounds(total: int, page: int, size: int) -> tuple[int, int, slice]:
    """(page number clamped to the pages there are, number of pages, the slice of rows it shows)."""
    pages = max(1, -(-total // size))
    number = min(max(page, 1), pages)
    return number, pages, slice((number - 1) * size, number * size)


def unbound_page(*, user: User, site: Site | None = None, page: int = 1) -> Page[UnboundGroup]:
    """One page of messages with unbound readings, newest first. ``site`` None: the user's sites and
    monitors without a site. Bounded whatever waits (issue 15 H4: one message of 10,586 readings once
    stalled the server): the page is counted and chosen over message ids, then only that page's readings
    are read, as plain values — never a message's text."""
    scope = _unbound_scope(user, site)
    by_message = (
        scope.values("message_id")
        .annotate(latest=Max("observed_at"), n=Count("id"))
        .order_by("-latest", "-message_id")
    )
    total = by_message.count()
    number, pages, rows_shown = page_bounds(total, page, UNBOUND_PAGE)
    chunk = list(by_message[rows_shown])
    groups = {
        r["message_id"]: UnboundGroup(r["message_id"], r["n"], r["latest"], r["latest"], "", "", "", "")
        for r in chunk
    }
    rows = (
        scope.filter(message_id__in=list(groups))
        .order_by("message_id", "observed_at", "id")
        .values_list(
            "message_id",
            "kind",
            "value",
            "unit",
            "received_at",
            "device__identifier",
            "device__label",
            "chair__label",
            "site__name",
            "message__location",
            "implausible_reason",
        )
    )
    for message_id, kind, value, unit, received, ident, label, chair, site_name, location, odd in rows:
        g = groups[message_id]
        if not g.values:
            g.received_at, g.device, g.chair = received, label or ident or "", chair or ""
            g.site, g.location = site_name or "", location or ""
        if len(g.values) < VALUES_SHOWN:
            # An implausible value (interop/hl7/bounds.py) is said to be one, not shown as a reading.
            g.values.append(
                f"{kind.upper()} {value:g} {unit}" + (" (implausible, not a measurement)" if odd else "")
            )
    for g in groups.values():
        g.values.sort(key=_order_key)
    return Page(list(groups.values()), number, pages, total)


@dataclass
class ReadingSet:
    observed_at: datetime
    source: str
    values: list[str] = field(default_factory=list)
    # Values the monitor sent that cannot be real (interop/hl7/bounds.py): listed apart with the reason,
    # never among the readings (issue 16 point 3).
    implausible: list[str] = field(default_factory=list)


def recent_for_patient(*, patient: Patient, sets: int = 12) -> tuple[list[ReadingSet], list[Any]]:
    """The patient's latest reading sets (one per message and time) and open alerts, newest first."""
    from ketaclinic.monitoring.models import MonitoringAlert

    out: dict[Any, ReadingSet] = {}
    # The latest sets by their first rows (the patient index holds only those), then all their values.
    leads = list(
        VitalReading.objects.filter(patient=patient, first_of_set=True).order_by("-observed_at", "id")[:sets]
    )
    for r in leads:
        out[(r.message_id or f"r{r.pk}", r.observed_at)] = ReadingSet(r.observed_at, r.get_source_display())
    members = VitalReading.objects.filter(
        patient=patient, message_id__in={r.message_id for r in leads if r.message_id is not None}
    )
    for r in [*members, *(r for r in leads if r.message_id is None)]:  # values are ordered below
        found = out.get((r.message_id or f"r{r.pk}", r.observed_at))
        if found is not None and r.implausible_reason:
            found.implausible.append(f"{r.kind.upper()} {r.value:g} {r.unit}: {r.implausible_reason}")
        elif found is not None:
            found.values.append(f"{r.kind.upper()} {r.value:g} {r.unit}")
    for s in out.values():
        s.values.sort(key=_order_key)
        s.implausible.sort(key=_order_key)
    alerts = list(
        MonitoringAlert.objects.filter(patient=patient, acknowledged_at__isnull=True).order_by(
            "-observed_at"
        )[:10]
    )
    return list(out.values()), alerts


def _order_key(value: str) -> int:
    kind = value.split()[0].lower()
    return _ORDER.index(kind) if kind in _ORDER else 99


def attach_readings(
    *, user: User, message_id: int, mrn: str, note: str = "", request: HttpRequest | None = None
) -> tuple[Patient, int]:
    """Attach one message's unbound readings to the patient with ``mrn`` (at the user's sites)."""
    errors: dict[str, str] = {}
    mrn = (mrn or "").strip()
    patient = None
    if not mrn:
        errors["mrn"] = "Enter the patient's MRN."
    else:
        patient = visible_patients(user).filter(mrn=mrn).first()
        if patient is None:
            errors["mrn"] = f"No patient with MRN {mrn} at your sites."
    readings = list(_unbound_scope(user, None).filter(message_id=message_id).select_for_update())
    if not readings:
        errors["message"] = (
            "These readings are no longer waiting: a colleague attached them already, or they are not at your sites."
        )
    if len(note) > 300:
        errors["note"] = "Keep the note under 300 characters."
    if errors:
        raise MonitoringValidationError(errors)
    assert patient is not None
    now = timezone.now()
    ids = [r.pk for r in readings]
    updated = VitalReading.objects.filter(pk__in=ids, bound=False).update(
        patient=patient, bound=True, attached_by=user, attached_at=now
    )
    if updated != len(ids):  # a colleague attached some of them at the same moment
        raise MonitoringValidationError({"message": "A colleague attached these readings at the same time."})
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=patient,
        object_type="VitalReading",
        object_id=message_id,
        before={"bound": False, "patient": None, "readings": ids},
        after={"bound": True, "patient": str(patient.pk), "readings": ids, "note": note},
        request=request,
        detail="monitor readings attached to a patient",
    )
    attached = list(VitalReading.objects.filter(pk__in=ids))
    evaluate_alerts(attached, now=now)
    return patient, len(ids)


# ---------------------------------------------------------------- monitor devices (administrators)


def org_devices(*, user: User) -> QuerySet[MonitorDevice]:
    return MonitorDevice.objects.filter(organization_id=user.org_id).select_related("chair", "site")


def org_chairs(*, user: User) -> QuerySet[Chair]:
    return Chair.objects.filter(organization_id=user.org_id, active=True).select_related("site")


def device_snapshot(device: MonitorDevice) -> dict[str, Any]:
    return {
        "identifier": device.identifier,
        "label": device.label,
        "chair": device.chair_id,
        "site": device.site_id,
        "active": device.active,
        "allowed_sources": list(device.allowed_sources or []),
    }


def check_device_fields(identifier: str, label: str, chair: Chair | None, user: User) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not identifier or len(identifier) > 120:
        errors["identifier"] = (
            "Enter the monitor's EUI-64 or the location name it sends (up to 120 characters)."
        )
    if len(label) > 80:
        errors["label"] = "Keep the label under 80 characters."
    if chair is not None and chair.organization_id != user.organization_id:
        errors["chair"] = "Choose one of your organization's chairs."
    return errors


def save_device(
    *,
    user: User,
    device: MonitorDevice | None,
    identifier: str,
    label: str,
    chair: Chair | None,
    active: bool,
    allowed_sources: str | None = None,
    request: HttpRequest | None = None,
) -> MonitorDevice:
    """Register a monitor (``device`` None) or change its label, chair, whether it is in use and the
    addresses it may send from (``allowed_sources`` as typed; None keeps them, and a new monitor gets this
    computer only: trust.py)."""
    identifier = identifier.strip()
    if identifier and all(c in "0123456789abcdefABCDEF" for c in identifier) and len(identifier) == 16:
        identifier = identifier.upper()  # EUI-64 as the parser reports it
    errors = check_device_fields(identifier, label.strip(), chair, user)
    sources: list[str] | None = None
    if allowed_sources is not None:
        if len(allowed_sources) > 2000:
            errors["allowed_sources"] = "Keep the allowed addresses under 2,000 characters."
        else:
            try:
                sources = parse_sources(allowed_sources) or list(LOCAL_ONLY)
            except SourceError as exc:
                errors["allowed_sources"] = str(exc)
    if device is not None and device.organization_id != user.organization_id:
        raise MonitoringError("No such monitor.")
    clash = MonitorDevice.objects.filter(organization_id=user.org_id, identifier=identifier)
    if device is not None:
        clash = clash.exclude(pk=device.pk)
    if identifier and clash.exists():
        errors["identifier"] = f"A monitor with identifier {identifier} is already registered."
    if chair is not None:
        others_on_chair = chair.monitors.filter(active=True)
        if device is not None:
            others_on_chair = others_on_chair.exclude(pk=device.pk)
        if others_on_chair.exists() and active:
            errors["chair"] = f"Chair {chair} already has a monitor; take that one off the chair first."
    if errors:
        raise MonitoringValidationError(errors)
    before = device_snapshot(device) if device is not None else None
    if device is None:
        device = MonitorDevice(organization_id=user.org_id)
    device.identifier = identifier
    device.label = label.strip()
    device.chair = chair
    device.site = chair.site if chair is not None else device.site
    device.active = active
    if sources is not None:
        device.allowed_sources = sources
    record_device(user=user, device=device, before=before, request=request)
    return device


def record_device(
    *,
    user: User,
    device: MonitorDevice,
    before: dict[str, Any] | None,
    request: HttpRequest | None = None,
    detail: str = "",
) -> None:
    """Save a monitor registered (``before`` None) or changed, and audit it with its before and after."""
    device.save()
    audit.record(
        user=user,
        action=Action.ADD if before is None else Action.CHANGE,
        category=CATEGORY,
        organization=device.organization,
        object_type="MonitorDevice",
        object_id=device.pk,
        before=before,
        after=device_snapshot(device),
        request=request,
        detail=detail,
    )
