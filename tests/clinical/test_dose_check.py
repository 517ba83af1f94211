"""The one dose check (clinical/dose_check.py): each case the clinic walkthrough found accepted at the chair."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from ketaclinic.clinical.body import Sex, body_size
from ketaclinic.clinical.dose_check import (
    Decided,
    Decision,
    DoseFinding,
    check_against_plan,
    check_concentration,
    check_device,
    check_dose_time,
    check_infusion_rate,
    check_session_dose,
    unresolved,
)
from ketaclinic.clinical.dosing import DoseOverrideRequired, DoseRefused, WeightBasis, calculate_dose
from ketaclinic.clinical.protocol_library import get_protocol
from ketaclinic.clinical.protocols import DoseRule, Protocol, ProtocolValidationError, protocol_from_dict

ELEKTD = get_protocol("iv-trd-elektd")
CRPS = get_protocol("iv-crps-cohen")
ESK = get_protocol("esk-trd-label")
IM = get_protocol("im-clinic-template")


def _rule(protocol: Protocol, n: int = 1) -> DoseRule:
    return protocol.dose_for_session(n)[1]


def _decisions(findings: Iterable[DoseFinding]) -> dict[str, Decision]:
    return {f.code: f.decision for f in findings}


def test_iv_500_mg_on_elektd_is_refused_at_any_weight() -> None:
    body = body_size(weight_kg=71.4, height_cm=175, sex=Sex.MALE)  # 500 mg = 7 mg/kg
    found = check_session_dose(protocol=ELEKTD, rule=_rule(ELEKTD), dose_mg=500, body=body)
    assert found.findings[0].decision is Decision.REFUSED
    assert "7 mg/kg is outside the hard limit 0.1–1 mg/kg" in found.findings[0].message
    assert "Fava 2020" in found.findings[0].source
    assert "above_mg_ceiling" in _decisions(found.findings)


def test_esketamine_is_28_56_or_84_mg_only() -> None:
    found = check_session_dose(protocol=ESK, rule=_rule(ESK, 2), dose_mg=100, body=None)
    assert _decisions(found.findings) == {"dose_not_allowed": Decision.REFUSED}
    assert check_session_dose(protocol=ESK, rule=_rule(ESK, 2), dose_mg=84, body=None).findings == ()
    # Day 1 is 56 mg; 84 mg on day 1 needs a prescriber's reason (label, clinical.md §2.1).
    day1 = check_session_dose(protocol=ESK, rule=_rule(ESK, 1), dose_mg=84, body=None)
    assert _decisions(day1.findings) == {"dose_outside_usual": Decision.PRESCRIBER_REASON}


def test_a_fourth_device_for_84_mg_is_refused_and_close_devices_warn() -> None:
    t = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert check_device(planned_dose_mg=84, device_number=3, at=t, previous_at=t - timedelta(minutes=5)) == []
    close = check_device(planned_dose_mg=84, device_number=2, at=t, previous_at=t - timedelta(minutes=2))
    assert close[0].decision is Decision.WARN and "5-minute rest" in close[0].message
    beyond = check_device(planned_dose_mg=84, device_number=4, at=t, previous_at=None)
    assert beyond[0].decision is Decision.REFUSED and "112 mg" in beyond[0].message


def test_100_mg_per_ml_undiluted_is_never_infused_and_stronger_than_policy_is_refused() -> None:
    rule = _rule(ELEKTD)
    assert check_concentration(protocol=ELEKTD, rule=rule, final_mg_ml=100)[0].code == "undiluted_100_iv"
    assert (
        check_concentration(protocol=ELEKTD, rule=rule, final_mg_ml=50)[0].code == "concentration_above_max"
    )
    assert check_concentration(protocol=ELEKTD, rule=rule, final_mg_ml=0.5) == []
    # 100 mg/mL at 13.5 mL/h = 1,350 mg/h: refused as a rate too.
    body = body_size(weight_kg=70, height_cm=175, sex=None)
    rate = check_infusion_rate(
        protocol=ELEKTD, rule=rule, body=body, final_mg_ml=100, rate_ml_per_h=13.5, dose_mg=35
    )
    assert rate.mg_per_h == pytest.approx(1350)
    assert _decisions(rate.findings) == {"rate_above_hard_limit": Decision.REFUSED}


def test_pump_rates_slower_faster_and_ten_times_the_plan() -> None:
    body = body_size(weight_kg=70, height_cm=175, sex=None)
    rule = _rule(ELEKTD)  # 35 mg over 40 min = 52.5 mg/h; 35 mg in 100 mL → 150 mL/h planned

    def check(ml_per_h: float) -> dict[str, Decision]:
        return _decisions(
            check_infusion_rate(
                protocol=ELEKTD, rule=rule, body=body, final_mg_ml=0.35, rate_ml_per_h=ml_per_h, dose_mg=35
            ).findings
        )

    assert check(150) == {} and check(75) == {}  # as planned, or slower
    assert check(200) == {"faster_than_protocol": Decision.PRESCRIBER_DECISION}  # 30 min
    assert check(1500) == {"rate_above_hard_limit": Decision.REFUSED}  # 10× planned


def test_crps_rate_is_capped_at_25_mg_per_hour() -> None:
    calc = calculate_dose(protocol=CRPS, weight_kg=150, height_cm=180)
    assert calc.mg_per_h == pytest.approx(25.0) and calc.dose_mg == pytest.approx(100.0)
    assert "hourly_cap" in {w.code for w in calc.warnings}
    body = body_size(weight_kg=150, height_cm=180, sex=None)
    uncapped = check_session_dose(protocol=CRPS, rule=_rule(CRPS), dose_mg=210, body=body)  # 52.5 mg/h
    assert _decisions(uncapped.findings)["above_hourly_cap"] is Decision.REFUSED
    rate = check_infusion_rate(
        protocol=CRPS, rule=_rule(CRPS), body=body, final_mg_ml=1, rate_ml_per_h=52.5, dose_mg=100
    )
    assert "above_hourly_cap" in _decisions(rate.findings)


def test_ideal_weight_cannot_exceed_the_hard_limit_on_actual_weight() -> None:
    # 55 kg, 195 cm man: IBW 88.6 kg; 0.75 mg/kg IBW = 66.5 mg = 1.21 mg/kg of actual weight.
    with pytest.raises(DoseRefused) as info:
        calculate_dose(
            protocol=ELEKTD,
            weight_kg=55,
            height_cm=195,
            sex=Sex.MALE,
            basis=WeightBasis.IDEAL,
            prescribed_amount=0.75,
            override_reason="Community practice upper dose",
        )
    assert info.value.code == "above_hard_limit_actual_weight" and "1.21 mg/kg" in info.value.message


def test_ideal_weight_is_refused_below_152_cm() -> None:
    with pytest.raises(DoseRefused) as info:
        calculate_dose(protocol=ELEKTD, weight_kg=40, height_cm=101, sex=Sex.FEMALE, basis=WeightBasis.IDEAL)
    assert info.value.code == "weight_basis_unusable" and "152 cm" in info.value.message


def test_absolute_mg_ceiling_asks_a_reason_then_refuses() -> None:
    with pytest.raises(DoseRefused) as info:  # 350 kg × 0.75 = 262 mg
        calculate_dose(
            protocol=ELEKTD, weight_kg=350, height_cm=180, prescribed_amount=0.75, override_reason="upper"
        )
    assert info.value.code == "above_mg_ceiling" and info.value.confirmed is False
    with pytest.raises(DoseOverrideRequired):  # 140 kg × 0.75 = 105 mg: above 100 mg
        calculate_dose(protocol=ELEKTD, weight_kg=140, height_cm=180, prescribed_amount=0.75)
    calc = calculate_dose(
        protocol=ELEKTD,
        weight_kg=140,
        height_cm=180,
        prescribed_amount=0.75,
        override_reason="Partial response at 0.5 mg/kg",
    )
    assert calc.dose_mg == pytest.approx(105)


def test_more_than_planned_is_a_prescribers_signed_decision() -> None:
    assert check_against_plan(planned_dose_mg=35, given_before_mg=0, this_mg=35) == []
    more = check_against_plan(planned_dose_mg=35, given_before_mg=0, this_mg=40)
    assert more[0].decision is Decision.PRESCRIBER_DECISION
    assert unresolved(more, Decided(prescriber_reason="Titrated after review", by_prescriber=True)) == more
    assert unresolved(more, Decided(prescriber_reason="Titrated after review", prescriber_signed=True)) == []


def test_dose_times_lie_between_gate_open_and_now_and_late_entries_keep_the_clock() -> None:
    now = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    gate = now - timedelta(minutes=30)
    before_gate = check_dose_time(stated_at=now.replace(hour=5), entered_at=now, gate_opened_at=gate)
    assert {f.code for f in before_gate.findings} >= {"dose_before_gate"}
    future = check_dose_time(stated_at=now + timedelta(minutes=10), entered_at=now, gate_opened_at=gate)
    assert future.findings[0].code == "dose_time_future"
    on_time = check_dose_time(stated_at=now - timedelta(minutes=3), entered_at=now, gate_opened_at=gate)
    assert on_time.findings == () and on_time.clock_at == now - timedelta(minutes=3)
    late = check_dose_time(stated_at=now - timedelta(minutes=25), entered_at=now, gate_opened_at=gate)
    assert late.findings[0].decision is Decision.REASON
    # Back-dating by 25 min moves the clock back by the 10-min grace only.
    assert late.clock_at == now - timedelta(minutes=10)
    assert unresolved(late.findings, Decided(reason="Emergency at chair 2")) == []
    assert unresolved(late.findings, Decided(reason="late")) == list(late.findings)


def test_a_protocol_cannot_widen_the_references_limits() -> None:
    data = ELEKTD.to_dict()
    data["phases"][0]["dose"]["limits"]["hard_max"] = 7.0
    data["phases"][0]["dose"]["limits"]["soft_max_mg"] = 500.0
    data["phases"][0]["dose"]["limits"]["max_concentration_mg_ml"] = 100.0
    with pytest.raises(ProtocolValidationError) as info:
        protocol_from_dict(data)
    errors = info.value.errors
    assert "may not exceed 1 mg/kg" in errors["phases[0].dose.limits.hard_max"]
    assert "below 100 mg/mL" in errors["phases[0].dose.limits.max_concentration_mg_ml"]
    assert "clinic policy" in errors["phases[0].dose.limits.policy_source"]
    crps = CRPS.to_dict()
    crps["phases"][0]["dose"]["limits"]["max_mg_per_h"] = 40.0
    crps["phases"][0]["dose"]["limits"]["policy_source"] = "Our pain service policy 2026"
    with pytest.raises(ProtocolValidationError) as info:
        protocol_from_dict(crps)
    assert "25 mg/h" in info.value.errors["phases[0].dose.limits.max_mg_per_h"]


def test_im_template_within_its_clinic_limits_and_ceiling() -> None:
    body = body_size(weight_kg=160, height_cm=180, sex=None)
    found = check_session_dose(protocol=IM, rule=_rule(IM), dose_mg=80, body=body)  # 0.5 mg/kg
    assert _decisions(found.findings) == {"above_mg_ceiling": Decision.REFUSED}
