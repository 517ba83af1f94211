"""Dose calculator: hand-computed numbers, limits, dilution, esketamine devices, validation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ketaclinic.clinical.body import Sex
from ketaclinic.clinical.dosing import (
    DoseInputError,
    DoseOverrideRequired,
    DoseRefused,
    WeightBasis,
    calculate_dose,
    dose_mg_for_weight,
    esketamine_device_timetable,
)
from ketaclinic.clinical.protocol_library import get_protocol

ELEKTD = get_protocol("iv-trd-elektd")
ESK = get_protocol("esk-trd-label")
ESK_SI = get_protocol("esk-mdd-si-label")
CRPS = get_protocol("iv-crps-cohen")


def codes(calc: object) -> set[str]:
    return {w.code for w in calc.warnings}  # type: ignore[attr-defined]


def test_iv_standard_dose_in_a_100_ml_bag() -> None:
    calc = calculate_dose(
        protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=10, container_volume_ml=100
    )
    assert calc.dose_mg == pytest.approx(40.0)  # 0.5 mg/kg × 80 kg
    assert calc.volume_to_draw_ml == pytest.approx(4.0)  # 40 mg / 10 mg/mL
    assert calc.diluent_ml == pytest.approx(96.0)  # 100 − 4
    assert calc.final_concentration_mg_ml == pytest.approx(0.4)  # 40 mg / 100 mL
    assert calc.pump_rate_ml_per_h == pytest.approx(150.0)  # 100 mL / (40/60 h)
    assert calc.mg_per_h == pytest.approx(60.0)  # 40 mg / (40/60 h)
    assert calc.mg_per_kg_per_h == pytest.approx(0.75)  # 0.5 / (40/60)
    assert calc.dosing_weight_kg == 80 and calc.basis is WeightBasis.ACTUAL
    assert [s.label for s in calc.steps][:3] == ["BMI", "Dosing weight (actual)", "Dose"]


def test_50_mg_per_ml_vial() -> None:
    calc = calculate_dose(
        protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=50, container_volume_ml=100
    )
    assert calc.volume_to_draw_ml == pytest.approx(0.8)  # 40 / 50
    assert calc.diluent_ml == pytest.approx(99.2)  # 100 − 0.8


def test_syringe_pump_without_a_bag() -> None:
    calc = calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=10)
    # 4 mL undiluted over 40 min → 4 / (2/3) = 6 mL/h
    assert calc.pump_rate_ml_per_h == pytest.approx(6.0) and calc.diluent_ml is None


def test_without_a_vial_strength_only_mg_is_given() -> None:
    calc = calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180)
    assert calc.dose_mg == pytest.approx(40.0)
    assert calc.volume_to_draw_ml is None and calc.pump_rate_ml_per_h is None


def test_undiluted_100_mg_per_ml_iv_is_refused_by_default() -> None:
    with pytest.raises(DoseRefused) as info:
        calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=100)
    assert info.value.code == "undiluted_100_iv" and info.value.confirmed is False
    assert "[U verify" in info.value.source


def test_100_mg_per_ml_diluted_in_a_bag_is_allowed() -> None:
    calc = calculate_dose(
        protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=100, container_volume_ml=100
    )
    assert calc.volume_to_draw_ml == pytest.approx(0.4)  # 40 / 100
    assert calc.final_concentration_mg_ml == pytest.approx(0.4)


def test_a_bag_stronger_than_the_clinics_maximum_is_refused() -> None:
    # 40 mg in 2 mL = 20 mg/mL: above the 10 mg/mL default (clinic policy, unconfirmed).
    with pytest.raises(DoseRefused) as info:
        calculate_dose(
            protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=50, container_volume_ml=2
        )
    assert info.value.code == "concentration_above_max" and info.value.confirmed is False
    assert "10 mg/mL" in info.value.message


def test_bag_smaller_than_drug_volume() -> None:
    with pytest.raises(DoseInputError) as info:
        calculate_dose(
            protocol=ELEKTD, weight_kg=80, height_cm=180, concentration_mg_ml=10, container_volume_ml=3
        )
    assert "less than the drug volume 4.00 mL" in info.value.errors["container_volume_ml"]


def test_ideal_weight_basis() -> None:
    calc = calculate_dose(
        protocol=ELEKTD, weight_kg=100, height_cm=165, sex=Sex.FEMALE, basis=WeightBasis.IDEAL
    )
    # IBW 45.5 + 2.3 × (64.9606 − 60) = 56.909 kg; 0.5 × 56.909 = 28.455 mg
    assert calc.dosing_weight_kg == pytest.approx(56.909, abs=1e-3)
    assert calc.dose_mg == pytest.approx(28.455, abs=1e-3)
    assert "ideal_weight_formula_unconfirmed" in codes(calc)
    assert "bmi_consider_ideal_weight" not in codes(calc)  # prompt only when dosing on actual weight


def test_adjusted_weight_basis() -> None:
    calc = calculate_dose(
        protocol=ELEKTD, weight_kg=120, height_cm=180, sex=Sex.MALE, basis=WeightBasis.ADJUSTED
    )
    # 74.992 + 0.4 × (120 − 74.992) = 92.995 kg; × 0.5 = 46.498 mg
    assert calc.dose_mg == pytest.approx(46.498, abs=1e-3)
    assert {"ideal_weight_formula_unconfirmed", "adjusted_weight_formula_unconfirmed"} <= codes(calc)


def test_bmi_30_prompts_ideal_weight_citing_sanacora() -> None:
    # 100 / 1.7² = 34.6
    calc = calculate_dose(protocol=ELEKTD, weight_kg=100, height_cm=170)
    prompt = next(w for w in calc.warnings if w.code == "bmi_consider_ideal_weight")
    assert "Sanacora 2017" in prompt.source and "§1.2" in prompt.source
    # 86 / 1.7² = 29.76 → no prompt
    assert "bmi_consider_ideal_weight" not in codes(
        calculate_dose(protocol=ELEKTD, weight_kg=86, height_cm=170)
    )


def test_ideal_weight_above_actual_is_flagged() -> None:
    # IBW female 180 cm = 45.5 + 2.3 × 10.866 = 70.49 kg > 60 kg actual
    calc = calculate_dose(
        protocol=ELEKTD, weight_kg=60, height_cm=180, sex=Sex.FEMALE, basis=WeightBasis.IDEAL
    )
    assert "dosing_weight_above_actual" in codes(calc)


def test_every_bad_input_is_named() -> None:
    with pytest.raises(DoseInputError) as info:
        calculate_dose(
            protocol=ELEKTD,
            weight_kg=500,
            height_cm=50,
            basis=WeightBasis.IDEAL,
            concentration_mg_ml=20,
            override_reason="  ",
        )
    assert set(info.value.errors) == {
        "weight_kg",
        "height_cm",
        "sex",
        "concentration_mg_ml",
        "override_reason",
    }


def test_soft_limit_needs_a_reason() -> None:
    with pytest.raises(DoseOverrideRequired) as info:
        calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180, prescribed_amount=0.8)
    assert "0.5–0.75" in info.value.message
    calc = calculate_dose(
        protocol=ELEKTD,
        weight_kg=80,
        height_cm=180,
        prescribed_amount=0.8,
        override_reason="partial response at 0.75",
    )
    assert calc.dose_mg == pytest.approx(64.0)  # 0.8 × 80
    assert calc.override_reason == "partial response at 0.75" and "dose_override" in codes(calc)


@pytest.mark.parametrize("amount", [0.1, 0.4, 1.0])
def test_inside_hard_outside_soft_needs_reason(amount: float) -> None:
    with pytest.raises(DoseOverrideRequired):
        calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180, prescribed_amount=amount)


@pytest.mark.parametrize("amount", [0.5, 0.6, 0.75])
def test_inside_soft_needs_no_reason(amount: float) -> None:
    calc = calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180, prescribed_amount=amount)
    assert calc.dose_mg == pytest.approx(amount * 80)


@pytest.mark.parametrize("amount", [0.05, 1.2])
def test_hard_limit_refuses_even_with_a_reason(amount: float) -> None:
    with pytest.raises(DoseRefused) as info:
        calculate_dose(
            protocol=ELEKTD, weight_kg=80, height_cm=180, prescribed_amount=amount, override_reason="x"
        )
    assert info.value.code == "dose_outside_hard_limit" and "0.1–1" in info.value.message


def test_crps_rate_protocol() -> None:
    calc = calculate_dose(
        protocol=CRPS, weight_kg=70, height_cm=175, concentration_mg_ml=10, container_volume_ml=250
    )
    assert calc.mg_per_h == pytest.approx(24.5)  # 0.35 mg/kg/h × 70 kg
    assert calc.dose_mg == pytest.approx(98.0)  # 24.5 mg/h × 4 h
    assert calc.mg_per_kg == pytest.approx(1.4)  # 0.35 × 4
    assert calc.volume_to_draw_ml == pytest.approx(9.8)  # 98 / 10
    assert calc.pump_rate_ml_per_h == pytest.approx(62.5)  # 250 mL / 4 h
    with pytest.raises(DoseRefused):
        calculate_dose(protocol=CRPS, weight_kg=70, height_cm=175, prescribed_amount=0.4, override_reason="x")


def test_esketamine_day_one_is_56_mg_two_devices() -> None:
    calc = calculate_dose(protocol=ESK, weight_kg=70, height_cm=170)
    assert calc.dose_mg == 56 and calc.devices == 2
    assert [d.offset_min for d in calc.device_timetable] == [0, 5]
    assert "blow nose" in calc.device_timetable[0].instruction
    assert "blow nose" not in calc.device_timetable[1].instruction
    assert calc.second_person_check is False and calc.dosing_weight_kg is None


def test_esketamine_84_on_day_one_needs_a_reason() -> None:
    with pytest.raises(DoseOverrideRequired):
        calculate_dose(protocol=ESK, weight_kg=70, height_cm=170, prescribed_amount=84)
    calc = calculate_dose(
        protocol=ESK, weight_kg=70, height_cm=170, prescribed_amount=84, override_reason="x"
    )
    assert calc.devices == 3


def test_esketamine_device_timetable_with_times() -> None:
    start = datetime(2026, 3, 3, 10, 0, tzinfo=ZoneInfo("Europe/London"))
    calc = calculate_dose(
        protocol=ESK,
        weight_kg=70,
        height_cm=170,
        session_number=2,
        prescribed_amount=84,
        first_device_at=start,
    )
    # 84 mg = 3 × 28 mg devices, 5 minutes apart
    assert [(d.number, d.offset_min, f"{d.at:%H:%M}") for d in calc.device_timetable] == [
        (1, 0, "10:00"),
        (2, 5, "10:05"),
        (3, 10, "10:10"),
    ]


def test_esketamine_allowed_doses_only() -> None:
    with pytest.raises(DoseOverrideRequired):  # 28 mg: HK label ≥65 start, needs a reason
        calculate_dose(protocol=ESK, weight_kg=70, height_cm=170, session_number=2, prescribed_amount=28)
    with pytest.raises(DoseRefused) as info:
        calculate_dose(
            protocol=ESK,
            weight_kg=70,
            height_cm=170,
            session_number=2,
            prescribed_amount=42,
            override_reason="x",
        )
    assert info.value.code == "dose_not_allowed"


def test_esketamine_si_default_84_may_reduce_to_56() -> None:
    assert calculate_dose(protocol=ESK_SI, weight_kg=70, height_cm=170).devices == 3
    assert calculate_dose(protocol=ESK_SI, weight_kg=70, height_cm=170, prescribed_amount=56).devices == 2


def test_esketamine_has_no_vial_strength() -> None:
    with pytest.raises(DoseInputError) as info:
        calculate_dose(protocol=ESK, weight_kg=70, height_cm=170, concentration_mg_ml=10)
    assert "concentration_mg_ml" in info.value.errors


def test_im_template() -> None:
    calc = calculate_dose(
        protocol=get_protocol("im-clinic-template"), weight_kg=80, height_cm=180, concentration_mg_ml=50
    )
    assert calc.dose_mg == pytest.approx(40.0)  # 0.5 × 80
    assert calc.volume_to_draw_ml == pytest.approx(0.8)  # 40 / 50
    assert calc.pump_rate_ml_per_h is None
    assert calc.second_person_check is True and "protocol_dose_unconfirmed" in codes(calc)
    with pytest.raises(DoseInputError) as info:
        calculate_dose(
            protocol=get_protocol("im-clinic-template"),
            weight_kg=80,
            height_cm=180,
            concentration_mg_ml=50,
            container_volume_ml=100,
        )
    assert "IV infusions only" in info.value.errors["container_volume_ml"]


def test_sublingual_template() -> None:
    calc = calculate_dose(
        protocol=get_protocol("sl-clinic-template"), weight_kg=80, height_cm=180, concentration_mg_ml=100
    )
    assert calc.dose_mg == 10 and calc.volume_to_draw_ml == pytest.approx(0.1)  # 10 mg / 100 mg/mL
    assert calc.second_person_check is False


def test_second_person_check_for_iv_cites_product_issue() -> None:
    calc = calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180)
    assert calc.second_person_check is True
    warning = next(w for w in calc.warnings if w.code == "second_person_check")
    assert "product issue" in warning.source


def test_session_number_must_exist() -> None:
    with pytest.raises(DoseInputError) as info:
        calculate_dose(protocol=ELEKTD, weight_kg=80, height_cm=180, session_number=0)
    assert "session_number" in info.value.errors


def test_device_timetable_needs_whole_devices() -> None:
    with pytest.raises(DoseInputError):
        esketamine_device_timetable(dose_mg=30)


def test_dose_mg_for_weight() -> None:
    assert dose_mg_for_weight(ELEKTD.phases[0].dose, 80) == pytest.approx(40.0)
    assert dose_mg_for_weight(CRPS.phases[0].dose, 70) == pytest.approx(98.0)  # 0.35 × 70 × 4
    assert dose_mg_for_weight(ESK.phases[0].dose, 70) == 56
