"""Initial assessment and eligibility screening: the entry point.

Pure: no Django, no I/O. ``screen(snapshot)`` runs every rule for each candidate drug and returns the
findings and a decision per drug. Shapes live in ``screening_model.py``; rules in ``screening_rules.py``,
``screening_workup.py``, ``screening_consistency.py`` and ``screening_medications.py`` (their docstrings explain
how each severity was chosen).

Decision precedence, per drug (and optionally route):

1. any ``contraindicated`` finding → ``not_eligible`` (a known contraindication decides even when other
   information is missing);
2. otherwise any ``missing_information`` → ``incomplete``;
3. otherwise any ``caution`` or ``interaction`` → ``eligible_with_cautions``;
4. otherwise ``eligible``.

A prescriber may override a ``not_eligible`` decision for one patient with a written reason, except where an
*absolute* contraindication applies (the esketamine label's own contraindications, clinical.md §2.5):
``override_check(findings, drug=...)`` is the one decision every path asks (screening page, services,
plan clearance, the pre-dose gate). It reads only finding codes, so it also judges findings stored before
the rule existed.

``intake_fingerprint(snapshot)`` is a stable SHA-256 of the snapshot's canonical JSON: the app stores it
with a screening and marks the screening stale when the intake's fingerprint changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date
from enum import Enum
from typing import Any, Final

from ketaclinic.clinical.conditions import DRUG_LABELS, Drug, Route
from ketaclinic.clinical.screening_consistency import consistency_findings
from ketaclinic.clinical.screening_medications import (
    INTERACTION_RULES,
    TrdAssessment,
    assess_treatment_resistance,
    indication_findings,
    medication_findings,
)
from ketaclinic.clinical.screening_model import (
    DEFAULT_SCREENING_CONFIG,
    Answer,
    AntidepressantTrial,
    CardiacEvaluation,
    ChildbearingPotential,
    Decision,
    Finding,
    HepaticImpairment,
    IntakeSnapshot,
    Labs,
    MedicalHistory,
    Medication,
    MedicationClass,
    NotChildbearingReason,
    ScreeningConfig,
    ScreeningConfigError,
    Severity,
    TrialOutcome,
)
from ketaclinic.clinical.screening_rules import (
    ABSOLUTE_AUTHORITY,
    ABSOLUTE_CONTRAINDICATIONS,
    ABSOLUTE_ESKETAMINE_CODES,
    HISTORY_RULES,
    history_findings,
)
from ketaclinic.clinical.screening_workup import workup_findings

__all__ = [
    "Answer",
    "AntidepressantTrial",
    "CardiacEvaluation",
    "ChildbearingPotential",
    "Decision",
    "Finding",
    "HepaticImpairment",
    "IntakeSnapshot",
    "Labs",
    "MedicalHistory",
    "Medication",
    "MedicationClass",
    "NotChildbearingReason",
    "OverrideCheck",
    "ScreeningConfig",
    "ScreeningConfigError",
    "ScreeningResult",
    "Severity",
    "TrialOutcome",
    "decide",
    "intake_fingerprint",
    "override_check",
    "screen",
    "validate_config",
]

FINGERPRINT_VERSION: Final = "intake-v1"

#: Codes of findings a clinic may re-grade with ScreeningConfig.severity_overrides.
OVERRIDABLE_CODES: Final = frozenset(
    {r.code for r in HISTORY_RULES}
    | {r.code for r in INTERACTION_RULES}
    | {
        "hepatic_impairment",
        "recent_cardiovascular_event",
        "past_cardiovascular_event",
        "baseline_bp_elevated",
        "baseline_bp_remeasured",
        "childbearing_potential",
        "ecg_abnormal",
        "stop_bang_high",
        "moca_low",
        "under_18",
        "age_24_or_under",
        "age_65_or_over",
        "rems_not_enrolled",
        "alcohol_sedation",
        "benzodiazepine_blunting",
        "esketamine_off_label",
        "trd_not_established",
        "bipolar_no_mood_stabiliser",
        "ymrs_above_limit",
    }
)

_ORDER: Final = {
    Severity.CONTRAINDICATED: 0,
    Severity.MISSING_INFORMATION: 1,
    Severity.CAUTION: 2,
    Severity.INTERACTION: 3,
}


def validate_config(config: ScreeningConfig) -> dict[str, str]:
    """Return field -> reason for every invalid setting (empty when valid)."""
    errors: dict[str, str] = {}
    if config.trd_min_failed_trials < 1:
        errors["trd_min_failed_trials"] = "must be 1 or more"
    if not 1 <= config.trd_adequate_weeks <= 52:
        errors["trd_adequate_weeks"] = "must be between 1 and 52 weeks"
    if config.benzodiazepine_blunting_mg_per_day <= 0:
        errors["benzodiazepine_blunting_mg_per_day"] = "must be more than 0"
    if config.recent_cardiovascular_event_days < 1:
        errors["recent_cardiovascular_event_days"] = "must be 1 day or more"
    if not 0 <= config.moca_minimum <= 30:
        errors["moca_minimum"] = "MoCA runs from 0 to 30"
    if not config.bp_systolic_limit < config.bp_stop_systolic <= 300:
        errors["bp_stop_systolic"] = (
            f"must be above the pre-dose limit {config.bp_systolic_limit} and at most 300"
        )
    if not config.bp_diastolic_limit < config.bp_stop_diastolic <= 200:
        errors["bp_stop_diastolic"] = (
            f"must be above the pre-dose limit {config.bp_diastolic_limit} and at most 200"
        )
    if not 0 <= config.stop_bang_caution_minimum <= 8:
        errors["stop_bang_caution_minimum"] = "STOP-BANG runs from 0 to 8"
    for key, severity in config.severity_overrides.items():
        code, _, drug_name = key.partition("@")
        path = f"severity_overrides[{key}]"
        if code not in OVERRIDABLE_CODES:
            errors[path] = "unknown finding code"
            continue
        if drug_name and drug_name not in {d.value for d in Drug}:
            errors[path] = "unknown drug (use ketamine or esketamine)"
            continue
        if severity is Severity.MISSING_INFORMATION:
            errors[path] = "a rule cannot be turned into missing information"
        elif (
            code in ABSOLUTE_ESKETAMINE_CODES
            and drug_name in ("", Drug.ESKETAMINE.value)
            and severity is not Severity.CONTRAINDICATED
        ):
            errors[path] = "an esketamine label contraindication cannot be lowered"
    return errors


def _apply_overrides(findings: Iterable[Finding], overrides: Mapping[str, Severity]) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        new: Severity | None = None
        if f.severity is not Severity.MISSING_INFORMATION and len(f.drugs) == 1:
            (drug,) = f.drugs
            new = overrides.get(f"{f.code}@{drug.value}", overrides.get(f.code))
        if new is not None and new is not f.severity:
            f = replace(
                f,
                severity=new,
                source=f"{f.source} (set to {new.value} by clinic; default {f.severity.value})",
            )
        out.append(f)
    return out


def _applies(finding: Finding, drug: Drug, route: Route | None) -> bool:
    if drug not in finding.drugs:
        return False
    return route is None or finding.routes is None or route in finding.routes


def decide(findings: Iterable[Finding], *, drug: Drug, route: Route | None = None) -> Decision:
    """Apply the precedence in the module docstring to the findings that concern ``drug`` (and ``route``)."""
    severities = {f.severity for f in findings if _applies(f, drug, route)}
    if Severity.CONTRAINDICATED in severities:
        return Decision.NOT_ELIGIBLE
    if Severity.MISSING_INFORMATION in severities:
        return Decision.INCOMPLETE
    if severities & {Severity.CAUTION, Severity.INTERACTION}:
        return Decision.ELIGIBLE_WITH_CAUTIONS
    return Decision.ELIGIBLE


@dataclass(frozen=True)
class OverrideCheck:
    """May a prescriber override ``drug``'s decision for this patient with a written reason?

    ``absolute`` holds the findings that forbid it (absolute contraindications, e.g. the SPRAVATO label's).
    """

    drug: Drug
    decision: Decision
    absolute: tuple[Finding, ...]

    @property
    def overridable(self) -> bool:
        return self.decision is Decision.NOT_ELIGIBLE and not self.absolute

    @property
    def refusal(self) -> str:
        """Why no override is possible, for staff ("" when one is)."""
        label = DRUG_LABELS[self.drug]
        if self.absolute:
            authority = ABSOLUTE_AUTHORITY.get(self.drug, "its label")
            names = ABSOLUTE_CONTRAINDICATIONS[self.drug]
            found = "; ".join(names.get(f.code, f.reason) for f in self.absolute)
            sources = "; ".join(dict.fromkeys(f.source for f in self.absolute))
            return (
                f"{label} is contraindicated by {authority}: cannot be overridden for a patient "
                f"({found}; source {sources})."
            )
        if self.decision is not Decision.NOT_ELIGIBLE:
            return f"{label} is not contraindicated here: nothing to override"
        return ""


def override_check(findings: Iterable[Finding], *, drug: Drug, route: Route | None = None) -> OverrideCheck:
    """Whether ``drug``'s not-eligible decision may be overridden for one patient (see the module docstring)."""
    relevant = [f for f in findings if _applies(f, drug, route)]
    codes = ABSOLUTE_CONTRAINDICATIONS[drug]
    absolute = tuple(f for f in relevant if f.severity is Severity.CONTRAINDICATED and f.code in codes)
    return OverrideCheck(drug=drug, decision=decide(relevant, drug=drug), absolute=absolute)


@dataclass(frozen=True)
class ScreeningResult:
    findings: tuple[Finding, ...]
    decisions: Mapping[Drug, Decision]
    fingerprint: str
    trd: TrdAssessment | None

    def findings_for(self, drug: Drug, route: Route | None = None) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if _applies(f, drug, route))

    def decision_for(self, drug: Drug, route: Route | None = None) -> Decision:
        return decide(self.findings, drug=drug, route=route)


