"""Site settings an administrator keeps: opening hours, nurse capacity, closures, crisis resources and the
site's policy for session alert rules. Every change is audited with before and after."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from django.http import HttpRequest

from ketaclinic.accounts.models import WEEKDAYS, Site, SiteClosure, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import alerts as alert_rules


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


def rule_overrides(site: Site) -> dict[alert_rules.AlertCode, alert_rules.RuleOverride]:
    result = {}
    for code, spec in (site.alert_overrides or {}).items():
        result[alert_rules.AlertCode(code)] = alert_rules.RuleOverride(
            source=spec.get("source", ""),
            threshold=spec.get("threshold"),
            enabled=spec.get("enabled"),
        )
    return result


def update_site(
    *,
    admin: User,
    site: Site,
    hours: dict[str, str],
    nurse_capacity: str,
    crisis_resources: str,
    alerts: dict[str, dict[str, Any]],
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
    overrides: dict[str, dict[str, Any]] = {}
    for code, spec in alerts.items():
        if code not in alert_rules.AlertCode.__members__.values():
            errors[f"alerts.{code}"] = "is not an alert rule"
            continue
        entry: dict[str, Any] = {"source": (spec.get("source") or "").strip()}
        raw = (spec.get("threshold") or "").strip()
        if raw:
            if not raw.lstrip("-").isdigit():
                errors[f"alerts.{code}.threshold"] = f"{raw!r} is not a whole number"
                continue
            entry["threshold"] = int(raw)
        if spec.get("enabled") is False:
            entry["enabled"] = False
        if len(entry) > 1:
            overrides[code] = entry
    try:
        alert_rules.resolve_alert_rules(site=rule_overrides(Site(alert_overrides=overrides)))
    except alert_rules.AlertConfigError as exc:
        errors.update({f"alerts.{k.split(':')[-1]}": v for k, v in exc.errors.items()})
    if errors:
        raise SiteSettingsError(errors)
    before = {
        "opening_hours": site.opening_hours,
        "nurse_capacity": site.nurse_capacity,
        "crisis_resources": site.crisis_resources,
        "alert_overrides": site.alert_overrides,
    }
    site.opening_hours, site.nurse_capacity = opening, capacity
    site.crisis_resources, site.alert_overrides = crisis_resources.strip(), overrides
    site.save(update_fields=["opening_hours", "nurse_capacity", "crisis_resources", "alert_overrides"])
    after = {
        "opening_hours": opening,
        "nurse_capacity": capacity,
        "crisis_resources": site.crisis_resources,
        "alert_overrides": overrides,
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
    if SiteClosure.objects.filter(site=site, day=day).exists():
        raise SiteSettingsError({"day": f"{day.isoformat()} is already closed"})
    closure = SiteClosure.objects.create(
        organization_id=site.organization_id, site=site, day=day, reason=reason.strip()[:200]
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
