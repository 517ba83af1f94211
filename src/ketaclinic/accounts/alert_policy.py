"""A site's safety-alert policy (issue 13, point 6): who may change it, within which limits, and how each change
is shown.

* **Who.** Only a prescriber changes it (``change_site_alerts``), and only at a site they work at
  (``accounts.services.covered_sites``); administrators and nurses of the site may read it. It used to sit in
  the administrators' site-settings form, where "SBP alert 400, source 'x', SpO2 alert off" was accepted: an
  alert threshold is a clinical decision, and the person who answers for it at the chair makes it.
* **Within which limits.** The pure rules in clinical/alerts.py (floors and ceilings, always-on rules,
  severity never lowered, a real source). This module refuses exactly what ``resolve_alert_rules`` refuses,
  with its message naming the rule, the value and the bound.
* **Shown.** Every change is audited with before and after, in the request's transaction, and kept as one
  ``SafetySettingChange`` row per rule, so the page shows for each rule whether it is the reference default or
  the clinic's change, who made it and when, and the site's history. (Reading "who and when" from the audit log
  would scan the organization's whole log on every page view; the small table is the page's index and the
  audit log stays the record.)
* **Old settings.** A setting stored before these limits existed is not applied at the chair
  (``clinical.alerts.applicable_alert_rules``: the reference default applies) and the page marks it until a
  prescriber corrects it; a session never stops because of a bad setting.

Services never commit; the request owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import SafetySettingChange, Site, User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.core.errors import DomainError

CATEGORY = "alert-policy"
AlertCode = alert_rules.AlertCode


class AlertPolicyError(DomainError):
    """A refused change; ``errors`` maps each form field to a message a prescriber can act on."""

    status = 422

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class AlertPolicyForbidden(AlertPolicyError):
    status = 403


class AlertPolicyNotFound(AlertPolicyError):
    status = 404


# --- stored form <-> rule overrides ----------------------------------------------------------------------


def override_from_json(spec: Mapping[str, Any]) -> alert_rules.RuleOverride:
    severity = spec.get("severity")
    return alert_rules.RuleOverride(
        source=str(spec.get("source") or ""),
        threshold=spec.get("threshold"),
        enabled=spec.get("enabled"),
        severity=alert_rules.Severity(severity) if severity in alert_rules.SEVERITIES else None,
    )


def override_to_json(change: alert_rules.RuleOverride) -> dict[str, Any]:
    """Only what the override changes, plus its source; the form ``{"source", "threshold"?, "enabled"?,
    "severity"?}`` that ``Site.alert_overrides`` and ``ProtocolSessionSettings.alert_overrides`` hold."""
    entry: dict[str, Any] = {"source": " ".join(change.source.split())}
    if change.threshold is not None:
        entry["threshold"] = change.threshold
    if change.enabled is False:
        entry["enabled"] = False
    if change.severity is not None:
        entry["severity"] = change.severity.value
    return entry


def rule_overrides(site: Site) -> dict[alert_rules.AlertCode, alert_rules.RuleOverride]:
    """The site's stored overrides (unknown codes, left by an older version, are ignored)."""
    return {
        AlertCode(code): override_from_json(spec)
        for code, spec in (site.alert_overrides or {}).items()
        if code in alert_rules.ALERT_CODES and isinstance(spec, dict)
    }


# --- reading ---------------------------------------------------------------------------------------------


def viewable_site(user: User, site_id: Any) -> Site:
    """A site whose alert policy ``user`` may see (their organization and sites), else 404."""
    site = next((s for s in covered_sites(user) if str(s.pk) == str(site_id)), None)
    if site is None:
        raise AlertPolicyNotFound({"site": "no such site"})
    return site


def may_change(user: User, site: Site) -> bool:
    return user.role == PRESCRIBER and any(s.pk == site.pk for s in covered_sites(user))


@dataclass(frozen=True)
class RuleRow:
    """One rule as the page shows it."""

    code: str
    label: str
    reference: alert_rules.AlertRule
    bounds: alert_rules.ThresholdBounds | None
    always_on: str  # the reason it cannot be switched off; "" when it may be
    severities: list[str]  # the severities a clinic may choose (the reference's and above)
    stored: dict[str, Any]  # the stored override ({} = the reference default)
    effective: alert_rules.AlertRule  # what sessions at the site use (before any protocol setting)
    not_applied: str  # why the stored override is not used, or ""
    last_change: SafetySettingChange | None

    @property
    def is_clinic_change(self) -> bool:
        return self.effective.origin is not alert_rules.RuleOrigin.DEFAULT

    @property
    def in_use(self) -> str:
        return rule_text(self.effective)

    @property
    def reference_text(self) -> str:
        return rule_text(self.reference)


@dataclass(frozen=True)
class HistoryRow:
    change: SafetySettingChange
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class SitePolicy:
    site: Site
    rows: list[RuleRow]
    history: list[HistoryRow]


def _unit(code: alert_rules.AlertCode) -> str:
    bounds = alert_rules.THRESHOLD_BOUNDS.get(code)
    if bounds is None or not bounds.unit:
        return ""
    return bounds.unit if bounds.unit == "%" else f" {bounds.unit}"


def rule_text(rule: alert_rules.AlertRule) -> str:
    """'SBP ≥ 170 mmHg · critical', or '… · off'."""
    condition = rule.condition
    if rule.threshold is not None:
        condition = condition.replace("threshold", f"{rule.threshold}{_unit(rule.code)}")
    return f"{condition} · {rule.severity.value if rule.enabled else 'off'}"