def screen(
    snapshot: IntakeSnapshot,
    *,
    drugs: Iterable[Drug] = (Drug.ESKETAMINE, Drug.KETAMINE),
    config: ScreeningConfig = DEFAULT_SCREENING_CONFIG,
) -> ScreeningResult:
    """Screen one intake snapshot for each drug in ``drugs``."""
    errors = validate_config(config)
    if errors:
        raise ScreeningConfigError(errors)
    candidates = frozenset(drugs)
    if not candidates:
        raise ScreeningConfigError({"drugs": "choose at least one drug"})
    raw = [
        *indication_findings(snapshot, candidates, config),
        *history_findings(snapshot, candidates, config),
        *medication_findings(snapshot, candidates, config),
        *workup_findings(snapshot, candidates, config),
        *consistency_findings(snapshot, candidates, config),
    ]
    findings = _apply_overrides(raw, config.severity_overrides)
    findings.sort(key=lambda f: (_ORDER[f.severity], f.code, sorted(d.value for d in f.drugs)))
    trd = (
        assess_treatment_resistance(snapshot.prior_trials, config)
        if snapshot.prior_trials is not None
        else None
    )
    return ScreeningResult(
        findings=tuple(findings),
        decisions={d: decide(findings, drug=d) for d in sorted(candidates)},
        fingerprint=intake_fingerprint(snapshot),
        trd=trd,
    )


def _canonical(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset | set):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 18 and 18.0 are the same score
    return value


def intake_fingerprint(snapshot: IntakeSnapshot) -> str:
    """Stable hash of everything in the snapshot: "sha256:<hex>". Any change to the intake changes it."""
    payload = json.dumps(
        {"v": FINGERPRINT_VERSION, "intake": _canonical(snapshot)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()
