"""Body-size formulas for weight-based dosing: BMI, ideal and adjusted body weight.

Pure: no Django, no I/O.

What the reference says (clinical.md §1.2): landmark trials dosed 0.5 mg/kg on **actual** weight; the
Sanacora 2017 consensus suggested **ideal** body weight, especially at BMI ≥30; the adjusted-body-weight
formula for ketamine is **[U] — no source found**. The reference gives no ideal-body-weight formula either.

So both formulas below are configurable defaults marked ``confirmed=False``:

* Ideal body weight: the Devine formula as commonly used (50 kg for men / 45.5 kg for women, plus 2.3 kg
  per inch of height above 60 inches). Below 60 inches the formula extrapolates to small or even negative
  values; the result then carries ``extrapolated=True`` and the caller should not dose on it.
* Adjusted body weight: ideal + 0.4 × (actual − ideal).

The UI must show them as "default, unconfirmed". A clinic that uses other constants passes its own
``IdealWeightFormula`` / ``AdjustedWeightFormula``.

Input ranges (weight 20–350 kg, height 100–250 cm) come from the product issue, not from a clinical
source: they catch typing errors (e.g. pounds or inches typed as kg or cm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class BodyMeasurementError(ValueError):
    """Invalid body measurements. ``errors`` maps every bad field to a reason a nurse understands."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: Mapping[str, str] = MappingProxyType(dict(errors))
        detail = "; ".join(f"{field}: {reason}" for field, reason in self.errors.items())
        super().__init__(f"Check the body measurements: {detail}")
        self.message = str(self)


class Sex(StrEnum):
    """Sex used by the ideal-body-weight formula (Devine uses different constants)."""

    FEMALE = "female"
    MALE = "male"


#: Accepted input ranges (product issue; typing-error guards, not clinical limits).
WEIGHT_RANGE_KG: Final = (20.0, 350.0)
HEIGHT_RANGE_CM: Final = (100.0, 250.0)
RANGE_SOURCE: Final = "product issue (input plausibility range, not a clinical limit)"

CM_PER_INCH: Final = 2.54


@dataclass(frozen=True)
class IdealWeightFormula:
    """IBW = base(sex) + kg_per_inch × (height_in − base_height_in)."""

    name: str = "Devine"
    male_base_kg: float = 50.0
    female_base_kg: float = 45.5
    kg_per_inch: float = 2.3
    base_height_in: float = 60.0
    confirmed: bool = False
    source: str = (
        "Not in the reference (clinical.md §1.2 gives no IBW formula): commonly used Devine formula, "
        "a configurable default, unconfirmed"
    )


@dataclass(frozen=True)
class AdjustedWeightFormula:
    """Adjusted weight = IBW + factor × (actual − IBW)."""

    name: str = "IBW + 0.4 × (actual − IBW)"
    factor: float = 0.4
    confirmed: bool = False
    source: str = (
        "clinical.md §1.2: adjusted-body-weight formula for ketamine is [U] (no source found); the 0.4 "
        "factor is a commonly used configurable default, unconfirmed"
    )


DEVINE: Final = IdealWeightFormula()
ADJUSTED_0_4: Final = AdjustedWeightFormula()


@dataclass(frozen=True)
class BodySize:
    """Every body-size number the dose calculator may use, with the formulas that made them."""

    weight_kg: float
    height_cm: float
    bmi: float
    sex: Sex | None
    ideal_weight_kg: float | None  # None when sex is not given
    adjusted_weight_kg: float | None
    ideal_formula: IdealWeightFormula
    adjusted_formula: AdjustedWeightFormula
    extrapolated: bool  # height below the formula's base height: IBW is outside the formula's range


