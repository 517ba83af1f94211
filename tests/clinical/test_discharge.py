"""Discharge criteria, overrides and the REMS "ready to leave" time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ketaclinic.clinical.discharge import (
    ESKETAMINE_DISCHARGE,
    KETAMINE_DISCHARGE,
    AcceptableRange,
    Criterion,
    DischargeConfig,
    DischargeCriterion,
    DischargeOverride,
    assess_discharge,
    blocking_criteria,
    default_discharge_config,
    discharge_allowed,
    physiological_criteria,
    ready_time,
)
from ketaclinic.clinical.vitals import Treatment, VitalField, VitalReading

T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
BASELINE = VitalReading(
    taken_at=T0 - timedelta(minutes=5),
    sbp_mmhg=130,
    dbp_mmhg=80,
    hr_bpm=80,
    spo2_pct=98,
    rr_per_min=14,
    moaas=5,
    cadss_total=0,
)


def at(minute: int, **values: int | None) -> VitalReading:
    return replace(BASELINE, taken_at=T0 + timedelta(minutes=minute), **values)


def crit(
    readings: list[VitalReading],
    which: Criterion,
    *,
    baseline: VitalReading | None = BASELINE,
    config: DischargeConfig = ESKETAMINE_DISCHARGE,
) -> DischargeCriterion:
    found = physiological_criteria(readings=readings, baseline=baseline, dose_started_at=T0, config=config)
    return {c.criterion: c for c in found}[which]


def assess(
    now_min: int,
    readings: list[VitalReading],
    *,
    config: DischargeConfig = ESKETAMINE_DISCHARGE,
    clinician_confirms_stable: bool = True,
    escort_present: bool = True,
    driving_advice_given: bool = True,
) -> list[DischargeCriterion]:
    result = assess_discharge(
        config=config,
        dose_started_at=T0,
        now=T0 + timedelta(minutes=now_min),
        readings=readings,
        baseline=BASELINE,
        clinician_confirms_stable=clinician_confirms_stable,
        escort_present=escort_present,
        driving_advice_given=driving_advice_given,
    )
    return list(result.criteria)


# --------------------------------------------------------------------------- minimum monitoring time


def test_esketamine_minimum_is_120_min_and_not_overridable() -> None:
    assert default_discharge_config(Treatment.ESKETAMINE_NASAL) is ESKETAMINE_DISCHARGE
    early = {c.criterion: c for c in assess(119, [at(110)])}[Criterion.MIN_MONITORING]
    assert not early.met and early.reason == "119 min since first dose: minimum 120 min (1 min to go)"
    assert not early.overridable and early.confirmed
    on_time = {c.criterion: c for c in assess(120, [at(110)])}[Criterion.MIN_MONITORING]
    assert on_time.met and on_time.reason == "120 min since first dose (minimum 120)"


def test_iv_minimum_is_a_flagged_overridable_default() -> None:
    assert default_discharge_config(Treatment.KETAMINE_IV) is KETAMINE_DISCHARGE
    assert KETAMINE_DISCHARGE.min_monitoring_confirmed is False
    early = {c.criterion: c for c in assess(90, [at(80)], config=KETAMINE_DISCHARGE)}[
        Criterion.MIN_MONITORING
    ]
    assert not early.met and early.overridable and not early.confirmed


# --------------------------------------------------------------------------- vitals


@pytest.mark.parametrize(
    ("values", "met"),
    [
        # Baseline 130/80, HR 80; 20 % -> SBP ±26 (104–156), DBP ±16 (64–96), HR ±16 (64–96).
        ({"sbp_mmhg": 156}, True),
        ({"sbp_mmhg": 157}, False),
        ({"sbp_mmhg": 104}, True),
        ({"sbp_mmhg": 103}, False),
        ({"dbp_mmhg": 96}, True),
        ({"dbp_mmhg": 97}, False),
        ({"hr_bpm": 64}, True),
        ({"hr_bpm": 63}, False),
    ],
)
def test_vitals_within_20_percent_edges(values: dict[str, int], met: bool) -> None:
    assert crit([at(110, **values)], Criterion.VITALS).met is met


def test_vitals_message_and_flag() -> None:
    got = crit([at(110, sbp_mmhg=157)], Criterion.VITALS)
    assert got.reason == "At 110 min: SBP 157 not within 20% of baseline 130"
    assert got.confirmed is False and "PADSS" in got.source


def test_latest_reading_counts() -> None:
    assert crit([at(60, sbp_mmhg=170), at(110)], Criterion.VITALS).met
    assert not crit([at(60), at(110, sbp_mmhg=170)], Criterion.VITALS).met


def test_acceptable_range_rescues_a_value_outside_20_percent() -> None:
    config = replace(
        ESKETAMINE_DISCHARGE,
        acceptable_ranges={VitalField.SBP: AcceptableRange(low=90, high=160, source="protocol v1")},
    )
    assert crit([at(110, sbp_mmhg=157)], Criterion.VITALS, config=config).met
    outside = crit([at(110, sbp_mmhg=161)], Criterion.VITALS, config=config)
    assert (
        not outside.met
        and outside.reason == "At 110 min: SBP 161 not within 20% of baseline 130 nor in 90–160"
    )


def test_absolute_alert_blocks_even_within_20_percent() -> None:
    high_baseline = replace(BASELINE, sbp_mmhg=160, dbp_mmhg=100)
    # 180 is within 20 % of 160 (≤192) but SBP ≥180 is an alert threshold.
    got = crit([at(110, sbp_mmhg=180, dbp_mmhg=100)], Criterion.VITALS, baseline=high_baseline)
    assert not got.met and got.reason == "BP 180/100 at 110 min: systolic ≥180"
    assert not crit([at(110, spo2_pct=91)], Criterion.VITALS).met
    assert crit([at(110, spo2_pct=92)], Criterion.VITALS).met


def test_comparison_and_alert_problems_are_both_reported() -> None:
    # 185 − 130 = 55 > 26 (20 % of 130) and 185 ≥ 180.
    got = crit([at(110, sbp_mmhg=185)], Criterion.VITALS)
    assert (
        got.reason
        == "At 110 min: SBP 185 not within 20% of baseline 130; BP 185/80 at 110 min: systolic ≥180"
    )
    assert "Table 6" in got.source


def test_vitals_without_any_post_dose_reading() -> None:
    got = crit([], Criterion.VITALS)
    assert not got.met and got.reason == "No reading after dosing with SBP, DBP, HR"


# --------------------------------------------------------------------------- sedation and dissociation


def test_sedation_back_to_baseline() -> None:
    assert crit([at(110, moaas=5)], Criterion.SEDATION).met
    low = crit([at(110, moaas=4)], Criterion.SEDATION)
    assert not low.met and low.reason == "MOAA/S 4 at 110 min: still below pre-dose 5"
    assert not crit([at(110)], Criterion.SEDATION, baseline=replace(BASELINE, moaas=None)).met
    assert crit([at(110, moaas=None)], Criterion.SEDATION).reason == "No MOAA/S recorded after dosing"


@pytest.mark.parametrize(
    ("baseline_cadss", "latest", "met"),
    [
        (0, 4, True),  # ≤ 4: not above the presence threshold ">4" [U]
        (0, 5, False),
        (10, 8, True),  # above 4 but back to (below) the pre-dose score
        (10, 10, True),
        (10, 11, False),
    ],
)
def test_dissociation_resolved(baseline_cadss: int, latest: int, met: bool) -> None:
    base = replace(BASELINE, cadss_total=baseline_cadss)
    got = crit([at(110, cadss_total=latest)], Criterion.DISSOCIATION, baseline=base)
    assert got.met is met and got.confirmed is False


def test_dissociation_needs_a_post_dose_score() -> None:
    assert not crit([at(110, cadss_total=None)], Criterion.DISSOCIATION).met


# --------------------------------------------------------------------------- non-physiological criteria


def test_stable_escort_and_driving_advice() -> None:
    got = {c.criterion: c for c in assess(130, [at(120)], escort_present=False, driving_advice_given=False)}
    assert got[Criterion.ESCORT].reason == "No escort present to take the patient home"
    assert got[Criterion.DRIVING_ADVICE].reason.startswith("Tell the patient: no driving")
    assert not got[Criterion.ESCORT].met and not got[Criterion.DRIVING_ADVICE].met
    assert not {c.criterion: c for c in assess(130, [at(120)], clinician_confirms_stable=False)}[
        Criterion.CLINICALLY_STABLE
    ].met


# --------------------------------------------------------------------------- overall decision and overrides


def test_all_met_allows_discharge() -> None:
    criteria = assess(125, [at(40), at(120)])
    assert all(c.met for c in criteria) and discharge_allowed(criteria=criteria)


def test_override_needs_reason_and_clinician() -> None:
    criteria = assess(125, [at(120, moaas=4)])
    assert [c.criterion for c in blocking_criteria(criteria=criteria)] == [Criterion.SEDATION]
    ok = DischargeOverride(
        criterion=Criterion.SEDATION, reason="MOAA/S 4 is her usual drowsy baseline", clinician="dr.a"
    )
    assert discharge_allowed(criteria=criteria, overrides=[ok])
    assert not discharge_allowed(criteria=criteria, overrides=[replace(ok, reason=" ")])
    assert not discharge_allowed(criteria=criteria, overrides=[replace(ok, clinician="")])
    assert not discharge_allowed(criteria=criteria, overrides=[replace(ok, criterion=Criterion.ESCORT)])


def test_esketamine_two_hours_cannot_be_overridden_but_iv_default_can() -> None:
    override = DischargeOverride(
        criterion=Criterion.MIN_MONITORING, reason="patient insists", clinician="dr.a"
    )
    esk = assess(100, [at(95)])
    assert not discharge_allowed(criteria=esk, overrides=[override])
    iv = assess(100, [at(95)], config=KETAMINE_DISCHARGE)
    assert discharge_allowed(criteria=iv, overrides=[override])


# --------------------------------------------------------------------------- ready time (REMS question)


def test_ready_time_is_first_reading_from_which_all_stayed_met() -> None:
    readings = [
        at(10, moaas=3, cadss_total=20),  # sedated and dissociated
        at(40, sbp_mmhg=170, dbp_mmhg=96),  # 170 > 156 (baseline 130 + 20 %)
        at(60),  # all met from here on
        at(75),
        at(90),
    ]
    ready = ready_time(readings=readings, baseline=BASELINE, dose_started_at=T0, config=ESKETAMINE_DISCHARGE)
    assert ready == T0 + timedelta(minutes=60)
    result = assess_discharge(
        config=ESKETAMINE_DISCHARGE,
        dose_started_at=T0,
        now=T0 + timedelta(minutes=125),
        readings=readings,
        baseline=BASELINE,
        clinician_confirms_stable=True,
        escort_present=True,
        driving_advice_given=True,
    )
    assert (result.ready_at, result.minutes_until_ready) == (T0 + timedelta(minutes=60), 60)


def test_ready_time_ignores_an_early_pass_before_effects() -> None:
    # At 5 min all looks like baseline; at 20 the patient is sedated; ready again from 60.
    readings = [at(5), at(20, moaas=3), at(60)]
    assert ready_time(
        readings=readings, baseline=BASELINE, dose_started_at=T0, config=ESKETAMINE_DISCHARGE
    ) == (T0 + timedelta(minutes=60))


def test_ready_time_none_while_not_yet_ready() -> None:
    readings = [at(60), at(90, moaas=4)]
    assert (
        ready_time(readings=readings, baseline=BASELINE, dose_started_at=T0, config=ESKETAMINE_DISCHARGE)
        is None
    )


def test_ready_time_ignores_the_two_hour_minimum() -> None:
    # Ready at 45 even though the minimum monitoring time is 120.
    assert ready_time(
        readings=[at(45)], baseline=BASELINE, dose_started_at=T0, config=ESKETAMINE_DISCHARGE
    ) == (T0 + timedelta(minutes=45))
