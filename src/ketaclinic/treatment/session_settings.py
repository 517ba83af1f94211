"""Per-protocol session settings (issue: sessions, items 4–5): reading cadence and alert-rule changes a clinic
sets for one protocol. Resolution order for alerts: reference defaults, then the site, then the protocol."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpRequest

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.clinical import vitals as vital_rules
from ketaclinic.treatment.models import ProtocolSessionSettings


class SettingsError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def settings_for(organization_id: int, protocol_key: str) -> ProtocolSessionSettings | None:
    return ProtocolSessionSettings.objects.filter(
        organization_id=organization_id, protocol_key=protocol_key
    ).first()


def parse_alert_lines(text: str) -> dict[str, dict[str, Any]]:
    """One change per line: ``sbp_high 170`` (new threshold) or ``hr_low off``."""
    errors: dict[str, str] = {}
    result: dict[str, dict[str, Any]] = {}
    for number, line in enumerate((ln.strip() for ln in text.splitlines()), start=1):
        if not line:
            continue
        parts = line.split()
        code = parts[0]
        if code not in {c.value for c in alert_rules.AlertCode}:
            errors[f"alerts.line{number}"] = f"{code!r} is not an alert rule"
            continue
        if len(parts) != 2:
            errors[f"alerts.line{number}"] = f"{line!r}: write the rule and a threshold or 'off'"
            continue
        if parts[1] == "off":
            result[code] = {"enabled": False}
        elif parts[1].isdigit():
            result[code] = {"threshold": int(parts[1])}
        else:
            errors[f"alerts.line{number}"] = f"{parts[1]!r} is not a whole number or 'off'"
    if errors:
        raise SettingsError(errors)
    return result


def rule_overrides(
    row: ProtocolSessionSettings | None,
) -> dict[alert_rules.AlertCode, alert_rules.RuleOverride]:
    if row is None:
        return {}
    return {
        alert_rules.AlertCode(code): alert_rules.RuleOverride(
            source=row.source, threshold=spec.get("threshold"), enabled=spec.get("enabled")
        )
        for code, spec in (row.alert_overrides or {}).items()
    }


def cadence(
    row: ProtocolSessionSettings | None, treatment: vital_rules.Treatment
) -> vital_rules.Cadence | None:
    """The protocol's cadence if the clinic set one, else the reference default (None: no default exists)."""
    try:
        base: vital_rules.Cadence | None = vital_rules.default_cadence(treatment)
    except ValueError:
        base = None
    if row is None:
        return base
    source = f"clinic protocol setting: {row.source}"
    if isinstance(base, vital_rules.CheckpointCadence):
        return replace(base, then_every_min=row.then_every_min) if row.then_every_min else base
    if row.reading_every_min:
        return vital_rules.IntervalCadence(
            during_infusion_every_min=row.reading_every_min,
            after_infusion_every_min=row.after_every_min or row.reading_every_min,
            source=source,
            confirmed=True,
        )
    return base


def save_settings(
    *, admin: User, protocol_key: str, data: dict[str, str], request: HttpRequest | None = None
) -> ProtocolSessionSettings:
    errors: dict[str, str] = {}
    numbers: dict[str, int | None] = {}
    for name in ("reading_every_min", "after_every_min", "then_every_min"):
        raw = (data.get(name) or "").strip()
        if not raw:
            numbers[name] = None
        elif not raw.isdigit() or not 1 <= int(raw) <= 120:
            errors[name] = "enter whole minutes from 1 to 120, or leave empty"
        else:
            numbers[name] = int(raw)
    try:
        overrides = parse_alert_lines(data.get("alerts", ""))
    except SettingsError as exc:
        errors.update(exc.errors)
        overrides = {}
    source = (data.get("source") or "").strip()
    changed = any(numbers.values()) or overrides
    if changed and not source:
        errors["source"] = "name the clinic policy these settings come from"
    if not errors:
        probe = ProtocolSessionSettings(alert_overrides=overrides, source=source)
        try:
            alert_rules.resolve_alert_rules(protocol=rule_overrides(probe))
        except alert_rules.AlertConfigError as exc:
            errors.update({f"alerts.{k.split(':')[-1]}": v for k, v in exc.errors.items()})
    if errors:
        raise SettingsError(errors)
    row, _ = ProtocolSessionSettings.objects.get_or_create(
        organization_id=admin.org_id, protocol_key=protocol_key, defaults={"updated_by": admin}
    )
    before = {
        "reading_every_min": row.reading_every_min,
        "after_every_min": row.after_every_min,
        "then_every_min": row.then_every_min,
        "alert_overrides": row.alert_overrides,
        "source": row.source,
    }
    for name, value in numbers.items():
        setattr(row, name, value)
    row.alert_overrides, row.source, row.updated_by = overrides, source, admin
    row.save()
    audit.record(
        user=admin,
        action=Action.CHANGE,
        category="protocol-settings",
        object_type="ProtocolSessionSettings",
        object_id=row.pk,
        before=before,
        after={**numbers, "alert_overrides": overrides, "source": source},
        request=request,
    )
    return row
