"""Per-protocol session settings: the reading cadence and the alert-rule changes a clinic sets for one protocol,
and how a session's cadence and alert rules are put together.

Both are safety settings (issue 13, points 6–7), so, like a site's alert policy (accounts/alert_policy.py):

* only a prescriber changes them (``save_settings``); administrators and nurses read them on the protocol page;
* within limits that live in the pure rules: reading intervals within ``DOSING_INTERVAL_LIMIT`` /
  ``RECOVERY_INTERVAL_LIMIT`` (clinical/vitals.py), alert overrides within clinical/alerts.py's floors,
  ceilings, always-on rules and severity, each with a real source;
* each change audited with before and after and kept as a ``SafetySettingChange`` row per setting, so the page
  shows who changed what and when.

Resolution. Alerts: reference defaults, then the site's policy, then the protocol's settings
(``session_alert_rules``; a stored setting outside the limits is skipped, never fatal). Cadence: the route's
default (clinical/vitals.default_cadence), then the protocol's own monitoring plan
(``MonitoringPlan.vitals_during_dose_every_min`` / ``vitals_after_dose_every_min``), then the clinic's setting
here (``session_cadence``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts import alert_policy
from ketaclinic.accounts.models import SafetySettingChange, Site, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.clinical import vitals as vital_rules
from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.clinical.protocols import MonitoringPlan
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.core.errors import DomainError
from ketaclinic.treatment.models import ProtocolSessionSettings

CADENCE_FIELDS = {
    "reading_every_min": vital_rules.DOSING_INTERVAL_LIMIT,
    "after_every_min": vital_rules.RECOVERY_INTERVAL_LIMIT,
    "then_every_min": vital_rules.RECOVERY_INTERVAL_LIMIT,
}


class SettingsError(DomainError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class SettingsForbidden(SettingsError):
    status = 403


def settings_for(organization_id: int, protocol_key: str) -> ProtocolSessionSettings | None:
    return ProtocolSessionSettings.objects.filter(
        organization_id=organization_id, protocol_key=protocol_key
    ).first()


def parse_alert_lines(text: str) -> dict[str, dict[str, Any]]:
    """One change per line: ``sbp_high 170`` (new threshold), ``hr_low off`` or ``sbp_rise critical``."""
    errors: dict[str, str] = {}
    result: dict[str, dict[str, Any]] = {}
    for number, line in enumerate((ln.strip() for ln in text.splitlines()), start=1):
        if not line:
            continue
        parts = line.split()
        code = parts[0]
        if code not in alert_rules.ALERT_CODES:
            errors[f"alerts.line{number}"] = f"{code!r} is not an alert rule"
            continue
        if len(parts) != 2:
            errors[f"alerts.line{number}"] = f"{line!r}: write the rule and a threshold, a severity or 'off'"
            continue
        entry = result.setdefault(code, {})
        if parts[1] == "off":
            entry["enabled"] = False
        elif parts[1] in alert_rules.SEVERITIES:
            entry["severity"] = parts[1]
        elif parts[1].lstrip("-").isdigit():
            entry["threshold"] = int(parts[1])
        else:
            errors[f"alerts.line{number}"] = f"{parts[1]!r} is not a whole number, a severity or 'off'"
    if errors:
        raise SettingsError(errors)
    return result


def rule_overrides(
    row: ProtocolSessionSettings | None,
) -> dict[alert_rules.AlertCode, alert_rules.RuleOverride]:
    """The protocol's stored overrides; they share the row's one ``source`` (the clinic policy named)."""
    if row is None:
        return {}
    return {
        alert_rules.AlertCode(code): alert_policy.override_from_json({**spec, "source": row.source})
        for code, spec in (row.alert_overrides or {}).items()
        if code in alert_rules.ALERT_CODES
    }


def session_alert_rules(
    *, site: Site, organization_id: int, protocol_key: str
) -> alert_rules.ResolvedAlertRules:
    """The rules a session uses: reference defaults, then the site's policy, then the protocol's settings.
    A stored setting outside the limits is skipped (``not_applied``), so a session never stops on it."""
    return alert_rules.applicable_alert_rules(
        site=alert_policy.rule_overrides(site),
        protocol=rule_overrides(settings_for(organization_id, protocol_key)),
    )


# --- cadence ---------------------------------------------------------------------------------------------


def protocol_monitoring(
    organization_id: int, protocol_key: str, version: int | None
) -> MonitoringPlan | None:
    """The monitoring plan of the protocol version a session runs (built-in first, then the clinic's copy)."""
    builtin = PROTOCOLS.get(protocol_key)
    if builtin is not None and (version is None or builtin.version == version):
        return builtin.monitoring
    from django.db.models import Q

    from ketaclinic.treatment.library import as_protocol
    from ketaclinic.treatment.models import ProtocolVersion

    rows = ProtocolVersion.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=organization_id), key=protocol_key
    )
    row = (rows.filter(version=version) if version is not None else rows).order_by("-version").first()
    if row is None:
        return builtin.monitoring if builtin is not None else None
    return as_protocol(row).monitoring


