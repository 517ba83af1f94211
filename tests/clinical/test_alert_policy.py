"""What a clinic may change in the safety-alert rules (issue 13, point 6): thresholds within floors and
ceilings (a reference number may only be made more sensitive), critical and respiratory alerts always on,
severity never lowered, every change naming a real source. And the reading that raised nothing before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ketaclinic.clinical.alerts import (
    ALWAYS_ON,
    DEFAULT_ALERT_RULES,
    THRESHOLD_BOUNDS,
    AlertCode,
    AlertConfigError,
    RuleOrigin,
    RuleOverride,
    Severity,
    applicable_alert_rules,
    evaluate_reading,
    override_problems,
    resolve_alert_rules,
    source_problem,
)
from ketaclinic.clinical.vitals import VitalReading

POLICY = "Clinic BP policy 2026-03, section 4"
T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def refused(**site: RuleOverride) -> dict[str, str]:
    with pytest.raises(AlertConfigError) as exc:
        resolve_alert_rules(site={AlertCode(code): change for code, change in site.items()})
    return exc.value.errors


def test_the_reported_attack_is_refused_with_every_reason() -> None:
    errors = refused(
        sbp_high=RuleOverride(threshold=400, source="x"),
        spo2_low=RuleOverride(enabled=False, source="x"),
        rr_low=RuleOverride(enabled=False, source="x"),
        loss_of_consciousness=RuleOverride(enabled=False, source="x"),
    )
    assert set(errors) == {"site:sbp_high", "site:spo2_low", "site:rr_low", "site:loss_of_consciousness"}
    sbp = errors["site:sbp_high"]
    assert "Systolic BP high" in sbp and "400 mmHg is above the ceiling of 180 mmHg" in sbp
    assert "Table 6" in sbp and "'x' is not a reference" in sbp
    for code in ("site:spo2_low", "site:rr_low", "site:loss_of_consciousness"):
        assert "cannot be switched off" in errors[code]


def test_confirmed_reference_numbers_may_only_be_made_more_sensitive() -> None:
    ceilings = {"sbp_high": 180, "dbp_high": 110, "sbp_rise": 40, "dbp_rise": 25}
    for code, reference in ceilings.items():
        bounds = THRESHOLD_BOUNDS[AlertCode(code)]
        assert bounds.ceiling.value == reference == DEFAULT_ALERT_RULES[AlertCode(code)].threshold
        assert bounds.ceiling.confirmed and not bounds.floor.confirmed
        errors = refused(**{code: RuleOverride(threshold=reference + 1, source=POLICY)})
        assert f"{reference + 1} mmHg is above the ceiling of {reference} mmHg" in errors[f"site:{code}"]
        # More sensitive is a documented clinic decision.
        rules = resolve_alert_rules(
            site={AlertCode(code): RuleOverride(threshold=reference - 5, source=POLICY)}
        )
        rule = rules[AlertCode(code)]
        assert (rule.threshold, rule.origin, rule.source) == (reference - 5, RuleOrigin.SITE, POLICY)


def test_floors_keep_an_alert_from_sounding_on_ordinary_readings() -> None:
    errors = refused(sbp_high=RuleOverride(threshold=120, source=POLICY))
    assert "120 mmHg is below the floor of 140 mmHg (clinic default, unconfirmed" in errors["site:sbp_high"]
    assert resolve_alert_rules(site={AlertCode.SBP_HIGH: RuleOverride(threshold=140, source=POLICY)})


def test_unconfirmed_defaults_move_within_a_band_each_bound_with_its_source() -> None:
    # "low" rules fire sooner at a higher number: SpO2 90–95, RR 8–12, HR low 40–60; HR high 100–120.
    cases = {
        AlertCode.SPO2_LOW: (90, 95, "%"),
        AlertCode.RR_LOW: (8, 12, "/min"),
        AlertCode.HR_LOW: (40, 60, "bpm"),
        AlertCode.HR_HIGH: (100, 120, "bpm"),
    }
    for code, (floor, ceiling, unit) in cases.items():
        bounds = THRESHOLD_BOUNDS[code]
        assert (bounds.floor.value, bounds.ceiling.value, bounds.unit) == (floor, ceiling, unit)
        assert not bounds.floor.confirmed and not bounds.ceiling.confirmed
        assert "unconfirmed" in bounds.floor.source and "unconfirmed" in bounds.ceiling.source
        for inside in (floor, ceiling):
            resolve_alert_rules(protocol={code: RuleOverride(threshold=inside, source=POLICY)})
        with pytest.raises(AlertConfigError, match="below the floor"):
            resolve_alert_rules(protocol={code: RuleOverride(threshold=floor - 1, source=POLICY)})
        with pytest.raises(AlertConfigError, match="above the ceiling"):
            resolve_alert_rules(protocol={code: RuleOverride(threshold=ceiling + 1, source=POLICY)})
    spo2 = refused(spo2_low=RuleOverride(threshold=85, source=POLICY))["site:spo2_low"]
    assert "85% is below the floor of 90%" in spo2 and "the alert would come late" in spo2


def test_fixed_thresholds_cannot_move() -> None:
    assert THRESHOLD_BOUNDS[AlertCode.SEDATION].fixed and THRESHOLD_BOUNDS[AlertCode.PHQ9_ITEM9].fixed
    errors = refused(
        sedation=RuleOverride(threshold=2, source=POLICY), phq9_item9=RuleOverride(threshold=1, source=POLICY)
    )
    assert "fixed at 1 MOAA/S point" in errors["site:sedation"]
    assert "fixed at 0" in errors["site:phq9_item9"]
    errors = refused(loss_of_consciousness=RuleOverride(threshold=1, source=POLICY))
    assert "has no adjustable threshold" in errors["site:loss_of_consciousness"]


def test_critical_respiratory_and_reminder_rules_are_always_on() -> None:
    critical = {r.code for r in DEFAULT_ALERT_RULES.values() if r.severity is Severity.CRITICAL}
    assert critical <= set(ALWAYS_ON)
    assert {
        AlertCode.LOSS_OF_CONSCIOUSNESS,
        AlertCode.SPO2_LOW,
        AlertCode.RR_LOW,
        AlertCode.SBP_HIGH,
        AlertCode.DBP_HIGH,
        AlertCode.READING_OVERDUE,
    } <= set(ALWAYS_ON)
    for code in ALWAYS_ON:
        assert override_problems(code, RuleOverride(enabled=False, source=POLICY)) == [
            f"cannot be switched off: {ALWAYS_ON[code]}"
        ]
    # Warnings may be switched off, with a source.
    rules = resolve_alert_rules(
        site={AlertCode.HR_LOW: RuleOverride(enabled=False, source="Athletes clinic policy")}
    )
    assert not rules[AlertCode.HR_LOW].enabled


def test_severity_may_be_raised_never_lowered() -> None:
    errors = refused(
        spo2_low=RuleOverride(severity=Severity.WARNING, source=POLICY),
        sbp_rise=RuleOverride(severity=Severity.INFO, source=POLICY),
    )
    assert (
        "is critical in the reference: its severity may be raised, not lowered to warning"
        in errors["site:spo2_low"]
    )
    assert "lowered to info" in errors["site:sbp_rise"]
    rules = resolve_alert_rules(
        site={AlertCode.SBP_RISE: RuleOverride(severity=Severity.CRITICAL, source=POLICY)}
    )
    assert rules[AlertCode.SBP_RISE].severity is Severity.CRITICAL


@pytest.mark.parametrize("source", ["", "   ", "x", "policy", "aaaaaaaaaaaa", "1234567890", "x x x x x x"])
def test_a_placeholder_is_not_a_source(source: str) -> None:
    assert source_problem(source) is not None
    message = refused(sbp_high=RuleOverride(threshold=170, source=source))["site:sbp_high"]
    assert "needs a source" in message or "is not a reference" in message


def test_a_pasted_policy_is_refused_not_cut() -> None:
    problem = source_problem("Clinic policy " * 30)
    assert problem is not None and "more than 300" in problem


@pytest.mark.parametrize("source", ["Clinic BP policy 2026-03", "IV protocol v3", "Dr Lee memo 12/2026"])
def test_a_named_policy_is_a_source(source: str) -> None:
    assert source_problem(source) is None


def test_the_protocol_layer_is_checked_the_same_way() -> None:
    with pytest.raises(AlertConfigError) as exc:
        resolve_alert_rules(
            site={AlertCode.SBP_HIGH: RuleOverride(threshold=170, source=POLICY)},
            protocol={AlertCode.SBP_HIGH: RuleOverride(threshold=190, source="IV protocol v3")},
        )
    assert set(exc.value.errors) == {"protocol:sbp_high"}
    assert (
        "The protocol setting for Systolic BP high (sbp_high): 190 mmHg"
        in exc.value.errors["protocol:sbp_high"]
    )


def test_stored_bad_settings_are_skipped_at_the_chair_and_250_over_105_alerts() -> None:
    """A setting saved before these rules existed is not applied: the reference default protects the patient,
    and the page can say which stored change was set aside."""
    stored = {
        AlertCode.SBP_HIGH: RuleOverride(threshold=400, source="x"),
        AlertCode.SPO2_LOW: RuleOverride(enabled=False, source="x"),
        AlertCode.RR_LOW: RuleOverride(enabled=False, source="x"),
        AlertCode.LOSS_OF_CONSCIOUSNESS: RuleOverride(enabled=False, source="x"),
        AlertCode.DBP_HIGH: RuleOverride(threshold=100, source=POLICY),  # valid: applied
    }
    resolved = applicable_alert_rules(site=stored)
    assert set(resolved.not_applied) == {
        "site:sbp_high",
        "site:spo2_low",
        "site:rr_low",
        "site:loss_of_consciousness",
    }
    rules = resolved.rules
    assert rules[AlertCode.SBP_HIGH] == DEFAULT_ALERT_RULES[AlertCode.SBP_HIGH]
    assert rules[AlertCode.DBP_HIGH].threshold == 100
    reading = VitalReading(
        taken_at=T0, sbp_mmhg=250, dbp_mmhg=105, hr_bpm=90, spo2_pct=85, rr_per_min=6, moaas=0
    )
    codes = {
        a.code
        for a in evaluate_reading(
            reading=reading, baseline=None, dose_started_at=None, session_key="s", rules=rules
        )
    }
    assert {
        AlertCode.SBP_HIGH,
        AlertCode.DBP_HIGH,
        AlertCode.SPO2_LOW,
        AlertCode.RR_LOW,
        AlertCode.LOSS_OF_CONSCIOUSNESS,
    } <= codes
