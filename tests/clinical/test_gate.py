"""Pre-dose gate: every item, both sides of each threshold, and overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from ketaclinic.clinical.gate import (
    LABEL_PREDOSE_BP,
    PRACTICE_ESCORT,
    GateContext,
    GateItem,
    GateItemKey,
    GateOverride,
    GateRequirements,
    GateStatus,
    PregnancyTest,
    ProtocolCheck,
    Requirement,
    ScaleStatus,
    blocking_items,
    esketamine_gate_requirements,
    evaluate_gate,
    gate_open,
)
from ketaclinic.clinical.vitals import VitalReading

TODAY = date(2025, 3, 3)
T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
BASELINE = VitalReading(
    taken_at=T0 - timedelta(minutes=5),
    sbp_mmhg=130,
    dbp_mmhg=80,
    hr_bpm=72,
    spo2_pct=98,
    rr_per_min=14,
    moaas=5,
)
ESK = esketamine_gate_requirements(screening_max_age_days=30, required_scales=("phq9",))
IV = GateRequirements(screening_max_age_days=30)

READY = GateContext(
    today=TODAY,
    consent_current=True,
    consent_signed_on=date(2025, 1, 10),
    screening_signed_on=date(2025, 2, 20),
    rems_patient_enrolled=True,
    rems_setting_certified=True,
    hours_since_food=3,
    minutes_since_liquids=45,
    nasal_steroid_or_decongestant_today=False,
    escort_confirmed=True,
    ride_home_confirmed=True,
    baseline=BASELINE,
    scales=(ScaleStatus(code="phq9", name="PHQ-9", completed=True),),
)


def items_for(ctx: GateContext, req: GateRequirements = ESK) -> dict[str, GateItem]:
    return {i.key: i for i in evaluate_gate(context=ctx, requirements=req)}


def item(key: GateItemKey, req: GateRequirements = ESK, **changes: object) -> GateItem:
    return items_for(replace(READY, **changes), req)[key.value]


def test_ready_esketamine_session_opens_the_gate() -> None:
    items = evaluate_gate(context=READY, requirements=ESK)
    assert {i.key for i in items} == {k.value for k in GateItemKey}
    statuses = {i.key: i.status for i in items}
    assert statuses[GateItemKey.NASAL_PRETREATMENT] is GateStatus.NOT_APPLICABLE  # none used today
    assert statuses[GateItemKey.PREGNANCY_TEST] is GateStatus.NOT_APPLICABLE  # protocol doesn't require it
    assert all(s in (GateStatus.PASS, GateStatus.NOT_APPLICABLE) for s in statuses.values())
    assert gate_open(items=items)
    assert all(i.reason and i.source for i in items)


# --------------------------------------------------------------------------- consent and screening


def test_consent() -> None:
    assert item(GateItemKey.CONSENT).reason == "Consent signed 2025-01-10 (52 days ago)"
    lapsed = item(GateItemKey.CONSENT, consent_current=False)
    assert (
        lapsed.status is GateStatus.FAIL
        and lapsed.reason == "Consent is not current (last signed 2025-01-10, 52 days ago)"
    )
    assert lapsed.overridable is False
    assert item(GateItemKey.CONSENT, consent_signed_on=None).status is GateStatus.FAIL


def test_screening_age_edges() -> None:
    # Max 30 days: signed 2025-02-01 is 30 days before 2025-03-03 (28 + 2) -> still valid; 31 days -> stale.
    ok = item(GateItemKey.SCREENING, screening_signed_on=date(2025, 2, 1))
    assert ok.status is GateStatus.PASS and ok.reason == "Screening signed 30 days ago (valid 30 days)"
    stale = item(GateItemKey.SCREENING, screening_signed_on=date(2025, 1, 31))
    assert stale.status is GateStatus.FAIL
    assert stale.reason == "Screening signed 31 days ago: older than 30 days, redo it"
    assert item(GateItemKey.SCREENING, screening_signed_on=None).reason == "Screening not signed"
    assert item(GateItemKey.SCREENING, screening_signed_on=date(2025, 3, 4)).status is GateStatus.FAIL


# --------------------------------------------------------------------------- REMS


def test_rems_items_fail_and_cannot_be_overridden() -> None:
    enrolled = item(GateItemKey.REMS_PATIENT_ENROLLED, rems_patient_enrolled=False)
    assert enrolled.status is GateStatus.FAIL and not enrolled.overridable
    assert enrolled.reason == "Patient is not enrolled in the SPRAVATO REMS"
    unknown = item(GateItemKey.REMS_SETTING_CERTIFIED, rems_setting_certified=None)
    assert unknown.reason == "Setting not recorded as certified in the SPRAVATO REMS"
    items = evaluate_gate(context=replace(READY, rems_patient_enrolled=False), requirements=ESK)
    override = GateOverride(item_key="rems_patient_enrolled", reason="enrolling today", prescriber="dr.a")
    assert not gate_open(items=items, overrides=[override])


def test_rems_not_applicable_to_iv() -> None:
    iv_items = items_for(replace(READY, rems_patient_enrolled=None), IV)
    assert iv_items["rems_patient_enrolled"].status is GateStatus.NOT_APPLICABLE


# --------------------------------------------------------------------------- fasting and nasal pre-treatment


@pytest.mark.parametrize(
    ("hours", "status", "reason"),
    [
        (2.0, GateStatus.PASS, "Last food 2 h ago (needs ≥2 h)"),
        # 2 − 1.99 = 0.01 h = 0.6 min -> wait 1 more min (rounded up).
        (1.99, GateStatus.FAIL, "Last food 1.99 h ago: needs ≥2 h (wait 1 more min)"),
        # 2 − 1.5 = 0.5 h = 30 min.
        (1.5, GateStatus.FAIL, "Last food 1.5 h ago: needs ≥2 h (wait 30 more min)"),
        (None, GateStatus.FAIL, "Time since food not recorded"),
    ],
)
def test_food_fast_edges(hours: float | None, status: GateStatus, reason: str) -> None:
    got = item(GateItemKey.FOOD, hours_since_food=hours)
    assert (got.status, got.reason) == (status, reason)


def test_liquids_fast_edges() -> None:
    assert item(GateItemKey.LIQUIDS, minutes_since_liquids=30).status is GateStatus.PASS
    short = item(GateItemKey.LIQUIDS, minutes_since_liquids=29)
    assert short.status is GateStatus.FAIL and short.reason.endswith("(wait 1 more min)")


def test_fasting_not_applicable_when_protocol_has_no_rule() -> None:
    assert item(GateItemKey.FOOD, IV, hours_since_food=None).status is GateStatus.NOT_APPLICABLE
    assert item(GateItemKey.LIQUIDS, IV).status is GateStatus.NOT_APPLICABLE


def test_nasal_pretreatment() -> None:
    used = {"nasal_steroid_or_decongestant_today": True}
    assert item(
        GateItemKey.NASAL_PRETREATMENT, **used, minutes_since_nasal_steroid_or_decongestant=60
    ).status is (GateStatus.PASS)
    early = item(GateItemKey.NASAL_PRETREATMENT, **used, minutes_since_nasal_steroid_or_decongestant=59)
    assert early.status is GateStatus.FAIL and early.reason.endswith("(wait 1 more min)")
    assert item(GateItemKey.NASAL_PRETREATMENT, **used).status is GateStatus.FAIL  # time not recorded
    not_asked = item(GateItemKey.NASAL_PRETREATMENT, nasal_steroid_or_decongestant_today=None)
    assert not_asked.status is GateStatus.FAIL


# --------------------------------------------------------------------------- escort and pregnancy


def test_escort_and_ride_home() -> None:
    missing = item(GateItemKey.ESCORT, ride_home_confirmed=False)
    assert missing.status is GateStatus.FAIL and missing.reason == "Not confirmed: ride home"
    both = item(GateItemKey.ESCORT, escort_confirmed=False, ride_home_confirmed=False)
    assert both.reason == "Not confirmed: escort, ride home"
    # IV default escort rule is practice-borrowed, so unconfirmed.
    assert item(GateItemKey.ESCORT, IV).confirmed is PRACTICE_ESCORT.confirmed is False
    assert item(GateItemKey.ESCORT).confirmed is True


PREG = replace(ESK, pregnancy_test=Requirement(value=7, source="protocol v2", confirmed=True))


@pytest.mark.parametrize(
    ("result", "tested_on", "status"),
    [
        (PregnancyTest.NEGATIVE, date(2025, 2, 24), GateStatus.PASS),  # 7 days old: accepted
        (PregnancyTest.NEGATIVE, date(2025, 2, 23), GateStatus.FAIL),  # 8 days old: too old
        (PregnancyTest.POSITIVE, date(2025, 3, 3), GateStatus.FAIL),
        (PregnancyTest.NOT_INDICATED, None, GateStatus.FAIL),  # the intake does not say so
        (None, None, GateStatus.FAIL),
    ],
)
def test_pregnancy_test(result: PregnancyTest | None, tested_on: date | None, status: GateStatus) -> None:
    got = item(GateItemKey.PREGNANCY_TEST, PREG, pregnancy_test=result, pregnancy_test_on=tested_on)
    assert got.status is status
    assert "protocol v2" in got.source


# --------------------------------------------------------------------------- baseline vitals


@pytest.mark.parametrize(
    ("sbp", "dbp", "status"),
    [
        (140, 90, GateStatus.PASS),  # at the guide: not above it
        (141, 90, GateStatus.NEEDS_DECISION),
        (140, 91, GateStatus.NEEDS_DECISION),
    ],
)
def test_esketamine_predose_bp_guide(sbp: int, dbp: int, status: GateStatus) -> None:
    got = item(GateItemKey.BASELINE_VITALS, baseline=replace(BASELINE, sbp_mmhg=sbp, dbp_mmhg=dbp))
    assert got.status is status
    assert got.source == LABEL_PREDOSE_BP.source


def test_predose_bp_message() -> None:
    got = item(GateItemKey.BASELINE_VITALS, baseline=replace(BASELINE, sbp_mmhg=152, dbp_mmhg=94))
    assert got.reason == (
        "BP 152/94 is above the pre-dose limit 140/90: "
        "the prescriber must record a decision to treat or delay"
    )


def test_baseline_missing_fails() -> None:
    assert item(GateItemKey.BASELINE_VITALS, baseline=None).reason == "No pre-dose blood pressure recorded"


def test_iv_bp_above_140_90_needs_a_prescriber_and_180_110_is_a_stop() -> None:
    # clinical.md §11: the label's >140/90 rule for every route; ≥180/110 stops until a prescriber decides.
    ok = item(GateItemKey.BASELINE_VITALS, IV, baseline=replace(BASELINE, sbp_mmhg=138, dbp_mmhg=88))
    assert ok.status is GateStatus.PASS and ok.reason == "BP 138/88 (limit 140/90)"
    high = item(GateItemKey.BASELINE_VITALS, IV, baseline=replace(BASELINE, sbp_mmhg=150, dbp_mmhg=95))
    assert high.status is GateStatus.NEEDS_DECISION and high.confirmed is False and "§11" in high.source
    stop = item(GateItemKey.BASELINE_VITALS, IV, baseline=replace(BASELINE, sbp_mmhg=178, dbp_mmhg=108))
    assert stop.status is GateStatus.NEEDS_DECISION  # the walkthrough's 178/108 no longer passes
    stop = item(GateItemKey.BASELINE_VITALS, IV, baseline=replace(BASELINE, sbp_mmhg=182, dbp_mmhg=100))
    assert stop.status is GateStatus.FAIL and "do not dose" in stop.reason and stop.overridable
    esk_stop = item(GateItemKey.BASELINE_VITALS, baseline=replace(BASELINE, sbp_mmhg=150, dbp_mmhg=112))
    assert esk_stop.status is GateStatus.FAIL


def test_a_suicidality_flag_always_shows_on_the_gate() -> None:
    clear = item(GateItemKey.SUICIDALITY, IV)
    assert clear.status is GateStatus.PASS
    flagged = item(GateItemKey.SUICIDALITY, IV, suicidality_flags=("PHQ-9 item 9 is 1 (above 0)",))
    assert flagged.status is GateStatus.NEEDS_DECISION and "PHQ-9 item 9" in flagged.reason


def test_iv_absolute_alerts_need_a_decision() -> None:
    low_sat = item(GateItemKey.BASELINE_VITALS, IV, baseline=replace(BASELINE, spo2_pct=91))
    assert low_sat.status is GateStatus.NEEDS_DECISION
    assert low_sat.reason == "SpO2 91% before dosing: below 92%" and low_sat.confirmed is False


def test_fail_limit_option() -> None:
    strict = replace(ESK, predose_bp_limit=replace(LABEL_PREDOSE_BP, status_above=GateStatus.FAIL))
    got = item(GateItemKey.BASELINE_VITALS, strict, baseline=replace(BASELINE, sbp_mmhg=141))
    assert got.status is GateStatus.FAIL


# --------------------------------------------------------------------------- scales and protocol checks


def test_scales() -> None:
    missing = item(GateItemKey.PRE_SESSION_SCALES, scales=())
    assert missing.status is GateStatus.FAIL and missing.reason == "Not completed: phq9"
    named = item(
        GateItemKey.PRE_SESSION_SCALES, scales=(ScaleStatus(code="phq9", name="PHQ-9", completed=False),)
    )
    assert named.reason == "Not completed: PHQ-9"
    flagged = item(
        GateItemKey.PRE_SESSION_SCALES,
        scales=(
            ScaleStatus(code="phq9", name="PHQ-9", completed=True, flagged=True, flag_reason="item 9 = 2"),
        ),
    )
    assert flagged.status is GateStatus.NEEDS_DECISION
    assert flagged.reason == "Flagged for review — PHQ-9: item 9 = 2"
    assert item(GateItemKey.PRE_SESSION_SCALES, IV, scales=()).status is GateStatus.NOT_APPLICABLE


def test_protocol_checks_become_items() -> None:
    ctx = replace(
        READY, protocol_checks=(ProtocolCheck(key="ecg", title="ECG on file", met=False, source="CPSBC"),)
    )
    items = items_for(ctx)
    assert items["protocol:ecg"].status is GateStatus.FAIL and items["protocol:ecg"].source == "CPSBC"


# --------------------------------------------------------------------------- overrides


def test_overrides_open_the_gate_only_with_reason_and_prescriber() -> None:
    ctx = replace(READY, baseline=replace(BASELINE, sbp_mmhg=150))
    items = evaluate_gate(context=ctx, requirements=ESK)
    assert not gate_open(items=items)
    assert [i.key for i in blocking_items(items=items)] == ["baseline_vitals"]
    good = GateOverride(
        item_key="baseline_vitals", reason="Chronic HTN, usual BP 150s; benefit outweighs", prescriber="dr.a"
    )
    assert gate_open(items=items, overrides=[good])
    assert not gate_open(items=items, overrides=[replace(good, reason="   ")])
    assert not gate_open(items=items, overrides=[replace(good, prescriber="")])
    assert not gate_open(items=items, overrides=[replace(good, item_key="food")])


def test_every_blocking_item_needs_its_own_override() -> None:
    ctx = replace(READY, hours_since_food=1, escort_confirmed=False)
    items = evaluate_gate(context=ctx, requirements=ESK)
    food = GateOverride(item_key="food", reason="ate a cracker 1 h ago; accepted", prescriber="dr.a")
    assert [i.key for i in blocking_items(items=items, overrides=[food])] == ["escort"]
    escort = GateOverride(item_key="escort", reason="escort arriving, confirmed by phone", prescriber="dr.a")
    assert gate_open(items=items, overrides=[food, escort])


def test_the_screening_validity_period_is_shown_as_an_unconfirmed_default() -> None:
    from datetime import date

    from ketaclinic.clinical import gate

    context = gate.GateContext(
        today=date(2027, 1, 10),
        consent_current=True,
        consent_signed_on=date(2027, 1, 1),
        screening_signed_on=date(2027, 1, 5),
    )
    items = gate.evaluate_gate(context=context, requirements=gate.GateRequirements(screening_max_age_days=3))
    screening = next(i for i in items if i.key == "screening")
    assert screening.status == "fail" and "older than 3 days" in screening.reason  # 5 days old
    assert screening.confirmed is False