def cadence(
    row: ProtocolSessionSettings | None,
    treatment: vital_rules.Treatment,
    *,
    monitoring: MonitoringPlan | None = None,
) -> vital_rules.Cadence:
    """The route default, then the protocol's monitoring plan, then the clinic's setting in ``row``.

    A value outside the limits (stored before they existed) is skipped here, so the step before it applies;
    the settings form refuses such values."""
    base: vital_rules.Cadence = vital_rules.default_cadence(treatment)
    if monitoring is not None:
        try:
            base = vital_rules.protocol_cadence(
                treatment,
                during_every_min=monitoring.vitals_during_dose_every_min,
                after_every_min=monitoring.vitals_after_dose_every_min,
                source=monitoring.source,
            )
        except ValueError:
            pass  # an out-of-limit plan cannot be saved any more; an old one falls back to the route default
    if row is None:
        return base

    def allowed(name: str) -> int | None:
        value: int | None = getattr(row, name)
        if value is None or vital_rules.interval_problem(value, CADENCE_FIELDS[name]) is not None:
            return None
        return value

    source = f"clinic protocol setting: {row.source}"
    every, after, then = allowed("reading_every_min"), allowed("after_every_min"), allowed("then_every_min")
    if isinstance(base, vital_rules.CheckpointCadence):
        return replace(base, then_every_min=then) if then else base
    if not every and not after:
        return base
    if isinstance(base, vital_rules.IntervalCadence):
        return replace(
            base,
            during_infusion_every_min=every or base.during_infusion_every_min,
            after_infusion_every_min=after or every or base.after_infusion_every_min,
            source=source,
            confirmed=True,
        )
    return replace(
        base,
        early_every_min=every or base.early_every_min,
        then_every_min=after or every or base.then_every_min,
        source=source,
        confirmed=True,
    )


def session_cadence(
    *, organization_id: int, protocol_key: str, protocol_version: int | None, treatment: vital_rules.Treatment
) -> vital_rules.Cadence:
    """The reading cadence of a session (never ``None``: every route has a default)."""
    return cadence(
        settings_for(organization_id, protocol_key),
        treatment,
        monitoring=protocol_monitoring(organization_id, protocol_key, protocol_version),
    )


# --- the protocol page -----------------------------------------------------------------------------------


def protocol_policy(
    organization_id: int, protocol_key: str, *, treatment: vital_rules.Treatment | None = None
) -> dict[str, Any]:
    """What the protocol page shows: the reading cadence its sessions use (with its source), each alert rule
    the protocol changes (a site's policy, which differs per site, is left out) and the history of changes."""
    row = settings_for(organization_id, protocol_key)
    in_use = (
        cadence(row, treatment, monitoring=protocol_monitoring(organization_id, protocol_key, None))
        if treatment is not None
        else None
    )
    history = list(
        SafetySettingChange.objects.filter(
            organization_id=organization_id, site__isnull=True, protocol_key=protocol_key
        ).select_related("changed_by")
    )
    resolved = alert_rules.applicable_alert_rules(protocol=rule_overrides(row))
    rows = alert_policy.rule_rows(
        (row.alert_overrides if row else None) or {}, resolved, alert_rules.RuleOrigin.PROTOCOL, history
    )
    return {
        "row": row,
        "cadence": in_use,
        "cadence_text": vital_rules.describe_cadence(in_use) if in_use is not None else "",
        "rules": [r for r in rows if r.stored or r.not_applied],
        "history": alert_policy.history_rows(history[:50]),
        "limits": CADENCE_FIELDS,
    }


