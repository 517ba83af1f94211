"""In-session alert rules, escalation timing and emergency checklists (pure: no Django, no I/O).

Severity mapping (each rule's severity is configurable per site and per protocol):

* ``CRITICAL``: a finding that may be dangerous now; the on-site prescriber should see the patient at once.
  Defaults: SBP/DBP absolute highs, SpO2 low, RR low, loss of consciousness (MOAA/S 0), PHQ-9 item 9 > 0
  (clinical.md §8: "needs immediate follow-up regardless of total").
* ``WARNING``: an abnormal finding that needs the nurse's attention and closer watching. Defaults: SBP/DBP
  rise from baseline, HR high or low, temperature high or low, sedation (any MOAA/S drop from pre-dose).
* ``INFO``: a reminder with no abnormal finding. Default: a vital-sign reading is overdue.

Which numbers the reference supports (clinical.md):

* SBP ≥180, DBP ≥110, SBP rise ≥40, DBP rise ≥25: label Table 6 / §2.6 *reported categories* of BP
  increase (the label reports how often they happened; it does not call them action thresholds). The
  numbers are confirmed; using them as alert triggers is this software's choice.
* HR >110: §7.3 mentions "e.g. 180/100, HR 110" as intra-infusion stop thresholds, marked [U].
  HR <50: not in the reference. SpO2 <92 % and RR <10: §7.3 says none were found in ketamine-psychiatry
  sources and to use the institutional sedation policy [U]. All three are unconfirmed defaults.
* Sedation = any MOAA/S decrease from pre-dose; MOAA/S 0 = loss of consciousness (§8, Spravato label).
* Temperature ≥38 °C and <35 °C: not in the reference (no source gives a temperature rule for a ketamine
  session); clinic defaults, unconfirmed, at the usual definitions of fever and hypothermia. A clinic may
  move them within 38–39 °C and 34–36 °C, in whole degrees like every threshold here (issue 14: a reading
  of 45 °C was stored and raised nothing).
* The escalation delay is not in the reference (unconfirmed default).

Where a rule needs the baseline (rises, sedation) it is skipped for pre-dose readings.

What a clinic may change, and why (issue 13, point 6: "an administrator set the site's SBP alert to 400 with
source 'x' and switched off SpO2 / breathing-rate / loss-of-consciousness alerts; a 250/105 reading then
raised nothing"). A site's or protocol's override passes four checks here, the same for every path that
stores one (site page, protocol page, any future import); ``resolve_alert_rules`` refuses a violation with a
message naming the rule, the value and the bound:

* **Floors and ceilings** (``THRESHOLD_BOUNDS``). Where the reference gives the number (the label's reported
  BP categories SBP ≥180, DBP ≥110, rise ≥40/≥25; sedation = any MOAA/S drop; PHQ-9 item 9 > 0), that
  number is the least sensitive setting allowed: a clinic may make the alert fire sooner, never later. The
  other end (the most sensitive setting) and both ends of the unconfirmed defaults (HR, SpO2, RR) are clinic
  defaults marked unconfirmed, each with its source string: they keep an alert from firing on ordinary
  readings (alarm fatigue is itself a hazard) or from being set where it no longer protects anyone.
* **Always on** (``ALWAYS_ON``): loss of consciousness, SpO2 low and breathing rate low (respiratory
  depression is in the Spravato boxed warning, clinical.md §2.3, §7.4), the critical BP highs (hypertensive
  crisis, §2.3), PHQ-9 item 9 (§8) and the overdue-reading reminder (the only way a missed reading is
  noticed, §7.1) cannot be switched off. Every rule whose reference severity is critical is in this set.
* **Severity** may be raised, never lowered below the reference severity.
* **Source**: an override names the clinic policy it comes from, at least ``MIN_SOURCE_CHARS`` characters
  with real words (not "x"): the override becomes the clinic's documented decision and is shown as such.

Stored overrides that break these rules (saved before they existed) are not applied at the chair:
``applicable_alert_rules`` drops each one, the reference default applies, and the settings page says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.vitals import DueReading, VitalReading, minutes_between, overdue


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertCode(StrEnum):
    SBP_HIGH = "sbp_high"
    DBP_HIGH = "dbp_high"
    SBP_RISE = "sbp_rise"
    DBP_RISE = "dbp_rise"
    HR_HIGH = "hr_high"
    HR_LOW = "hr_low"
    SPO2_LOW = "spo2_low"
    RR_LOW = "rr_low"
    SEDATION = "sedation"
    LOSS_OF_CONSCIOUSNESS = "loss_of_consciousness"
    READING_OVERDUE = "reading_overdue"
    PHQ9_ITEM9 = "phq9_item9"
    TEMP_HIGH = "temp_high"
    TEMP_LOW = "temp_low"


#: The codes and severities as plain strings, for checking stored or posted text (``"x" in AlertCode`` raises
#: TypeError on Python 3.11).
ALERT_CODES: Final[frozenset[str]] = frozenset(c.value for c in AlertCode)
SEVERITIES: Final[frozenset[str]] = frozenset(s.value for s in Severity)


class RuleOrigin(StrEnum):
    DEFAULT = "default"
    SITE = "site"
    PROTOCOL = "protocol"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRule:
    """One rule's settings. ``condition`` says how ``threshold`` is compared; it is fixed per code.

    ``confirmed`` is False for defaults the reference does not support. A site or protocol override that
    sets its own threshold makes the rule the clinic's documented decision (``confirmed=True``,
    ``origin`` site/protocol, ``source`` = the clinic's own reference).
    """

    code: AlertCode
    condition: str
    threshold: int | None
    severity: Severity
    source: str
    confirmed: bool
    enabled: bool = True
    origin: RuleOrigin = RuleOrigin.DEFAULT


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleOverride:
    """A site's or protocol's change to one rule. ``source`` (the clinic policy it comes from) is required."""

    source: str
    threshold: int | None = None
    severity: Severity | None = None
    enabled: bool | None = None


class AlertConfigError(ValueError):
    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(self.errors.values()))


_TABLE6: Final = "clinical.md §2.6: label Table 6 reported category of BP increase"
#: Temperature (issue 14: "45 °C raises nothing"). The reference has no temperature number for ketamine
#: sessions: both rules are clinic defaults, unconfirmed, at the usual definitions of fever and hypothermia.
_TEMP_HIGH_SOURCE: Final = (
    "clinic default, unconfirmed: clinical.md gives no temperature rule; 38.0 °C is the usual definition of "
    "fever"
)
_TEMP_LOW_SOURCE: Final = (
    "clinic default, unconfirmed: clinical.md gives no temperature rule; below 35.0 °C is the usual "
    "definition of hypothermia"
)
_UNCONFIRMED_SEDATION_POLICY: Final = (
    "not in reference: clinical.md §7.3 found no SpO2/RR thresholds in ketamine-psychiatry sources "
    "(use institutional sedation policy) [U]"
)


def _rule(
    code: AlertCode, condition: str, threshold: int | None, severity: Severity, source: str, confirmed: bool
) -> AlertRule:
    return AlertRule(
        code=code,
        condition=condition,
        threshold=threshold,
        severity=severity,
        source=source,
        confirmed=confirmed,
    )


DEFAULT_ALERT_RULES: Final[Mapping[AlertCode, AlertRule]] = {
    r.code: r
    for r in (
        _rule(AlertCode.SBP_HIGH, "SBP ≥ threshold", 180, Severity.CRITICAL, f"{_TABLE6} (SBP ≥180)", True),
        _rule(AlertCode.DBP_HIGH, "DBP ≥ threshold", 110, Severity.CRITICAL, f"{_TABLE6} (DBP ≥110)", True),
        _rule(
            AlertCode.SBP_RISE,
            "SBP − baseline SBP ≥ threshold",
            40,
            Severity.WARNING,
            "clinical.md §2.6: label, SBP rise ≥40 mmHg reported category",
            True,
        ),
        _rule(
            AlertCode.DBP_RISE,
            "DBP − baseline DBP ≥ threshold",
            25,
            Severity.WARNING,
            "clinical.md §2.6: label, DBP rise ≥25 mmHg reported category",
            True,
        ),
        _rule(
            AlertCode.HR_HIGH,
            "HR > threshold",
            110,
            Severity.WARNING,
            "clinical.md §7.3: 'e.g. HR 110' intra-infusion stop threshold, not retrieved [U]",
            False,
        ),
        _rule(AlertCode.HR_LOW, "HR < threshold", 50, Severity.WARNING, "not in reference [U]", False),
        _rule(
            AlertCode.SPO2_LOW, "SpO2 < threshold", 92, Severity.CRITICAL, _UNCONFIRMED_SEDATION_POLICY, False
        ),
        _rule(AlertCode.RR_LOW, "RR < threshold", 10, Severity.CRITICAL, _UNCONFIRMED_SEDATION_POLICY, False),
        _rule(
            AlertCode.SEDATION,
            "pre-dose MOAA/S − MOAA/S ≥ threshold",
            1,
            Severity.WARNING,
            "clinical.md §8: MOAA/S, any decrease from pre-dose = sedation (Spravato label)",
            True,
        ),
        _rule(
            AlertCode.LOSS_OF_CONSCIOUSNESS,
            "MOAA/S = 0",
            None,
            Severity.CRITICAL,
            "clinical.md §8: MOAA/S 0 = loss of consciousness (Spravato label); §2.6",
            True,
        ),
        _rule(
            AlertCode.READING_OVERDUE,
            "reading not taken by its due time plus grace",
            None,
            Severity.INFO,
            "clinical.md §7.1 cadence; grace is an unconfirmed default",
            True,
        ),
        _rule(
            AlertCode.PHQ9_ITEM9,
            "PHQ-9 item 9 answer > threshold",
            0,
            Severity.CRITICAL,
            "clinical.md §8: PHQ-9 item 9 >0 needs immediate follow-up regardless of total (Kroenke 2001)",
            True,
        ),
        _rule(AlertCode.TEMP_HIGH, "Temperature ≥ threshold", 38, Severity.WARNING, _TEMP_HIGH_SOURCE, False),
        _rule(AlertCode.TEMP_LOW, "Temperature < threshold", 35, Severity.WARNING, _TEMP_LOW_SOURCE, False),
    )
}

_FIXED_THRESHOLD: Final = frozenset({AlertCode.LOSS_OF_CONSCIOUSNESS, AlertCode.READING_OVERDUE})

_RANK: Final[Mapping[Severity, int]] = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}

# --------------------------------------------------------------------------- what a clinic may change

#: Plain names for staff pages and messages.
ALERT_LABELS: Final[Mapping[AlertCode, str]] = {
    AlertCode.SBP_HIGH: "Systolic BP high",
    AlertCode.DBP_HIGH: "Diastolic BP high",
    AlertCode.SBP_RISE: "Systolic BP rise from baseline",
    AlertCode.DBP_RISE: "Diastolic BP rise from baseline",
    AlertCode.HR_HIGH: "Heart rate high",
    AlertCode.HR_LOW: "Heart rate low",
    AlertCode.SPO2_LOW: "Oxygen saturation (SpO2) low",
    AlertCode.RR_LOW: "Breathing rate low",
    AlertCode.SEDATION: "Sedation (MOAA/S drop)",
    AlertCode.LOSS_OF_CONSCIOUSNESS: "Loss of consciousness (MOAA/S 0)",
    AlertCode.READING_OVERDUE: "Reading overdue",
    AlertCode.PHQ9_ITEM9: "PHQ-9 item 9 (thoughts of death or self-harm)",
    AlertCode.TEMP_HIGH: "Temperature high",
    AlertCode.TEMP_LOW: "Temperature low",
}


class Sooner(StrEnum):
    """Which way a threshold moves to make its alert fire sooner (more sensitive)."""

    LOWER = "lower"  # "value ≥/> threshold" rules (BP, rises, HR high, temperature high, sedation, PHQ-9)
    HIGHER = "higher"  # "value < threshold" rules (HR low, SpO2 low, RR low, temperature low)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bound:
    value: int
    source: str
    confirmed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdBounds:
    """The thresholds a site or protocol may set for one rule (inclusive).

    ``latest`` is the least sensitive setting allowed (for a number the reference gives, that number);
    ``soonest`` the most sensitive one. ``sooner`` says which way the number moves to fire sooner."""

    code: AlertCode
    unit: str
    sooner: Sooner
    latest: Bound
    soonest: Bound

    @property
    def floor(self) -> Bound:
        return self.soonest if self.sooner is Sooner.LOWER else self.latest

    @property
    def ceiling(self) -> Bound:
        return self.latest if self.sooner is Sooner.LOWER else self.soonest

    @property
    def fixed(self) -> bool:
        return self.floor.value == self.ceiling.value

    def describe(self) -> str:
        """'140–180 mmHg (lower fires sooner)' or 'fixed at 1'."""
        unit = f" {self.unit}" if self.unit and self.unit != "%" else self.unit
        if self.fixed:
            return f"fixed at {self.floor.value}{unit}"
        return f"{self.floor.value}–{self.ceiling.value}{unit} ({self.sooner.value} fires sooner)"


_UNCONFIRMED: Final = "clinic default, unconfirmed"
_ELEVATED_BP: Final = (
    f"{_UNCONFIRMED}: clinical.md §2.2 and §11 call BP above 140/90 elevated; an alert set below that "
    "line would sound on ordinary readings"
)
_ONLY_SOONER: Final = "the reference value: a clinic may make this alert fire sooner, not later"
_SEDATION_POLICY_BOUND: Final = (
    f"{_UNCONFIRMED}: clinical.md §7.3 found no threshold in ketamine-psychiatry sources (use the "
    "institutional sedation policy)"
)


def _bounds(
    code: AlertCode, unit: str, sooner: Sooner, latest: tuple[int, str, bool], soonest: tuple[int, str, bool]
) -> ThresholdBounds:
    return ThresholdBounds(
        code=code,
        unit=unit,
        sooner=sooner,
        latest=Bound(value=latest[0], source=latest[1], confirmed=latest[2]),
        soonest=Bound(value=soonest[0], source=soonest[1], confirmed=soonest[2]),
    )


#: The floor and ceiling of every adjustable threshold (loss of consciousness and the overdue reminder
#: have none). A confirmed reference value is the ``latest`` bound: a clinic may only make it more sensitive.
THRESHOLD_BOUNDS: Final[Mapping[AlertCode, ThresholdBounds]] = {
    b.code: b
    for b in (
        _bounds(
            AlertCode.SBP_HIGH,
            "mmHg",
            Sooner.LOWER,
            (180, f"{_TABLE6} (SBP ≥180): {_ONLY_SOONER}", True),
            (140, _ELEVATED_BP, False),
        ),
        _bounds(
            AlertCode.DBP_HIGH,
            "mmHg",
            Sooner.LOWER,
            (110, f"{_TABLE6} (DBP ≥110): {_ONLY_SOONER}", True),
            (90, _ELEVATED_BP, False),
        ),
        _bounds(
            AlertCode.SBP_RISE,
            "mmHg",
            Sooner.LOWER,
            (40, f"clinical.md §2.6: label, SBP rise ≥40 mmHg reported category: {_ONLY_SOONER}", True),
            (
                20,
                f"{_UNCONFIRMED}: kept above the mean systolic rise of an ordinary infusion (clinical.md §7.2: "
                "Yale, +16 mmHg at 40 min) so the alert keeps its meaning",
                False,
            ),
        ),
        _bounds(
            AlertCode.DBP_RISE,
            "mmHg",
            Sooner.LOWER,
            (25, f"clinical.md §2.6: label, DBP rise ≥25 mmHg reported category: {_ONLY_SOONER}", True),
            (
                15,
                f"{_UNCONFIRMED}: kept above the mean diastolic rise of an ordinary infusion (clinical.md "
                "§7.2: Yale, +11 mmHg at 40 min) so the alert keeps its meaning",
                False,
            ),
        ),
        _bounds(
            AlertCode.HR_HIGH,
            "bpm",
            Sooner.LOWER,
            (
                120,
                f"{_UNCONFIRMED}: clinical.md §7.3 gives 'e.g. HR 110' as an intra-infusion stop example [U]; "
                "a clinic may raise the alert by at most 10 beats",
                False,
            ),
            (100, f"{_UNCONFIRMED}: clinical.md §7.3 at-home rule 'HR >100: do not dose' (low-grade)", False),
        ),
        _bounds(
            AlertCode.HR_LOW,
            "bpm",
            Sooner.HIGHER,
            (40, f"{_UNCONFIRMED}: not in reference [U]", False),
            (60, f"{_UNCONFIRMED}: not in reference [U]", False),
        ),
        _bounds(
            AlertCode.SPO2_LOW,
            "%",
            Sooner.HIGHER,
            (90, f"{_SEDATION_POLICY_BOUND}; below 90 % the alert would come late", False),
            (95, f"{_SEDATION_POLICY_BOUND}; above 95 % it would sound on ordinary readings", False),
        ),
        _bounds(
            AlertCode.RR_LOW,
            "/min",
            Sooner.HIGHER,
            (8, f"{_SEDATION_POLICY_BOUND}; below 8/min the alert would come late", False),
            (12, f"{_SEDATION_POLICY_BOUND}; above 12/min it would sound on ordinary readings", False),
        ),
        _bounds(
            AlertCode.SEDATION,
            "MOAA/S point",
            Sooner.LOWER,
            (1, "clinical.md §8: any MOAA/S decrease from pre-dose is sedation (Spravato label)", True),
            (1, "clinical.md §8: a drop of 1 is the smallest there is", True),
        ),
        _bounds(
            AlertCode.PHQ9_ITEM9,
            "",
            Sooner.LOWER,
            (0, "clinical.md §8: any answer above 0 needs immediate follow-up (Kroenke 2001)", True),
            (0, "clinical.md §8: 0 is the lowest answer", True),
        ),
        _bounds(
            AlertCode.TEMP_HIGH,
            "°C",
            Sooner.LOWER,
            (39, f"{_UNCONFIRMED}: a fever past 39 °C is too late to hear of first", False),
            (38, f"{_UNCONFIRMED}: below 38 °C the alert would sound on ordinary readings", False),
        ),
        _bounds(
            AlertCode.TEMP_LOW,
            "°C",
            Sooner.HIGHER,
            (34, f"{_UNCONFIRMED}: below 34 °C the alert would come late", False),
            (36, f"{_UNCONFIRMED}: above 36 °C it would sound on ordinary readings", False),
        ),
    )
}

#: Rules a site or protocol can never switch off, with the reason shown to staff. Every rule whose reference
#: severity is critical is here (checked below), and so is the overdue-reading reminder.
ALWAYS_ON: Final[Mapping[AlertCode, str]] = {
    AlertCode.LOSS_OF_CONSCIOUSNESS: (
        "sedation and respiratory depression are in the Spravato boxed warning (clinical.md §2.3, §7.4)"
    ),
    AlertCode.SPO2_LOW: (
        "respiratory depression: pulse oximetry at every session (clinical.md §2.3, boxed warning and REMS)"
    ),
    AlertCode.RR_LOW: "respiratory depression (clinical.md §2.3, §7.4: boxed warning)",
    AlertCode.SBP_HIGH: "a hypertensive crisis needs emergency care (clinical.md §2.3, label §5.6)",
    AlertCode.DBP_HIGH: "a hypertensive crisis needs emergency care (clinical.md §2.3, label §5.6)",
    AlertCode.PHQ9_ITEM9: "needs immediate follow-up regardless of the total (clinical.md §8)",
    AlertCode.READING_OVERDUE: "the only reminder that a reading was missed (clinical.md §7.1 cadence)",
}
assert all(r.code in ALWAYS_ON for r in DEFAULT_ALERT_RULES.values() if r.severity is Severity.CRITICAL)
assert set(THRESHOLD_BOUNDS) | _FIXED_THRESHOLD == set(AlertCode)
assert all(
    THRESHOLD_BOUNDS[r.code].floor.value <= (r.threshold or 0) <= THRESHOLD_BOUNDS[r.code].ceiling.value
    for r in DEFAULT_ALERT_RULES.values()
    if r.code in THRESHOLD_BOUNDS
)

MIN_SOURCE_CHARS: Final = 10
MAX_SOURCE_CHARS: Final = 300  # what the records keep: cite the policy, do not paste it
_SOURCE_EXAMPLE: Final = "e.g. 'Clinic BP policy 2026-03, section 4'"


def source_problem(source: str) -> str | None:
    """Why ``source`` is not a usable reference for an override, or ``None`` when it is.

    The override becomes the clinic's documented decision, so its source must be something a colleague can
    look up: at least ``MIN_SOURCE_CHARS`` characters with real words ("x", "policy" or "aaaaaaaaaa" are
    refused). This cannot prove the policy exists; it stops the placeholder."""
    text = " ".join(source.split())
    if not text:
        return f"needs a source: name the clinic policy it comes from ({_SOURCE_EXAMPLE})"
    letters = {c.lower() for c in text if c.isalpha()}
    if len(text) < MIN_SOURCE_CHARS or len(letters) < 4:
        return (
            f"source {text!r} is not a reference: name the clinic policy it comes from, at least "
            f"{MIN_SOURCE_CHARS} characters ({_SOURCE_EXAMPLE})"
        )
    if len(text) > MAX_SOURCE_CHARS:
        return (
            f"source is {len(text)} characters, more than {MAX_SOURCE_CHARS}: cite the policy (its name, "
            "version and section) rather than pasting it"
        )
    return None


def _unit(bounds: ThresholdBounds) -> str:
    return "" if not bounds.unit else (bounds.unit if bounds.unit == "%" else f" {bounds.unit}")


def _threshold_problem(threshold: int, bounds: ThresholdBounds) -> str | None:
    unit = _unit(bounds)
    floor, ceiling = bounds.floor, bounds.ceiling
    if bounds.fixed and threshold != floor.value:
        return f"{threshold}{unit} is not allowed: the threshold is fixed at {floor.value}{unit} ({floor.source})"
    if threshold > ceiling.value:
        return f"{threshold}{unit} is above the ceiling of {ceiling.value}{unit} ({ceiling.source})"
    if threshold < floor.value:
        return f"{threshold}{unit} is below the floor of {floor.value}{unit} ({floor.source})"
    return None


def override_problems(
    code: AlertCode,
    change: RuleOverride,
    *,
    defaults: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
    bounds: Mapping[AlertCode, ThresholdBounds] = THRESHOLD_BOUNDS,
) -> list[str]:
    """Every reason ``change`` may not be applied to ``code`` (empty when it may)."""
    problems: list[str] = []
    if (problem := source_problem(change.source)) is not None:
        problems.append(problem)
    if change.enabled is False and code in ALWAYS_ON:
        problems.append(f"cannot be switched off: {ALWAYS_ON[code]}")
    if change.threshold is not None:
        if code in _FIXED_THRESHOLD or code not in bounds:
            problems.append("has no adjustable threshold")
        elif (problem := _threshold_problem(change.threshold, bounds[code])) is not None:
            problems.append(problem)
    reference = defaults[code].severity
    if change.severity is not None and _RANK[change.severity] > _RANK[reference]:
        problems.append(
            f"is {reference.value} in the reference: its severity may be raised, not lowered to "
            f"{change.severity.value}"
        )
    return problems


def rule_text(rule: AlertRule) -> str:
    """A rule as staff read it beside the readings: 'Temperature ≥ 38 °C (warning)', or that a clinic
    switched it off. Its source (which says whether it is confirmed) is shown beside it."""
    label = ALERT_LABELS[rule.code]
    if not rule.enabled:
        return f"{label}: switched off by the clinic"
    bounds = THRESHOLD_BOUNDS.get(rule.code)
    unit = _unit(bounds) if bounds is not None else ""
    condition = (
        rule.condition
        if rule.threshold is None
        else rule.condition.replace("threshold", f"{rule.threshold}{unit}")
    )
    who = {RuleOrigin.SITE: ", the site's setting", RuleOrigin.PROTOCOL: ", the protocol's setting"}
    return f"{condition} ({rule.severity.value}{who.get(rule.origin, '')})"


def _problem_text(origin: RuleOrigin, code: AlertCode, problems: list[str]) -> str:
    return f"The {origin.value} setting for {ALERT_LABELS[code]} ({code.value}): " + "; ".join(problems)


def _apply(rule: AlertRule, change: RuleOverride, origin: RuleOrigin) -> AlertRule:
    return replace(
        rule,
        threshold=rule.threshold if change.threshold is None else change.threshold,
        severity=change.severity or rule.severity,
        enabled=rule.enabled if change.enabled is None else change.enabled,
        source=" ".join(change.source.split()),
        confirmed=rule.confirmed or change.threshold is not None,
        origin=origin,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedAlertRules:
    """The rules a session uses, and each stored override that was not applied (key ``origin:code``)."""

    rules: Mapping[AlertCode, AlertRule]
    not_applied: Mapping[str, str]


def _resolve(
    site: Mapping[AlertCode, RuleOverride] | None,
    protocol: Mapping[AlertCode, RuleOverride] | None,
    defaults: Mapping[AlertCode, AlertRule],
    bounds: Mapping[AlertCode, ThresholdBounds],
) -> ResolvedAlertRules:
    refused: dict[str, str] = {}
    rules = dict(defaults)
    for origin, overrides in ((RuleOrigin.SITE, site or {}), (RuleOrigin.PROTOCOL, protocol or {})):
        for code, change in overrides.items():
            problems = override_problems(code, change, defaults=defaults, bounds=bounds)
            if problems:
                refused[f"{origin.value}:{code.value}"] = _problem_text(origin, code, problems)
            else:
                rules[code] = _apply(rules[code], change, origin)
    return ResolvedAlertRules(rules=rules, not_applied=refused)


def resolve_alert_rules(
    *,
    site: Mapping[AlertCode, RuleOverride] | None = None,
    protocol: Mapping[AlertCode, RuleOverride] | None = None,
    defaults: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
    bounds: Mapping[AlertCode, ThresholdBounds] = THRESHOLD_BOUNDS,
) -> dict[AlertCode, AlertRule]:
    """Defaults, then the site's overrides, then the protocol's (the protocol wins).

    Raises :class:`AlertConfigError` naming every override that breaks a floor or ceiling, switches off an
    always-on rule, lowers a severity or lacks a real source (key ``origin:code``). Use it before saving."""
    resolved = _resolve(site, protocol, defaults, bounds)
    if resolved.not_applied:
        raise AlertConfigError(resolved.not_applied)
    return dict(resolved.rules)


def applicable_alert_rules(
    *,
    site: Mapping[AlertCode, RuleOverride] | None = None,
    protocol: Mapping[AlertCode, RuleOverride] | None = None,
    defaults: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
    bounds: Mapping[AlertCode, ThresholdBounds] = THRESHOLD_BOUNDS,
) -> ResolvedAlertRules:
    """The rules a session uses from *stored* overrides: an override that breaks the rules (stored before
    they existed) is skipped, so its reference default (or the site's valid setting) applies, and it is
    listed in ``not_applied`` for the settings page. A session never stops for a bad setting."""
    return _resolve(site, protocol, defaults, bounds)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    code: AlertCode
    severity: Severity
    message: str
    source: str
    confirmed: bool
    origin: RuleOrigin
    observed_at: datetime
    dedup_key: str  # the app keeps one open alert per key


def _when(reading: VitalReading, dose_started_at: datetime | None) -> str:
    if dose_started_at is None or reading.taken_at < dose_started_at:
        return "before dosing"
    return f"at {minutes_between(dose_started_at, reading.taken_at)} min"


def evaluate_reading(
    *,
    reading: VitalReading,
    baseline: VitalReading | None,
    dose_started_at: datetime | None,
    session_key: str,
    rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> list[Alert]:
    """Alerts for one reading, most severe first. Missing measurements are skipped, never guessed."""
    when = _when(reading, dose_started_at)
    post_dose = when != "before dosing"
    found: list[tuple[AlertCode, str]] = []

    def limit(code: AlertCode) -> int | None:
        rule = rules[code]
        return rule.threshold if rule.enabled else None

    bp = f"BP {reading.bp_text} {when}"
    sbp, dbp, hr = reading.sbp_mmhg, reading.dbp_mmhg, reading.hr_bpm
    spo2, rr, moaas = reading.spo2_pct, reading.rr_per_min, reading.moaas
    if sbp is not None and (t := limit(AlertCode.SBP_HIGH)) is not None and sbp >= t:
        found.append((AlertCode.SBP_HIGH, f"{bp}: systolic ≥{t}"))
    if dbp is not None and (t := limit(AlertCode.DBP_HIGH)) is not None and dbp >= t:
        found.append((AlertCode.DBP_HIGH, f"{bp}: diastolic ≥{t}"))
    if post_dose and baseline is not None:
        base_sbp, base_dbp = baseline.sbp_mmhg, baseline.dbp_mmhg
        if sbp is not None and base_sbp is not None and (t := limit(AlertCode.SBP_RISE)) is not None:
            if sbp - base_sbp >= t:
                found.append(
                    (
                        AlertCode.SBP_RISE,
                        f"{bp}: systolic up {sbp - base_sbp} from baseline {base_sbp} (≥{t})",
                    )
                )
        if dbp is not None and base_dbp is not None and (t := limit(AlertCode.DBP_RISE)) is not None:
            if dbp - base_dbp >= t:
                found.append(
                    (
                        AlertCode.DBP_RISE,
                        f"{bp}: diastolic up {dbp - base_dbp} from baseline {base_dbp} (≥{t})",
                    )
                )
    if hr is not None and (t := limit(AlertCode.HR_HIGH)) is not None and hr > t:
        found.append((AlertCode.HR_HIGH, f"Heart rate {hr} {when}: above {t}"))
    if hr is not None and (t := limit(AlertCode.HR_LOW)) is not None and hr < t:
        found.append((AlertCode.HR_LOW, f"Heart rate {hr} {when}: below {t}"))
    if spo2 is not None and (t := limit(AlertCode.SPO2_LOW)) is not None and spo2 < t:
        found.append((AlertCode.SPO2_LOW, f"SpO2 {spo2}% {when}: below {t}%"))
    if rr is not None and (t := limit(AlertCode.RR_LOW)) is not None and rr < t:
        found.append((AlertCode.RR_LOW, f"Breathing rate {rr}/min {when}: below {t}"))
    temp = reading.temp_c
    if temp is not None and (t := limit(AlertCode.TEMP_HIGH)) is not None and temp >= t:
        found.append((AlertCode.TEMP_HIGH, f"Temperature {temp:g} °C {when}: at or above {t} °C"))
    if temp is not None and (t := limit(AlertCode.TEMP_LOW)) is not None and temp < t:
        found.append((AlertCode.TEMP_LOW, f"Temperature {temp:g} °C {when}: below {t} °C"))
    loc = moaas == 0 and rules[AlertCode.LOSS_OF_CONSCIOUSNESS].enabled
    if loc:
        found.append(
            (AlertCode.LOSS_OF_CONSCIOUSNESS, f"MOAA/S 0 {when}: no response — loss of consciousness")
        )
    base_moaas = baseline.moaas if baseline is not None else None
    if post_dose and not loc and moaas is not None and base_moaas is not None:
        if (t := limit(AlertCode.SEDATION)) is not None and base_moaas - moaas >= t:
            found.append(
                (
                    AlertCode.SEDATION,
                    f"MOAA/S {moaas} {when}: down from {base_moaas} before dosing (sedation)",
                )
            )
    alerts = [
        _alert(rules[code], message, reading.taken_at, f"{session_key}:{code.value}")
        for code, message in found
    ]
    return sorted(alerts, key=lambda a: _RANK[a.severity])


def _alert(rule: AlertRule, message: str, at: datetime, key: str) -> Alert:
    return Alert(
        code=rule.code,
        severity=rule.severity,
        message=message,
        source=rule.source,
        confirmed=rule.confirmed,
        origin=rule.origin,
        observed_at=at,
        dedup_key=key,
    )


def overdue_alert(
    *,
    due: DueReading | None,
    now: datetime,
    session_key: str,
    rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> Alert | None:
    """An alert when the due reading is overdue. One key per due reading, so each missed one is separate.

    The alert carries the cadence's own source and confirmation (an IM or sublingual cadence is a clinic
    default, unconfirmed), so staff see where the due time came from."""
    rule = rules[AlertCode.READING_OVERDUE]
    if due is None or not rule.enabled or not overdue(due=due, now=now):
        return None
    late = minutes_between(due.due_at, now)
    message = f"Vitals overdue: the {due.label} reading was due {late} min ago"
    cadence_rule = replace(
        rule, source=f"{due.source}; {rule.source}", confirmed=rule.confirmed and due.confirmed
    )
    return _alert(cadence_rule, message, now, f"{session_key}:{rule.code.value}:{due.due_at.isoformat()}")


def phq9_item9_alert(
    *,
    item9_answer: int,
    answered_at: datetime,
    session_key: str,
    response_key: str = "",
    rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> Alert | None:
    """An alert when PHQ-9 item 9 (thoughts of being better off dead or of self-harm) is above threshold."""
    if not 0 <= item9_answer <= 3:
        raise ValueError(f"PHQ-9 item 9 answer {item9_answer} is outside 0–3")
    rule = rules[AlertCode.PHQ9_ITEM9]
    if not rule.enabled or rule.threshold is None or item9_answer <= rule.threshold:
        return None
    message = (
        f"PHQ-9 item 9 answered {item9_answer} (thoughts of being better off dead or of self-harm): "
        "follow up now, whatever the total score"
    )
    key = f"{session_key}:{rule.code.value}" + (f":{response_key}" if response_key else "")
    return _alert(rule, message, answered_at, key)


# --------------------------------------------------------------------------- escalation

DEFAULT_ESCALATE_AFTER: Final = timedelta(minutes=5)
ESCALATE_AFTER_SOURCE: Final = "not in reference: default delay before an unacknowledged alert escalates [U]"
ESCALATE_AFTER_CONFIRMED: Final = False


def needs_escalation(
    *,
    alert_raised_at: datetime,
    acknowledged_at: datetime | None,
    now: datetime,
    escalate_after: timedelta = DEFAULT_ESCALATE_AFTER,
) -> bool:
    """True when the alert is still unacknowledged ``escalate_after`` (or longer) after it was raised."""
    if acknowledged_at is not None and acknowledged_at <= now:
        return False
    return now - alert_raised_at >= escalate_after


# --------------------------------------------------------------------------- emergency checklists


class Emergency(StrEnum):
    HYPERTENSIVE_SURGE = "hypertensive_surge"
    DESATURATION = "desaturation_or_respiratory_depression"
    EMERGENCE_REACTION = "emergence_reaction"
    NAUSEA_VOMITING = "nausea_vomiting"
    ALLERGIC_REACTION = "allergic_reaction"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecklistStep:
    text: str
    source: str
    confirmed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class EmergencyChecklist:
    emergency: Emergency
    title: str
    steps: tuple[ChecklistStep, ...]
    triggered_by: tuple[AlertCode, ...]


def _step(text: str, source: str, confirmed: bool = True) -> ChecklistStep:
    return ChecklistStep(text=text, source=source, confirmed=confirmed)


_PER_PROTOCOL: Final = "agent and dose not in reference [U]; follow the clinic protocol"

EMERGENCY_CHECKLISTS: Final[Mapping[Emergency, EmergencyChecklist]] = {
    c.emergency: c
    for c in (
        EmergencyChecklist(
            emergency=Emergency.HYPERTENSIVE_SURGE,
            title="Blood pressure surge",
            triggered_by=(AlertCode.SBP_HIGH, AlertCode.DBP_HIGH, AlertCode.SBP_RISE, AlertCode.DBP_RISE),
            steps=(
                _step(
                    "Ask about chest pain or shortness of breath (hypertensive crisis) and sudden severe "
                    "headache, visual disturbance, seizures, reduced consciousness or focal deficits "
                    "(hypertensive encephalopathy). If any are present, send for emergency care now.",
                    "clinical.md §2.3 (label §5.6)",
                ),
                _step("Tell the on-site prescriber.", "clinical.md §2.4 (REMS: prescriber on site)"),
                _step(
                    "Recheck BP as clinically warranted until it falls or stays at a safe level.",
                    "clinical.md §2.3 (label §5.6)",
                ),
                _step(
                    "If BP stays high, promptly involve a practitioner experienced in BP management.",
                    "clinical.md §2.3, §7.4 (label)",
                ),
                _step(
                    "Whether to pause or stop an IV infusion: per clinic protocol.",
                    "clinical.md §7.3: intra-infusion stop thresholds not retrieved [U]",
                    False,
                ),
                _step(
                    "Antihypertensive treatment: per clinic protocol.",
                    f"clinical.md §7.4: {_PER_PROTOCOL}",
                    False,
                ),
                _step(
                    "Check for psychostimulants or MAOIs, which raise BP.",
                    "clinical.md §2.5 (label §7 interactions)",
                ),
                _step(
                    "No discharge until BP is acceptable (REMS form asks: vitals acceptable at completion?).",
                    "clinical.md §2.4, §7.5",
                ),
            ),
        ),
        EmergencyChecklist(
            emergency=Emergency.DESATURATION,
            title="Low oxygen saturation or slow breathing",
            triggered_by=(AlertCode.SPO2_LOW, AlertCode.RR_LOW, AlertCode.LOSS_OF_CONSCIOUSNESS),
            steps=(
                _step(
                    "Assess breathing and check the pulse-oximetry reading on the patient.",
                    "clinical.md §2.3 (respiratory status incl. pulse oximetry), §7.4",
                ),
                _step("Call the on-site prescriber now.", "clinical.md §2.4 (REMS: prescriber on site)"),
                _step(
                    "Airway support, oxygen and escalation: per the institutional moderate-sedation policy.",
                    "clinical.md §7.3: no ketamine-psychiatry thresholds found; use sedation policy [U]",
                    False,
                ),
                _step(
                    "Whether to stop an IV infusion: per clinic protocol (rapid IV bolus can cause apnea).",
                    "clinical.md §7.4 (Ketamax labeling); stop rule [U]",
                    False,
                ),
                _step(
                    "Record respiratory depression for the REMS Patient Monitoring Form (esketamine).",
                    "clinical.md §2.4",
                ),
            ),
        ),
        EmergencyChecklist(
            emergency=Emergency.EMERGENCE_REACTION,
            title="Emergence or psychotomimetic reaction",
            triggered_by=(),
            steps=(
                _step(
                    "Reduce verbal and tactile stimulation during recovery.",
                    "clinical.md §7.4 (ketamine anesthetic labeling, MIMS Ketamax)",
                ),
                _step("Tell the on-site prescriber.", "clinical.md §2.4 (REMS: prescriber on site)"),
                _step(
                    "Short-acting benzodiazepine only if the prescriber orders it, per clinic protocol.",
                    f"clinical.md §7.4 (low-grade source): {_PER_PROTOCOL}",
                    False,
                ),
                _step(
                    "Monitor until it resolves; record the CADSS score and note dissociation (REMS form).",
                    "clinical.md §2.4 (monitor ≥2 h and until resolution), §8",
                ),
            ),
        ),
        EmergencyChecklist(
            emergency=Emergency.NAUSEA_VOMITING,
            title="Nausea or vomiting",
            triggered_by=(),
            steps=(
                _step(
                    "Expected with esketamine: nausea 28 %, vomiting 9 % (placebo 9 %, 2 %).",
                    "clinical.md §2.6 (label)",
                ),
                _step(
                    "Check the fasting record (esketamine: no food ≥2 h, no liquids ≥30 min before dosing).",
                    "clinical.md §2.2, §7.4",
                ),
                _step("Antiemetic: per clinic protocol.", f"clinical.md §7.4: {_PER_PROTOCOL}", False),
            ),
        ),
        EmergencyChecklist(
            emergency=Emergency.ALLERGIC_REACTION,
            title="Allergic reaction",
            triggered_by=(),
            steps=(
                _step("Call the on-site prescriber now.", "clinical.md §2.4 (REMS: prescriber on site)"),
                _step(
                    "Give no further doses: hypersensitivity to esketamine, ketamine or excipients is a "
                    "contraindication.",
                    "clinical.md §2.5 (label)",
                ),
                _step(
                    "Treatment and emergency transfer: per clinic anaphylaxis protocol.",
                    "not in reference [U]; follow the clinic protocol",
                    False,
                ),
                _step(
                    "Record the allergy so future sessions are blocked, and report it as an adverse event.",
                    "clinical.md §2.5 (contraindication), §2.4 (serious AE reporting)",
                ),
            ),
        ),
    )
}


def checklists_for(code: AlertCode) -> list[EmergencyChecklist]:
    """The emergency checklists an alert with ``code`` should offer."""
    return [c for c in EMERGENCY_CHECKLISTS.values() if code in c.triggered_by]
