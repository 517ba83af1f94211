"""Site settings an administrator keeps: opening hours, nurse capacity, closures and crisis resources. Every
change is audited with before and after.

The site's safety-alert policy is not here: it is a clinical decision that prescribers make within the limits
of clinical/alerts.py (accounts/alert_policy.py, issue 13 point 6)."""

from __future__ import annotations

from datetime import date, time

from django.http import HttpRequest

from ketaclinic.accounts.models import WEEKDAYS, Site, SiteClosure, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.core.limits import too_long


class SiteSettingsError(Exception):
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


def add_closure(
    *, admin: User, site: Site, day: date, reason: str, request: HttpRequest | None = None
) -> SiteClosure:
    if not reason.strip():
        raise SiteSettingsError({"reason": "say why the site is closed"})
    limit = SiteClosure._meta.get_field("reason").max_length or 0
    if (problem := too_long(reason.strip(), label="The reason", limit=limit)) is not None:
        raise SiteSettingsError({"reason": problem})
    if SiteClosure.objects.filter(site=site, day=day).exists():
        raise SiteSettingsError({"day": f"{day.isoformat()} is already closed"})
    closure = SiteClosure.objects.create(
        organization_id=site.organization_id, site=site, day=day, reason=reason.strip()
    )
    audit.record(
        user=admin,
        action=Action.ADD,
        category="site-settings",
        object_type="SiteClosure",
        object_id=closure.pk,
        after={"site": site.code, "day": day.isoformat(), "reason": reason.strip()},
        request=request,
    )
    return closure
