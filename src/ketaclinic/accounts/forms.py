from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from ketaclinic.accounts.alert_policy import AlertPolicyError
from ketaclinic.clinical.alerts import DEFAULT_ALERT_RULES, SEVERITIES, AlertCode, RuleOverride, Severity


class LoginForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True})
    )
    password = forms.CharField(
        max_length=1024, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
    )


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        help_text="Why you need this record now. Every administrator is alerted.",
    )


def alert_policy_values(stored: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the alert-policy table shows in its inputs for each rule, from the stored overrides."""
    values = {}
    for code in AlertCode:
        spec = stored.get(code.value) or {}
        values[code.value] = {
            "threshold": "" if spec.get("threshold") is None else str(spec["threshold"]),
            "enabled": spec.get("enabled") is not False,
            "severity": spec.get("severity") or "",
            "source": spec.get("source") or "",
        }
    return values


def posted_alert_values(post: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The same, from a posted table (shown again when the change is refused, so nothing typed is lost)."""
    return {
        code.value: {
            "threshold": post.get(f"alert_{code.value}_threshold", ""),
            "enabled": post.get(f"alert_{code.value}_enabled") == "on",
            "severity": post.get(f"alert_{code.value}_severity", ""),
            "source": post.get(f"alert_{code.value}_source", ""),
        }
        for code in AlertCode
    }


def parse_alert_policy(post: Mapping[str, str]) -> dict[AlertCode, RuleOverride | None]:
    """The posted alert-policy table as typed changes: ``{AlertCode: RuleOverride | None}`` (``None``: back to
    the reference default). A rule is in the table when its ``alert_<code>_source`` input was posted; its
    ``_enabled`` box is ticked to keep it on (always-on rules post a fixed "on"), ``_threshold`` is a whole
    number or empty, ``_severity`` empty or a severity. Raises ``AlertPolicyError`` naming each unreadable
    field; whether a value is *allowed* is the service's (clinical/alerts.py) decision, not the form's."""
    errors: dict[str, str] = {}
    changes: dict[AlertCode, RuleOverride | None] = {}
    for code in AlertCode:
        prefix = f"alert_{code.value}"
        if f"{prefix}_source" not in post:
            continue
        raw = post.get(f"{prefix}_threshold", "").strip()
        threshold = None
        if raw:
            if not raw.lstrip("-").isdigit():
                errors[f"alerts.{code.value}.threshold"] = f"{raw!r} is not a whole number"
                continue
            threshold = int(raw)
        severity_raw = post.get(f"{prefix}_severity", "").strip()
        severity = None
        if severity_raw and severity_raw not in SEVERITIES:
            errors[f"alerts.{code.value}.severity"] = f"{severity_raw!r} is not info, warning or critical"
            continue
        if severity_raw and Severity(severity_raw) is not DEFAULT_ALERT_RULES[code].severity:
            severity = Severity(severity_raw)
        enabled = None if post.get(f"{prefix}_enabled") == "on" else False
        if threshold is None and enabled is None and severity is None:
            changes[code] = None
        else:
            changes[code] = RuleOverride(
                source=post.get(f"{prefix}_source", ""),
                threshold=threshold,
                enabled=enabled,
                severity=severity,
            )
    if errors:
        raise AlertPolicyError(errors)
    return changes