def _check_number(value: float, low: float, high: float, unit: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "enter a number"
    if not low <= value <= high:
        return f"{value:g} {unit} is outside the accepted range {low:g}–{high:g} {unit}"
    return None


def validate_measurements(
    *, weight_kg: float | None = None, height_cm: float | None = None, require: tuple[str, ...] = ()
) -> dict[str, str]:
    """Return field -> reason for every bad measurement (empty when all good).

    ``require`` lists fields that must be present ("weight_kg", "height_cm").
    """
    errors: dict[str, str] = {}
    for field, value, (low, high), unit in (
        ("weight_kg", weight_kg, WEIGHT_RANGE_KG, "kg"),
        ("height_cm", height_cm, HEIGHT_RANGE_CM, "cm"),
    ):
        if value is None:
            if field in require:
                errors[field] = "required"
            continue
        problem = _check_number(value, low, high, unit)
        if problem is not None:
            errors[field] = problem
    return errors


def _raise(errors: Mapping[str, str]) -> None:
    if errors:
        raise BodyMeasurementError(errors)


def bmi(*, weight_kg: float, height_cm: float) -> float:
    """Body-mass index in kg/m²: weight / height²."""
    _raise(validate_measurements(weight_kg=weight_kg, height_cm=height_cm))
    height_m = height_cm / 100.0
    return weight_kg / (height_m * height_m)


def ideal_body_weight_kg(*, height_cm: float, sex: Sex, formula: IdealWeightFormula = DEVINE) -> float:
    """Ideal body weight in kg by ``formula`` (default Devine, unconfirmed: see module docstring)."""
    errors = validate_measurements(height_cm=height_cm)
    if not isinstance(sex, Sex):
        errors["sex"] = "choose female or male (the ideal-weight formula differs by sex)"
    _raise(errors)
    base = formula.male_base_kg if sex is Sex.MALE else formula.female_base_kg
    height_in = height_cm / CM_PER_INCH
    return base + formula.kg_per_inch * (height_in - formula.base_height_in)


def adjusted_body_weight_kg(
    *,
    weight_kg: float,
    height_cm: float,
    sex: Sex,
    ideal_formula: IdealWeightFormula = DEVINE,
    adjusted_formula: AdjustedWeightFormula = ADJUSTED_0_4,
) -> float:
    """Adjusted body weight in kg: IBW + factor × (actual − IBW) (unconfirmed default factor 0.4)."""
    errors = validate_measurements(weight_kg=weight_kg, height_cm=height_cm)
    if not isinstance(sex, Sex):
        errors["sex"] = "choose female or male (the ideal-weight formula differs by sex)"
    _raise(errors)
    ibw = ideal_body_weight_kg(height_cm=height_cm, sex=sex, formula=ideal_formula)
    return ibw + adjusted_formula.factor * (weight_kg - ibw)


def body_size(
    *,
    weight_kg: float,
    height_cm: float,
    sex: Sex | None,
    ideal_formula: IdealWeightFormula = DEVINE,
    adjusted_formula: AdjustedWeightFormula = ADJUSTED_0_4,
) -> BodySize:
    """All body-size numbers at once. Without ``sex`` the ideal and adjusted weights are None."""
    errors = validate_measurements(
        weight_kg=weight_kg, height_cm=height_cm, require=("weight_kg", "height_cm")
    )
    if sex is not None and not isinstance(sex, Sex):
        errors["sex"] = "choose female or male"
    _raise(errors)
    ibw: float | None = None
    abw: float | None = None
    if sex is not None:
        ibw = ideal_body_weight_kg(height_cm=height_cm, sex=sex, formula=ideal_formula)
        abw = ibw + adjusted_formula.factor * (weight_kg - ibw)
    return BodySize(
        weight_kg=float(weight_kg),
        height_cm=float(height_cm),
        bmi=bmi(weight_kg=weight_kg, height_cm=height_cm),
        sex=sex,
        ideal_weight_kg=ibw,
        adjusted_weight_kg=abw,
        ideal_formula=ideal_formula,
        adjusted_formula=adjusted_formula,
        extrapolated=height_cm / CM_PER_INCH < ideal_formula.base_height_in,
    )
