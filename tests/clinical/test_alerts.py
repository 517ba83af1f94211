"""Alert rules, configuration overrides, escalation and emergency checklists."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ketaclinic.clinical.alerts import (
    DEFAULT_ALERT_RULES,
    DEFAULT_ESCALATE_AFTER,
    EMERGENCY_CHECKLISTS,
    ESCALATE_AFTER_CONFIRMED,
    AlertCode,
    AlertConfigError,
    AlertRule,
    Emergency,
    RuleOrigin,
    RuleOverride,
    Severity,
    checklists_for,
    evaluate_reading,
    needs_escalation,
    overdue_alert,
    phq9_item9_alert,
    resolve_alert_rules,
)
from ketaclinic.clinical.vitals import DueReading, VitalReading

T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
BASELINE = VitalReading(
    taken_at=T0 - timedelta(minutes=5),
    sbp_mmhg=130,
    dbp_mmhg=80,
    hr_bpm=80,
    spo2_pct=98,
    rr_per_min=14,
    moaas=5,
)


NORMAL = VitalReading(taken_at=T0, sbp_mmhg=130, dbp_mmhg=80, hr_bpm=80, spo2_pct=98, rr_per_min=14, moaas=5)


def reading(minute: int = 40, **values: int | None) -> VitalReading:
    return replace(NORMAL, taken_at=T0 + timedelta(minutes=minute), **values)


def codes(
    r: VitalReading,
    *,
    baseline: VitalReading | None = BASELINE,
    rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> set[AlertCode]:
    alerts = evaluate_reading(reading=r, baseline=baseline, dose_started_at=T0, session_key="s1", rules=rules)
    return {a.code for a in alerts}


def test_normal_reading_raises_nothing() -> None:
    assert codes(reading()) == set()


@pytest.mark.parametrize(
    ("values", "code", "fires"),
    [
        # SBP ≥180 (label Table 6 category) — 179 no, 180 yes. Baseline raised so the rise rule stays quiet.
        ({"sbp_mmhg": 179}, AlertCode.SBP_HIGH, False),
        ({"sbp_mmhg": 180}, AlertCode.SBP_HIGH, True),
        # DBP ≥110 — 109 no, 110 yes.
        ({"dbp_mmhg": 109}, AlertCode.DBP_HIGH, False),
        ({"dbp_mmhg": 110}, AlertCode.DBP_HIGH, True),
        # HR >110 and <50 (strict): 110 and 50 are quiet.
        ({"hr_bpm": 110}, AlertCode.HR_HIGH, False),
        ({"hr_bpm": 111}, AlertCode.HR_HIGH, True),
        ({"hr_bpm": 50}, AlertCode.HR_LOW, False),
        ({"hr_bpm": 49}, AlertCode.HR_LOW, True),
        # SpO2 <92, RR <10 (strict).
        ({"spo2_pct": 92}, AlertCode.SPO2_LOW, False),
        ({"spo2_pct": 91}, AlertCode.SPO2_LOW, True),
        ({"rr_per_min": 10}, AlertCode.RR_LOW, False),
        ({"rr_per_min": 9}, AlertCode.RR_LOW, True),
    ],
)
def test_absolute_threshold_edges(values: dict[str, int], code: AlertCode, fires: bool) -> None:
    high_baseline = replace(BASELINE, sbp_mmhg=170, dbp_mmhg=100)
    assert (code in codes(reading(**values), baseline=high_baseline)) is fires


@pytest.mark.parametrize(
    ("values", "code", "fires"),
    [
        # Baseline 130/80. SBP rise ≥40: 169 (rise 39) no, 170 (rise 40) yes.
        ({"sbp_mmhg": 169}, AlertCode.SBP_RISE, False),
        ({"sbp_mmhg": 170}, AlertCode.SBP_RISE, True),
        # DBP rise ≥25: 104 (24) no, 105 (25) yes.
        ({"dbp_mmhg": 104}, AlertCode.DBP_RISE, False),
        ({"dbp_mmhg": 105}, AlertCode.DBP_RISE, True),
    ],
)
def test_rise_from_baseline_edges(values: dict[str, int], code: AlertCode, fires: bool) -> None:
    assert (code in codes(reading(**values))) is fires


def test_nurse_readable_messages() -> None:
    alerts = evaluate_reading(
        reading=reading(40, sbp_mmhg=184, dbp_mmhg=96),
        baseline=BASELINE,
        dose_started_at=T0,
        session_key="s1",
    )
    by_code = {a.code: a for a in alerts}
    assert by_code[AlertCode.SBP_HIGH].message == "BP 184/96 at 40 min: systolic ≥180"
    # 184 − 130 = 54 ≥ 40; 96 − 80 = 16 < 25, so no DBP rise.
    assert (
        by_code[AlertCode.SBP_RISE].message == "BP 184/96 at 40 min: systolic up 54 from baseline 130 (≥40)"
    )
    assert AlertCode.DBP_RISE not in by_code
    assert by_code[AlertCode.SBP_HIGH].severity is Severity.CRITICAL
    assert by_code[AlertCode.SBP_RISE].severity is Severity.WARNING
    assert [a.severity for a in alerts] == [Severity.CRITICAL, Severity.WARNING]  # most severe first


def test_other_messages() -> None:
    alerts = evaluate_reading(
        reading=reading(20, hr_bpm=118, spo2_pct=90, rr_per_min=8, moaas=3),
        baseline=BASELINE,
        dose_started_at=T0,
        session_key="s1",
    )
    messages = {a.code: a.message for a in alerts}
    assert messages == {
        AlertCode.SPO2_LOW: "SpO2 90% at 20 min: below 92%",
        AlertCode.RR_LOW: "Breathing rate 8/min at 20 min: below 10",
        AlertCode.HR_HIGH: "Heart rate 118 at 20 min: above 110",
        AlertCode.SEDATION: "MOAA/S 3 at 20 min: down from 5 before dosing (sedation)",
    }


def test_sources_and_confirmation_follow_the_reference() -> None:
    confirmed = {c for c, r in DEFAULT_ALERT_RULES.items() if r.confirmed}
    assert {AlertCode.SBP_HIGH, AlertCode.DBP_HIGH, AlertCode.SBP_RISE, AlertCode.DBP_RISE} <= confirmed
    assert {AlertCode.HR_HIGH, AlertCode.HR_LOW, AlertCode.SPO2_LOW, AlertCode.RR_LOW}.isdisjoint(confirmed)
    assert "Table 6" in DEFAULT_ALERT_RULES[AlertCode.SBP_HIGH].source
    assert "[U]" in DEFAULT_ALERT_RULES[AlertCode.SPO2_LOW].source
    alert = evaluate_reading(
        reading=reading(spo2_pct=88), baseline=BASELINE, dose_started_at=T0, session_key="s"
    )
    assert alert[0].confirmed is False and alert[0].origin is RuleOrigin.DEFAULT


def test_sedation_and_loss_of_consciousness() -> None:
    assert AlertCode.SEDATION in codes(reading(moaas=4))  # any decrease from 5
    assert codes(reading(moaas=5)) == set()
    # MOAA/S 0 raises only the critical loss-of-consciousness alert, not sedation as well.
    alerts = evaluate_reading(
        reading=reading(moaas=0), baseline=BASELINE, dose_started_at=T0, session_key="s"
    )
    assert [(a.code, a.severity) for a in alerts] == [(AlertCode.LOSS_OF_CONSCIOUSNESS, Severity.CRITICAL)]
    assert alerts[0].message == "MOAA/S 0 at 40 min: no response — loss of consciousness"


def test_rules_needing_a_baseline_skip_pre_dose_readings() -> None:
    pre = reading(-3, sbp_mmhg=175, moaas=3)  # +45 and −2 vs BASELINE, but taken before dosing
    alerts = evaluate_reading(reading=pre, baseline=BASELINE, dose_started_at=T0, session_key="s")
    assert alerts == []
    # Absolute rules still apply before dosing, and say so.
    pre_high = evaluate_reading(
        reading=reading(-3, sbp_mmhg=182), baseline=None, dose_started_at=None, session_key="s"
    )
    assert pre_high[0].message == "BP 182/80 before dosing: systolic ≥180"


def test_missing_measurements_are_skipped() -> None:
    partial = VitalReading(taken_at=T0 + timedelta(minutes=10), spo2_pct=90)
    assert codes(partial) == {AlertCode.SPO2_LOW}


def test_dedup_key_is_stable_per_session_and_code() -> None:
    first = evaluate_reading(
        reading=reading(40, sbp_mmhg=185), baseline=BASELINE, dose_started_at=T0, session_key="s9"
    )
    later = evaluate_reading(
        reading=reading(50, sbp_mmhg=190), baseline=BASELINE, dose_started_at=T0, session_key="s9"
    )
    key = {a.code: a.dedup_key for a in first}[AlertCode.SBP_HIGH]
    assert key == "s9:sbp_high"
    assert key == {a.code: a.dedup_key for a in later}[AlertCode.SBP_HIGH]


# --------------------------------------------------------------------------- configuration


def test_site_and_protocol_overrides() -> None:
    rules = resolve_alert_rules(
        site={
            AlertCode.SBP_HIGH: RuleOverride(threshold=170, source="Site policy 2025-01"),
            AlertCode.HR_HIGH: RuleOverride(severity=Severity.CRITICAL, source="Site policy 2025-01"),
        },
        protocol={AlertCode.SBP_HIGH: RuleOverride(threshold=175, source="IV protocol v3")},
    )
    sbp = rules[AlertCode.SBP_HIGH]
    assert (sbp.threshold, sbp.origin, sbp.source, sbp.confirmed) == (
        175,
        RuleOrigin.PROTOCOL,
        "IV protocol v3",
        True,
    )
    hr = rules[AlertCode.HR_HIGH]
    # Severity-only change keeps the unconfirmed default threshold 110.
    assert (hr.threshold, hr.severity, hr.origin, hr.confirmed) == (
        110,
        Severity.CRITICAL,
        RuleOrigin.SITE,
        False,
    )
    assert AlertCode.SBP_HIGH in codes(
        reading(sbp_mmhg=175), rules=rules, baseline=replace(BASELINE, sbp_mmhg=170)
    )
    assert AlertCode.SBP_HIGH not in codes(
        reading(sbp_mmhg=174), rules=rules, baseline=replace(BASELINE, sbp_mmhg=170)
    )
    assert DEFAULT_ALERT_RULES[AlertCode.SBP_HIGH].threshold == 180  # defaults untouched


def test_disabled_rule_is_silent() -> None:
    rules = resolve_alert_rules(
        site={AlertCode.HR_LOW: RuleOverride(enabled=False, source="athletes clinic")}
    )
    assert AlertCode.HR_LOW not in codes(reading(hr_bpm=45), rules=rules)


def test_bad_overrides_are_all_reported() -> None:
    with pytest.raises(AlertConfigError) as exc:
        resolve_alert_rules(
            site={AlertCode.SBP_HIGH: RuleOverride(threshold=170, source="  ")},
            protocol={
                AlertCode.LOSS_OF_CONSCIOUSNESS: RuleOverride(threshold=1, source="x"),
                AlertCode.RR_LOW: RuleOverride(threshold=-1, source="x"),
            },
        )
    assert set(exc.value.errors) == {"site:sbp_high", "protocol:loss_of_consciousness", "protocol:rr_low"}


# --------------------------------------------------------------------------- overdue and PHQ-9 item 9


def test_overdue_alert() -> None:
    due = DueReading(
        label="every 10 min during infusion",
        due_at=T0 + timedelta(minutes=10),
        grace=timedelta(minutes=5),
        source="src",
        confirmed=True,
    )
    assert overdue_alert(due=due, now=T0 + timedelta(minutes=15), session_key="s1") is None
    alert = overdue_alert(due=due, now=T0 + timedelta(minutes=18), session_key="s1")
    assert alert is not None
    # Due at 10, now 18 -> 8 min late.
    assert alert.message == "Vitals overdue: the every 10 min during infusion reading was due 8 min ago"
    assert alert.severity is Severity.INFO
    assert alert.dedup_key == "s1:reading_overdue:2025-03-03T14:10:00+00:00"
    assert alert.source.startswith("src; ") and alert.confirmed
    assert overdue_alert(due=None, now=T0, session_key="s1") is None
    # An unconfirmed cadence (IM, sublingual) makes the overdue alert unconfirmed too.
    unconfirmed = overdue_alert(
        due=replace(due, source="clinic default, unconfirmed", confirmed=False),
        now=T0 + timedelta(minutes=18),
        session_key="s1",
    )
    assert unconfirmed is not None and not unconfirmed.confirmed
    assert unconfirmed.source.startswith("clinic default, unconfirmed")


def test_phq9_item9_alert() -> None:
    assert phq9_item9_alert(item9_answer=0, answered_at=T0, session_key="s1") is None
    alert = phq9_item9_alert(item9_answer=1, answered_at=T0, session_key="s1", response_key="r7")
    assert alert is not None and alert.severity is Severity.CRITICAL
    assert alert.dedup_key == "s1:phq9_item9:r7"
    assert alert.message.startswith("PHQ-9 item 9 answered 1")
    with pytest.raises(ValueError, match="outside 0–3"):
        phq9_item9_alert(item9_answer=4, answered_at=T0, session_key="s1")


# --------------------------------------------------------------------------- escalation


def test_escalation_edges() -> None:
    raised = T0
    assert DEFAULT_ESCALATE_AFTER == timedelta(minutes=5) and ESCALATE_AFTER_CONFIRMED is False
    assert not needs_escalation(
        alert_raised_at=raised, acknowledged_at=None, now=raised + timedelta(seconds=299)
    )
    assert needs_escalation(alert_raised_at=raised, acknowledged_at=None, now=raised + timedelta(minutes=5))
    ack = raised + timedelta(minutes=2)
    assert not needs_escalation(
        alert_raised_at=raised, acknowledged_at=ack, now=raised + timedelta(minutes=9)
    )
    # An acknowledgement stamped after "now" does not count yet.
    assert needs_escalation(
        alert_raised_at=raised,
        acknowledged_at=raised + timedelta(minutes=20),
        now=raised + timedelta(minutes=9),
    )
    assert not needs_escalation(
        alert_raised_at=raised,
        acknowledged_at=None,
        now=raised + timedelta(minutes=9),
        escalate_after=timedelta(minutes=10),
    )


# --------------------------------------------------------------------------- checklists


def test_all_emergency_checklists_exist() -> None:
    assert set(EMERGENCY_CHECKLISTS) == set(Emergency)
    assert all(c.steps for c in EMERGENCY_CHECKLISTS.values())


def test_checklists_never_name_a_dose_and_flag_protocol_steps() -> None:
    for checklist in EMERGENCY_CHECKLISTS.values():
        for step in checklist.steps:
            assert not re.search(r"\d\s*(mg|mcg|µg|g|ml|mL)\b", step.text), step.text
            assert step.source
            if "per clinic" in step.text or "per the institutional" in step.text:
                assert step.confirmed is False, step.text


def test_checklists_for_alert_codes() -> None:
    assert [c.emergency for c in checklists_for(AlertCode.SBP_HIGH)] == [Emergency.HYPERTENSIVE_SURGE]
    assert [c.emergency for c in checklists_for(AlertCode.SPO2_LOW)] == [Emergency.DESATURATION]
    assert checklists_for(AlertCode.READING_OVERDUE) == []