def describe_setting(setting: str, spec: Mapping[str, Any]) -> str:
    """A stored override (or cadence setting) in words, for the history."""
    if not spec:
        return "reference default"
    if setting not in alert_rules.ALERT_CODES:
        return f"every {spec.get('minutes')} min" if spec.get("minutes") else "protocol default"
    code = AlertCode(setting)
    parts = []
    if spec.get("threshold") is not None:
        parts.append(f"{spec['threshold']}{_unit(code)}")
    if spec.get("severity"):
        parts.append(str(spec["severity"]))
    if spec.get("enabled") is False:
        parts.append("switched off")
    return ", ".join(parts) or "reference default"


def setting_label(setting: str) -> str:
    if setting in alert_rules.ALERT_CODES:
        return alert_rules.ALERT_LABELS[AlertCode(setting)]
    return {
        "reading_every_min": "Reading interval (during dosing / first hour)",
        "after_every_min": "Reading interval (after)",
        "then_every_min": "Esketamine: reading interval after the label's checkpoints",
    }.get(setting, setting)


def history_rows(changes: list[SafetySettingChange]) -> list[HistoryRow]:
    return [
        HistoryRow(
            change=c,
            label=setting_label(c.setting),
            before=describe_setting(c.setting, c.before),
            after=describe_setting(c.setting, c.after),
        )
        for c in changes
    ]


_SEVERITY_ORDER = [alert_rules.Severity.INFO, alert_rules.Severity.WARNING, alert_rules.Severity.CRITICAL]


def rule_rows(
    stored: Mapping[str, Any],
    resolved: alert_rules.ResolvedAlertRules,
    origin: alert_rules.RuleOrigin,
    history: list[SafetySettingChange],
) -> list[RuleRow]:
    """The page's table for one layer (site or protocol): shared by the site page and the protocol page."""
    last: dict[str, SafetySettingChange] = {}
    for change in history:  # newest first
        last.setdefault(change.setting, change)
    rows = []
    for code in AlertCode:
        reference = alert_rules.DEFAULT_ALERT_RULES[code]
        rows.append(
            RuleRow(
                code=code.value,
                label=alert_rules.ALERT_LABELS[code],
                reference=reference,
                bounds=alert_rules.THRESHOLD_BOUNDS.get(code),
                always_on=alert_rules.ALWAYS_ON.get(code, ""),
                severities=[s.value for s in _SEVERITY_ORDER[_SEVERITY_ORDER.index(reference.severity) :]],
                stored=dict(stored.get(code.value) or {}),
                effective=resolved.rules[code],
                not_applied=resolved.not_applied.get(f"{origin.value}:{code.value}", ""),
                last_change=last.get(code.value),
            )
        )
    return rows


def site_policy(site: Site) -> SitePolicy:
    history = list(SafetySettingChange.objects.filter(site=site).select_related("changed_by"))
    resolved = alert_rules.applicable_alert_rules(site=rule_overrides(site))
    rows = rule_rows(site.alert_overrides or {}, resolved, alert_rules.RuleOrigin.SITE, history)
    return SitePolicy(site=site, rows=rows, history=history_rows(history[:50]))


# --- changing --------------------------------------------------------------------------------------------


def change_site_alerts(
    *,
    by: User,
    site: Site,
    changes: Mapping[alert_rules.AlertCode, alert_rules.RuleOverride | None],
    request: HttpRequest | None = None,
) -> list[str]:
    """Set the site's override of each rule in ``changes`` (``None``: back to the reference default); rules not
    named keep their setting. Returns the codes that changed (nothing is written when none did).

    Refused: anyone but a prescriber (403); a site outside the prescriber's organization and sites (404); any
    override outside clinical/alerts.py's limits (422, every problem named, nothing saved)."""
    if by.role != PRESCRIBER:
        raise AlertPolicyForbidden({"role": "only a prescriber may change the safety-alert settings"})
    if not may_change(by, site):
        raise AlertPolicyNotFound({"site": "no such site"})
    stored = dict(site.alert_overrides or {})
    proposed_overrides = dict(rule_overrides(site))
    for code, change in changes.items():
        if change is None:
            proposed_overrides.pop(code, None)
        else:
            proposed_overrides[code] = change
    try:
        alert_rules.resolve_alert_rules(site=proposed_overrides)
    except alert_rules.AlertConfigError as exc:
        raise AlertPolicyError({f"alerts.{key.split(':')[-1]}": v for key, v in exc.errors.items()}) from None
    after_all = {code.value: override_to_json(o) for code, o in proposed_overrides.items()}
    changed = sorted(
        code for code in {*stored, *after_all} if (stored.get(code) or {}) != (after_all.get(code) or {})
    )
    if not changed:
        return []
    now = timezone.now()
    site.alert_overrides = after_all
    site.save(update_fields=["alert_overrides"])
    SafetySettingChange.objects.bulk_create(
        SafetySettingChange(
            organization_id=site.organization_id,
            site=site,
            setting=code,
            before=stored.get(code) or {},
            after=after_all.get(code) or {},
            source=str((after_all.get(code) or {}).get("source", "")),
            changed_by=by,
            changed_at=now,
        )
        for code in changed
    )
    audit.record(
        user=by,
        action=Action.CHANGE,
        category=CATEGORY,
        object_type="Site",
        object_id=site.pk,
        before={code: stored.get(code) or {} for code in changed},
        after={code: after_all.get(code) or {} for code in changed},
        request=request,
        detail=f"safety-alert settings at {site.code}: {', '.join(changed)}",
    )
    return changed
