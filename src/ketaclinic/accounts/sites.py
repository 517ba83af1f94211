"""Site settings an administrator keeps: opening hours, nurse capacity, closures (local closures and a year's
US public holidays in one action) and crisis resources. Every change is audited with before and after.

The site's safety-alert policy is not here: it is a clinical decision that prescribers make within the limits
of clinical/alerts.py (accounts/alert_policy.py, issue 13 point 6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.holidays import SOURCE as HOLIDAY_SOURCE
from ketaclinic.accounts.holidays import us_federal_holidays
from ketaclinic.accounts.models import WEEKDAYS, ClosureKind, Site, SiteClosure, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.core.access import ADMIN
from ketaclinic.core.errors import DomainError

REASON_MAX = SiteClosure._meta.get_field("reason").max_length or 200


class SiteSettingsError(DomainError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_hours(text: str) -> list[list[str]]:
    """'08:00-18:00' or '08:00-12:00, 13:00-17:00'; empty = closed."""
    spans = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        try:
            start, end = (time.fromisoformat(x.strip()) for x in part.split("-"))
        except ValueError:
            raise ValueError(f"{part!r} is not HH:MM-HH:MM") from None
        if start >= end:
            raise ValueError(f"{part}: opening is not before closing")
        spans.append([start.strftime("%H:%M"), end.strftime("%H:%M")])
    return spans


def update_site(
    *,
    admin: User,
    site: Site,
    hours: dict[str, str],
    nurse_capacity: str,
    crisis_resources: str,
    request: HttpRequest | None = None,
) -> Site:
    if site.organization_id != admin.organization_id:
        raise SiteSettingsError({"site": "is not a site of your organization"})
    errors: dict[str, str] = {}
    opening: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        try:
            spans = parse_hours(hours.get(day, ""))
        except ValueError as exc:
            errors[f"hours.{day}"] = str(exc)
            continue
        if spans:
            opening[day] = spans
    capacity = None
    if nurse_capacity.strip():
        if not nurse_capacity.strip().isdigit() or not 1 <= int(nurse_capacity) <= 100:
            errors["nurse_capacity"] = "enter a whole number of patients from 1 to 100, or leave empty"
        else:
            capacity = int(nurse_capacity)
    if errors:
        raise SiteSettingsError(errors)
    before = {
        "opening_hours": site.opening_hours,
        "nurse_capacity": site.nurse_capacity,
        "crisis_resources": site.crisis_resources,
    }
    site.opening_hours, site.nurse_capacity = opening, capacity
    site.crisis_resources = crisis_resources.strip()
    site.save(update_fields=["opening_hours", "nurse_capacity", "crisis_resources"])
    after = {
        "opening_hours": opening,
        "nurse_capacity": capacity,
        "crisis_resources": site.crisis_resources,
    }
    audit.record(
        user=admin,
        action=Action.CHANGE,
        category="site-settings",
        object_type="Site",
        object_id=site.pk,
        before=before,
        after=after,
        request=request,
    )
    return site


def _check_admin(admin: User, site: Site) -> None:
    if admin.role != ADMIN or site.organization_id != admin.organization_id:
        raise SiteSettingsError({"site": "is not a site of your organization that you administer"})


def add_closure(
    *,
    admin: User,
    site: Site,
    day: date,
    reason: str,
    kind: str = ClosureKind.CLOSURE,
    request: HttpRequest | None = None,
) -> SiteClosure:
    """Close ``site`` on ``day``: a local closure (training day, building works) or a public holiday. The
    scheduler and every booking then avoid the day (treatment.services.site_calendar); sessions already
    booked on it stay until staff move them (treatment.booking.bookings_on_days lists them)."""
    _check_admin(admin, site)
    text = reason.strip()
    if not text:
        raise SiteSettingsError({"reason": "say why the site is closed"})
    if len(text) > REASON_MAX:
        raise SiteSettingsError({"reason": f"is {len(text)} characters; the limit is {REASON_MAX}"})
    if kind not in ClosureKind.values:
        raise SiteSettingsError({"kind": f"{kind!r} is not one of {', '.join(ClosureKind.values)}"})
    existing = SiteClosure.objects.filter(site=site, day=day).first()
    if existing is not None:
        raise SiteSettingsError({"day": f"{day.isoformat()} is already closed ({existing.reason})"})
    closure = SiteClosure.objects.create(
        organization_id=site.organization_id,
        site=site,
        day=day,
        reason=text,
        kind=kind,
        added_by=admin,
        added_at=timezone.now(),
    )
    audit.record(
        user=admin,
        action=Action.ADD,
        category="site-settings",
        object_type="SiteClosure",
        object_id=closure.pk,
        after={"site": site.code, "day": day.isoformat(), "reason": text, "kind": kind},
        request=request,
    )
    return closure


@dataclass(frozen=True)
class HolidaysAdded:
    """What adding a year's public holidays did: the closures added, and the days already closed (kept
    as they were, with their own reason)."""

    year: int
    added: list[SiteClosure]
    already_closed: list[SiteClosure]


def add_public_holidays(
    *, admin: User, site: Site, year: int, observed: bool = True, request: HttpRequest | None = None
) -> HolidaysAdded:
    """Close ``site`` on every US federal holiday of ``year`` in one action (accounts/holidays.py), and on
    the weekday that stands in for a holiday on a weekend when ``observed``. A day already closed keeps its
    closure. One audit entry lists the days added."""
    _check_admin(admin, site)
    try:
        holidays = us_federal_holidays(year, observed=observed)
    except ValueError as exc:
        raise SiteSettingsError({"year": str(exc)}) from None
    existing = {c.day: c for c in SiteClosure.objects.filter(site=site, day__in=[h.day for h in holidays])}
    now = timezone.now()
    added: list[SiteClosure] = []
    for holiday in holidays:
        if holiday.day in existing:
            continue
        added.append(
            SiteClosure.objects.create(
                organization_id=site.organization_id,
                site=site,
                day=holiday.day,
                reason=holiday.label,
                kind=ClosureKind.PUBLIC_HOLIDAY,
                added_by=admin,
                added_at=now,
            )
        )
    audit.record(
        user=admin,
        action=Action.ADD,
        category="site-settings",
        object_type="SiteClosure",
        after={
            "site": site.code,
            "public_holidays": year,
            "observed_days": observed,
            "added": {c.day.isoformat(): c.reason for c in added},
            "already_closed": sorted(d.isoformat() for d in existing),
            "source": HOLIDAY_SOURCE,
        },
        request=request,
        detail=f"US federal holidays {year}: {len(added)} day(s) closed",
    )
    return HolidaysAdded(
        year=year, added=added, already_closed=sorted(existing.values(), key=lambda c: c.day)
    )


def remove_closure(*, admin: User, closure: SiteClosure, request: HttpRequest | None = None) -> None:
    """Open the site again on a closed day (a closure added by mistake). Audited with what was removed."""
    _check_admin(admin, closure.site)
    before = {
        "site": closure.site.code,
        "day": closure.day.isoformat(),
        "reason": closure.reason,
        "kind": closure.kind,
    }
    pk = closure.pk
    closure.delete()
    audit.record(
        user=admin,
        action=Action.DELETE,
        category="site-settings",
        object_type="SiteClosure",
        object_id=pk,
        before=before,
        request=request,
    )
