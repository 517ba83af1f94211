"""Body-size formulas: BMI, Devine ideal weight, 0.4-factor adjusted weight, input validation."""

from __future__ import annotations

import math

import pytest

from ketaclinic.clinical.body import (
    ADJUSTED_0_4,
    DEVINE,
    AdjustedWeightFormula,
    BodyMeasurementError,
    Sex,
    adjusted_body_weight_kg,
    bmi,
    body_size,
    ideal_body_weight_kg,
)


def test_bmi_is_weight_over_height_squared() -> None:
    # 80 / 1.80² = 80 / 3.24 = 24.691…
    assert bmi(weight_kg=80, height_cm=180) == pytest.approx(24.6914, abs=1e-4)


def test_devine_ideal_weight_male_and_female() -> None:
    # 180 cm = 70.866 in; 50 + 2.3 × 10.866 = 74.99 kg
    assert ideal_body_weight_kg(height_cm=180, sex=Sex.MALE) == pytest.approx(74.992, abs=1e-3)
    # 165 cm = 64.9606 in; 45.5 + 2.3 × 4.9606 = 45.5 + 11.4094 = 56.909 kg
    assert ideal_body_weight_kg(height_cm=165, sex=Sex.FEMALE) == pytest.approx(56.909, abs=1e-3)


def test_adjusted_weight_uses_factor_0_4() -> None:
    # IBW 74.992; 74.992 + 0.4 × (120 − 74.992) = 92.995
    assert adjusted_body_weight_kg(weight_kg=120, height_cm=180, sex=Sex.MALE) == pytest.approx(
        92.995, abs=1e-3
    )


def test_adjusted_factor_is_configurable() -> None:
    # 74.992 + 0.3 × 45.008 = 88.494
    value = adjusted_body_weight_kg(
        weight_kg=120, height_cm=180, sex=Sex.MALE, adjusted_formula=AdjustedWeightFormula(factor=0.3)
    )
    assert value == pytest.approx(88.494, abs=1e-3)


def test_formulas_are_flagged_unconfirmed_with_a_source() -> None:
    assert DEVINE.confirmed is False and "§1.2" in DEVINE.source
    assert ADJUSTED_0_4.confirmed is False and "[U]" in ADJUSTED_0_4.source


def test_body_size_without_sex_has_no_ideal_weight() -> None:
    size = body_size(weight_kg=70, height_cm=170, sex=None)
    assert size.ideal_weight_kg is None and size.adjusted_weight_kg is None
    assert size.bmi == pytest.approx(70 / 1.7**2)


def test_short_height_is_marked_extrapolated() -> None:
    # 150 cm = 59.06 in, below the formula's 60 in base
    assert body_size(weight_kg=50, height_cm=150, sex=Sex.FEMALE).extrapolated is True
    assert body_size(weight_kg=50, height_cm=160, sex=Sex.FEMALE).extrapolated is False


@pytest.mark.parametrize(("weight", "height"), [(20, 100), (350, 250)])
def test_range_boundaries_are_accepted(weight: float, height: float) -> None:
    assert bmi(weight_kg=weight, height_cm=height) > 0


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(BodyMeasurementError) as info:
        body_size(weight_kg=19.9, height_cm=251, sex=None)
    assert set(info.value.errors) == {"weight_kg", "height_cm"}
    assert "20–350 kg" in info.value.errors["weight_kg"]
    assert "100–250 cm" in info.value.errors["height_cm"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, True])
def test_non_numbers_are_rejected(bad: float) -> None:
    with pytest.raises(BodyMeasurementError) as info:
        bmi(weight_kg=bad, height_cm=170)
    assert info.value.errors == {"weight_kg": "enter a number"}


def test_ideal_weight_needs_a_sex() -> None:
    with pytest.raises(BodyMeasurementError) as info:
        ideal_body_weight_kg(height_cm=170, sex="x")  # type: ignore[arg-type]
    assert "sex" in info.value.errors