def save_settings(
    *, by: User, protocol_key: str, data: dict[str, str], request: HttpRequest | None = None
) -> ProtocolSessionSettings:
    """Save the clinic's session settings for a protocol (the whole set; empty = the default).

    Refused: anyone but a prescriber (403); an interval or alert change outside the limits, or changes without a
    real source (422, every field named, nothing saved)."""
    if by.role != PRESCRIBER:
        raise SettingsForbidden({"role": "only a prescriber may change a protocol's session settings"})
    organization_id = by.organization_id
    if organization_id is None:
        raise SettingsForbidden({"organization": "your account belongs to no clinic"})
    errors: dict[str, str] = {}
    numbers: dict[str, int | None] = {}
    for name, limit in CADENCE_FIELDS.items():
        raw = (data.get(name) or "").strip()
        if not raw:
            numbers[name] = None
        elif not raw.isdigit():
            errors[name] = f"{raw!r} is not a whole number of minutes"
        elif (problem := vital_rules.interval_problem(int(raw), limit)) is not None:
            errors[name] = problem
        else:
            numbers[name] = int(raw)
    try:
        overrides = parse_alert_lines(data.get("alerts", ""))
    except SettingsError as exc:
        errors.update(exc.errors)
        overrides = {}
    source = " ".join((data.get("source") or "").split())
    changed_any = any(numbers.values()) or overrides
    if changed_any and (problem := alert_rules.source_problem(source)) is not None:
        errors["source"] = problem
    if not errors:
        probe = ProtocolSessionSettings(alert_overrides=overrides, source=source)
        try:
            alert_rules.resolve_alert_rules(protocol=rule_overrides(probe))
        except alert_rules.AlertConfigError as exc:
            errors.update({f"alerts.{k.split(':')[-1]}": v for k, v in exc.errors.items()})
    if errors:
        raise SettingsError(errors)
    row, _ = ProtocolSessionSettings.objects.get_or_create(
        organization_id=organization_id, protocol_key=protocol_key, defaults={"updated_by": by}
    )
    before_numbers = {name: getattr(row, name) for name in CADENCE_FIELDS}
    before_alerts: dict[str, Any] = dict(row.alert_overrides or {})
    before = {**before_numbers, "alert_overrides": before_alerts, "source": row.source}
    for name, value in numbers.items():
        setattr(row, name, value)
    row.alert_overrides, row.source, row.updated_by = overrides, source, by
    row.save()
    now = timezone.now()
    changes: list[tuple[str, Any, Any]] = [
        (name, _minutes(before_numbers[name]), _minutes(numbers[name]))
        for name in CADENCE_FIELDS
        if before_numbers[name] != numbers[name]
    ]
    changes += [
        (code, before_alerts.get(code), overrides.get(code))
        for code in sorted({*before_alerts, *overrides})
        if before_alerts.get(code) != overrides.get(code)
    ]
    history = [
        SafetySettingChange(
            organization_id=organization_id,
            protocol_key=protocol_key,
            setting=setting,
            before=old or {},
            after=new or {},
            source=source,
            changed_by=by,
            changed_at=now,
        )
        for setting, old, new in changes
    ]
    SafetySettingChange.objects.bulk_create(history)
    audit.record(
        user=by,
        action=Action.CHANGE,
        category="protocol-settings",
        object_type="ProtocolSessionSettings",
        object_id=row.pk,
        before=before,
        after={**numbers, "alert_overrides": overrides, "source": source},
        request=request,
        detail=f"session settings of {protocol_key}",
    )
    return row


def _minutes(value: int | None) -> dict[str, int]:
    return {} if value is None else {"minutes": value}
