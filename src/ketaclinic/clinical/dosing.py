"""Dose calculator: weight basis, dose in mg, volumes, dilution, pump rate, esketamine devices, limits.

Pure: no Django, no I/O. ``calculate_dose`` returns every intermediate number (``DoseCalculation``) with
its working in ``steps`` and warnings that cite their source. It refuses (``DoseRefused``) outside a hard
limit, asks for a reason (``DoseOverrideRequired``) outside a soft limit, and names every bad input at
once (``DoseInputError``).

Sources and defaults:

* Weight basis actual / ideal / adjusted is the clinic's documented choice (clinical.md §1.2). At BMI ≥30
  with actual weight the result carries a prompt: the Sanacora 2017 consensus suggested ideal body weight
  (via Singh 2019). Ideal/adjusted formulas are unconfirmed defaults (see ``body.py``).
* Vial strengths 10, 50 and 100 mg/mL are those on US labels (interop.md §1.3).
* Every limit is the one dose check (``dose_check.py``), shared with the chair, the API and the demo:
  the protocol's ``DoseLimits`` narrowed by the reference (``dose_limits.py``), the dose in mg/kg of
  *actual* weight within the hard limits whatever the basis, the ideal/adjusted basis refused below
  152 cm, an hourly cap (CRPS 25 mg/h, applied as the regimen says and shown as a step), the clinic's
  absolute mg ceiling and final IV concentration (never 100 mg/mL undiluted). Clinical.md §11.
* Esketamine: 28 mg per device, 5-minute rest between devices, blow nose before the first device only,
  do not prime (label IFU, clinical.md §2.1).
* Second-person verification of IV and IM doses is a clinic safety rule from the product issue, not a
  reference fact; the route set is configurable.
* ``container_volume_ml`` is the FINAL volume in the bag or syringe (drug + diluent): diluent = final −
  drug volume, pump rate = final volume / infusion hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ketaclinic.clinical.body import (
    ADJUSTED_0_4,
    DEVINE,
    AdjustedWeightFormula,
    BodySize,
    IdealWeightFormula,
    Sex,
    body_size,
    validate_measurements,
)
from ketaclinic.clinical.conditions import Drug, Route
from ketaclinic.clinical.dose_check import (
    Decision,
    DoseFinding,
    bounds_for,
    check_amount,
    check_concentration,
    check_session_dose,
)
from ketaclinic.clinical.dose_limits import IBW_MIN_HEIGHT_SOURCE
from ketaclinic.clinical.dose_types import DOSE_UNITS, ESKETAMINE_DEVICE_MG, DoseKind
from ketaclinic.clinical.protocols import DoseRule, Protocol

#: Ketamine HCl injection strengths on US labels (interop.md §1.3).
VIAL_CONCENTRATIONS_MG_ML: Final = (10.0, 50.0, 100.0)
VIAL_SOURCE: Final = "interop.md §1.3: ketamine HCl injection 10 / 50 / 100 mg/mL (US labels)"
BMI_PROMPT_SOURCE: Final = (
    "clinical.md §1.2: Sanacora 2017 consensus suggested ideal-body-weight dosing, especially at BMI ≥30 "
    "(via Singh, J Clin Psychiatry 2019); landmark trials dosed on actual weight"
)
SECOND_PERSON_SOURCE: Final = "product issue: clinic safety rule (not in the clinical reference)"
DEVICE_SOURCE: Final = (
    "clinical.md §2.1: 28 mg per device (2 sprays), 5-minute rest between devices (label IFU)"
)
ESKETAMINE_DEVICE_SPACING_MIN: Final = 5  # clinical.md §2.1


class DoseError(Exception):
    """Base class: the message is safe to show to a nurse or prescriber."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DoseInputError(DoseError):
    """Inputs are invalid. ``errors`` maps every bad field to its reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: Mapping[str, str] = MappingProxyType(dict(errors))
        detail = "; ".join(f"{name}: {reason}" for name, reason in self.errors.items())
        super().__init__(f"Cannot calculate this dose: {detail}")


class DoseRefused(DoseError):
    """A hard limit: this dose cannot be prepared."""

    def __init__(self, message: str, *, code: str, source: str, confirmed: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.source = source
        self.confirmed = confirmed


class DoseOverrideRequired(DoseError):
    """A soft limit: the dose may be given only with a recorded reason (``override_reason``)."""

    def __init__(self, message: str, *, code: str, source: str) -> None:
        super().__init__(message)
        self.code = code
        self.source = source


class WeightBasis(StrEnum):
    ACTUAL = "actual"
    IDEAL = "ideal"
    ADJUSTED = "adjusted"


@dataclass(frozen=True)
class DosingConfig:
    bmi_prompt_threshold: float = 30.0  # clinical.md §1.2 (Sanacora 2017 via Singh 2019)
    ideal_formula: IdealWeightFormula = DEVINE
    adjusted_formula: AdjustedWeightFormula = ADJUSTED_0_4
    second_person_routes: frozenset[Route] = field(default_factory=lambda: frozenset({Route.IV, Route.IM}))
    device_spacing_min: int = ESKETAMINE_DEVICE_SPACING_MIN


DEFAULT_DOSING_CONFIG: Final = DosingConfig()


@dataclass(frozen=True)
class DoseWarning:
    code: str
    message: str
    source: str
    confirmed: bool = True


@dataclass(frozen=True)
class CalculationStep:
    label: str
    value: float
    unit: str
    working: str


@dataclass(frozen=True)
class DeviceStep:
    number: int
    offset_min: int
    at: datetime | None
    instruction: str


@dataclass(frozen=True)
class DoseCalculation:
    protocol_id: str
    protocol_version: int
    drug: Drug
    route: Route
    session_number: int
    phase_name: str
    dose_kind: DoseKind
    amount: float  # in the rule's unit: mg/kg, mg/kg/h or mg
    unit: str
    body: BodySize
    basis: WeightBasis
    dosing_weight_kg: float | None  # None for fixed-mg doses
    mg_per_kg: float | None  # total mg/kg for the session
    mg_per_kg_per_h: float | None
    mg_per_h: float | None
    dose_mg: float
    duration_min: int | None
    concentration_mg_ml: float | None
    volume_to_draw_ml: float | None
    container_volume_ml: float | None
    diluent_ml: float | None
    final_concentration_mg_ml: float | None
    pump_rate_ml_per_h: float | None
    devices: int | None
    device_timetable: tuple[DeviceStep, ...]
    override_reason: str | None
    second_person_check: bool
    warnings: tuple[DoseWarning, ...]
    steps: tuple[CalculationStep, ...]


def dose_mg_for_weight(rule: DoseRule, weight_kg: float) -> float | None:
    """The mg of one session for ``weight_kg`` (fixed doses: the default amount); no limits applied."""
    if rule.kind is DoseKind.FIXED_MG:
        return rule.amount
    if rule.kind is DoseKind.MG_PER_KG_PER_HOUR:
        return None if rule.duration_min is None else rule.amount * weight_kg * rule.duration_min / 60.0
    return rule.amount * weight_kg


def esketamine_device_timetable(
    *,
    dose_mg: float,
    first_device_at: datetime | None = None,
    spacing_min: int = ESKETAMINE_DEVICE_SPACING_MIN,
) -> tuple[DeviceStep, ...]:
    """One row per 28-mg device, ``spacing_min`` apart (label: 5-minute rest between devices)."""
    devices = dose_mg / ESKETAMINE_DEVICE_MG
    if devices < 1 or not math.isclose(devices, round(devices)):
        raise DoseInputError({"dose_mg": f"{dose_mg:g} mg is not a whole number of 28-mg devices"})
    rows = []
    for i in range(round(devices)):
        offset = i * spacing_min
        if i == 0:
            text = (
                "Device 1: blow nose first (before this device only); do not prime; one spray in each nostril; "
                "check the indicator shows no green dots"
            )
        else:
            text = (
                f"Device {i + 1}: after a {spacing_min}-minute rest, one spray in each nostril; "
                "check the indicator shows no green dots"
            )
        at = first_device_at + timedelta(minutes=offset) if first_device_at is not None else None
        rows.append(DeviceStep(number=i + 1, offset_min=offset, at=at, instruction=text))
    return tuple(rows)


def _validate_inputs(
    *,
    protocol: Protocol,
    rule: DoseRule | None,
    weight_kg: float,
    height_cm: float,
    sex: Sex | None,
    basis: WeightBasis,
    concentration_mg_ml: float | None,
    container_volume_ml: float | None,
    override_reason: str | None,
) -> dict[str, str]:
    errors = validate_measurements(
        weight_kg=weight_kg, height_cm=height_cm, require=("weight_kg", "height_cm")
    )
    if not isinstance(basis, WeightBasis):
        errors["basis"] = "choose actual, ideal or adjusted"
    weight_based = rule is not None and rule.kind is not DoseKind.FIXED_MG
    if weight_based and basis in (WeightBasis.IDEAL, WeightBasis.ADJUSTED) and not isinstance(sex, Sex):
        errors["sex"] = "choose female or male: the ideal-weight formula differs by sex"
    if protocol.drug is Drug.ESKETAMINE:
        if concentration_mg_ml is not None:
            errors["concentration_mg_ml"] = "not used for the esketamine nasal spray"
    elif concentration_mg_ml is None:
        if container_volume_ml is not None:
            errors["concentration_mg_ml"] = (
                "choose the vial strength (10, 50 or 100 mg/mL) to plan the dilution"
            )
    elif concentration_mg_ml not in VIAL_CONCENTRATIONS_MG_ML:
        errors["concentration_mg_ml"] = (
            f"{concentration_mg_ml:g} mg/mL is not a stocked strength (10, 50, 100)"
        )
    if container_volume_ml is not None:
        if protocol.route is not Route.IV:
            errors["container_volume_ml"] = "a bag or syringe volume applies to IV infusions only"
        elif not math.isfinite(container_volume_ml) or container_volume_ml <= 0:
            errors["container_volume_ml"] = "must be more than 0 mL"
    if override_reason is not None and not override_reason.strip():
        errors["override_reason"] = "write the reason for going outside the usual dose"
    return errors


def _resolve(findings: list[DoseFinding], override_reason: str | None) -> list[DoseWarning]:
    """The plan's side of the one dose check (``dose_check.py``): a hard limit refuses, a soft limit needs
    the prescriber's reason (plans are made by prescribers)."""
    for finding in findings:
        if finding.decision is Decision.REFUSED:
            raise DoseRefused(
                finding.message, code=finding.code, source=finding.source, confirmed=finding.confirmed
            )
    soft = [f for f in findings if f.decision is Decision.PRESCRIBER_REASON]
    if soft and override_reason is None:
        first = soft[0]
        raise DoseOverrideRequired(
            " ".join(f.message.replace(": a prescriber records why.", "") + ";" for f in soft).rstrip(";")
            + ": record a reason to go ahead.",
            code=first.code,
            source="; ".join(dict.fromkeys(f.source for f in soft)),
        )
    return [
        DoseWarning(
            "dose_override",
            f"{f.message.replace(': a prescriber records why.', '')}; override reason: {(override_reason or '').strip()}",
            f.source,
            f.confirmed,
        )
        for f in soft
    ]


def _dosing_weight(
    body: BodySize, basis: WeightBasis, warnings: list[DoseWarning], steps: list[CalculationStep]
) -> float:
    steps.append(
        CalculationStep("BMI", body.bmi, "kg/m²", f"{body.weight_kg:g} kg / ({body.height_cm:g} cm / 100)²")
    )
    if basis is WeightBasis.ACTUAL:
        steps.append(CalculationStep("Dosing weight (actual)", body.weight_kg, "kg", "actual body weight"))
        return body.weight_kg
    ibw = body.ideal_weight_kg
    assert ibw is not None and body.adjusted_weight_kg is not None  # sex was validated
    formula = body.ideal_formula
    base = formula.male_base_kg if body.sex is Sex.MALE else formula.female_base_kg
    steps.append(
        CalculationStep(
            "Ideal body weight",
            ibw,
            "kg",
            f"{base:g} + {formula.kg_per_inch:g} × ({body.height_cm:g} cm / 2.54 − {formula.base_height_in:g} in)",
        )
    )
    warnings.append(
        DoseWarning(
            "ideal_weight_formula_unconfirmed",
            f"Ideal weight by the {formula.name} formula.",
            formula.source,
            False,
        )
    )
    if body.extrapolated:
        raise DoseRefused(
            f"The {basis.value} body weight cannot be used at a height of {body.height_cm:g} cm: the "
            f"{formula.name} formula is built for heights of {formula.base_height_in:g} in (152 cm) and more "
            "and gives implausible weights below. Dose on actual weight.",
            code="weight_basis_unusable",
            source=IBW_MIN_HEIGHT_SOURCE,
            confirmed=False,
        )
    weight = ibw
    if basis is WeightBasis.ADJUSTED:
        adj = body.adjusted_formula
        weight = body.adjusted_weight_kg
        steps.append(
            CalculationStep(
                "Adjusted body weight",
                weight,
                "kg",
                f"{ibw:.2f} + {adj.factor:g} × ({body.weight_kg:g} − {ibw:.2f})",
            )
        )
        warnings.append(
            DoseWarning(
                "adjusted_weight_formula_unconfirmed", f"Adjusted weight: {adj.name}.", adj.source, False
            )
        )
    if weight <= 0:
        raise DoseRefused(
            f"The {basis.value} body weight comes out at {weight:.1f} kg: use actual weight.",
            code="dosing_weight_not_positive",
            source=formula.source,
            confirmed=False,
        )
    if weight > body.weight_kg:
        warnings.append(
            DoseWarning(
                "dosing_weight_above_actual",
                f"The {basis.value} weight {weight:.1f} kg is above the actual weight {body.weight_kg:g} kg: "
                "the dose is higher than on actual weight.",
                "clinical.md §1.2",
            )
        )
    return weight


def calculate_dose(
    *,
    protocol: Protocol,
    weight_kg: float,
    height_cm: float,
    sex: Sex | None = None,
    basis: WeightBasis = WeightBasis.ACTUAL,
    concentration_mg_ml: float | None = None,
    container_volume_ml: float | None = None,
    session_number: int = 1,
    prescribed_amount: float | None = None,
    override_reason: str | None = None,
    first_device_at: datetime | None = None,
    config: DosingConfig = DEFAULT_DOSING_CONFIG,
) -> DoseCalculation:
    """Calculate one session's dose for ``protocol``.

    ``prescribed_amount`` (in the rule's unit: mg/kg, mg/kg/h or mg) replaces the protocol's default, e.g.
    84 for esketamine or 0.6 for IV ketamine; soft/hard limits apply to it. ``session_number`` picks the
    phase and dose rule (e.g. esketamine TRD day 1 = 56 mg).
    """
    rule: DoseRule | None = None
    phase_name = ""
    errors: dict[str, str] = {}
    try:
        phase, rule = protocol.dose_for_session(session_number)
        phase_name = phase.name
    except ValueError as exc:
        errors["session_number"] = str(exc)
    errors.update(
        _validate_inputs(
            protocol=protocol,
            rule=rule,
            weight_kg=weight_kg,
            height_cm=height_cm,
            sex=sex,
            basis=basis,
            concentration_mg_ml=concentration_mg_ml,
            container_volume_ml=container_volume_ml,
            override_reason=override_reason,
        )
    )
    if prescribed_amount is not None and (
        isinstance(prescribed_amount, bool) or not math.isfinite(prescribed_amount) or prescribed_amount <= 0
    ):
        errors["prescribed_amount"] = "must be a number more than 0"
    if errors or rule is None:
        raise DoseInputError(errors)

    amount = rule.amount if prescribed_amount is None else float(prescribed_amount)
    findings = check_amount(protocol=protocol, rule=rule, amount=amount)
    if any(f.decision is Decision.REFUSED for f in findings):
        _resolve(findings, override_reason)
    warnings: list[DoseWarning] = []
    if not rule.confirmed:
        warnings.append(
            DoseWarning(
                "protocol_dose_unconfirmed",
                "This protocol's dose is a clinic default, unconfirmed.",
                rule.source,
                False,
            )
        )
    steps: list[CalculationStep] = []
    body = body_size(
        weight_kg=weight_kg,
        height_cm=height_cm,
        sex=sex,
        ideal_formula=config.ideal_formula,
        adjusted_formula=config.adjusted_formula,
    )
    unit = DOSE_UNITS[rule.kind]
    dosing_weight: float | None = None
    mg_per_kg = mg_per_kg_per_h = mg_per_h = None
    hours = rule.duration_min / 60.0 if rule.duration_min else None
    if rule.kind is DoseKind.FIXED_MG:
        dose_mg = amount
        steps.append(CalculationStep("Dose", dose_mg, "mg", f"fixed dose {amount:g} mg"))
    else:
        dosing_weight = _dosing_weight(body, basis, warnings, steps)
        if basis is WeightBasis.ACTUAL and body.bmi >= config.bmi_prompt_threshold:
            warnings.append(
                DoseWarning(
                    "bmi_consider_ideal_weight",
                    f"BMI {body.bmi:.1f} ≥ {config.bmi_prompt_threshold:g}: consider ideal body weight "
                    "(Sanacora 2017 consensus suggestion); trials dosed on actual weight.",
                    BMI_PROMPT_SOURCE,
                )
            )
        if rule.kind is DoseKind.MG_PER_KG_PER_HOUR:
            assert hours is not None
            mg_per_kg_per_h = amount
            mg_per_h = amount * dosing_weight
            steps.append(
                CalculationStep("Rate", mg_per_h, "mg/h", f"{amount:g} mg/kg/h × {dosing_weight:.2f} kg")
            )
            cap = bounds_for(protocol, rule).max_mg_per_h
            if cap is not None and mg_per_h > cap:
                # The regimen itself: "0.35 mg/kg/h, not to exceed 25 mg/h" (clinical.md §11).
                steps.append(
                    CalculationStep(
                        "Rate (capped)", cap, "mg/h", f"{mg_per_h:.2f} mg/h is above the {cap:g} mg/h cap"
                    )
                )
                warnings.append(
                    DoseWarning(
                        "hourly_cap",
                        f"{amount:g} mg/kg/h would be {mg_per_h:.1f} mg/h for {dosing_weight:.1f} kg: the rate is "
                        f"capped at {cap:g} mg/h ({cap / dosing_weight:.3f} mg/kg/h).",
                        bounds_for(protocol, rule).rate_source,
                    )
                )
                mg_per_h = cap
                mg_per_kg_per_h = cap / dosing_weight
            dose_mg = mg_per_h * hours
            mg_per_kg = mg_per_kg_per_h * hours
            steps.append(
                CalculationStep("Dose", dose_mg, "mg", f"{mg_per_h:.2f} mg/h × {rule.duration_min} min / 60")
            )
        else:
            mg_per_kg = amount
            dose_mg = amount * dosing_weight
            steps.append(CalculationStep("Dose", dose_mg, "mg", f"{amount:g} mg/kg × {dosing_weight:.2f} kg"))
            if hours is not None:
                mg_per_h = dose_mg / hours
                mg_per_kg_per_h = amount / hours
                steps.append(
                    CalculationStep(
                        "Rate", mg_per_h, "mg/h", f"{dose_mg:.2f} mg / ({rule.duration_min} min / 60)"
                    )
                )

    session = check_session_dose(protocol=protocol, rule=rule, dose_mg=dose_mg, body=body, basis=basis.value)
    seen = {f.code for f in findings}
    findings += [f for f in session.findings if f.code not in seen]
    warnings = _resolve(findings, override_reason) + warnings

    volume = final_conc = diluent = pump = None
    if concentration_mg_ml is not None:
        volume = dose_mg / concentration_mg_ml
        final_conc = concentration_mg_ml
        steps.append(
            CalculationStep(
                "Volume to draw", volume, "mL", f"{dose_mg:.2f} mg / {concentration_mg_ml:g} mg/mL"
            )
        )
    if protocol.route is Route.IV and volume is not None and concentration_mg_ml is not None:
        total = volume
        if container_volume_ml is not None:
            if container_volume_ml < volume:
                raise DoseInputError(
                    {
                        "container_volume_ml": f"{container_volume_ml:g} mL is less than the drug volume "
                        f"{volume:.2f} mL"
                    }
                )
            total = container_volume_ml
            diluent = container_volume_ml - volume
            final_conc = dose_mg / container_volume_ml
            steps.append(
                CalculationStep("Diluent", diluent, "mL", f"{container_volume_ml:g} mL − {volume:.2f} mL")
            )
            steps.append(
                CalculationStep(
                    "Final concentration",
                    final_conc,
                    "mg/mL",
                    f"{dose_mg:.2f} mg / {container_volume_ml:g} mL",
                )
            )
        if final_conc is not None:
            # Without a bag or syringe volume the plan only says how much to draw; the vial is then taken
            # as given undiluted for the 100 mg/mL rule, and the clinic's maximum final concentration is
            # checked once the dilution is known (here with a container volume, at the chair always).
            found = check_concentration(protocol=protocol, rule=rule, final_mg_ml=final_conc)
            if container_volume_ml is None:
                found = [f for f in found if f.code == "undiluted_100_iv"]
            _resolve(found, None)
        if hours is not None:
            pump = total / hours
            steps.append(
                CalculationStep("Pump rate", pump, "mL/h", f"{total:.2f} mL / ({rule.duration_min} min / 60)")
            )

    devices: int | None = None
    timetable: tuple[DeviceStep, ...] = ()
    if protocol.drug is Drug.ESKETAMINE:
        timetable = esketamine_device_timetable(
            dose_mg=dose_mg, first_device_at=first_device_at, spacing_min=config.device_spacing_min
        )
        devices = len(timetable)
        steps.append(CalculationStep("Devices", devices, "devices", f"{dose_mg:g} mg / 28 mg per device"))
        warnings.append(
            DoseWarning(
                "device_timetable",
                f"{devices} device(s), {config.device_spacing_min} minutes apart.",
                DEVICE_SOURCE,
            )
        )

    second_person = protocol.second_person_check or protocol.route in config.second_person_routes
    if second_person:
        warnings.append(
            DoseWarning(
                "second_person_check",
                f"{protocol.dose_route_label} dose: a second person must verify the calculation and the prepared dose.",
                SECOND_PERSON_SOURCE,
            )
        )
    return DoseCalculation(
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        drug=protocol.drug,
        route=protocol.route,
        session_number=session_number,
        phase_name=phase_name,
        dose_kind=rule.kind,
        amount=amount,
        unit=unit,
        body=body,
        basis=basis,
        dosing_weight_kg=dosing_weight,
        mg_per_kg=mg_per_kg,
        mg_per_kg_per_h=mg_per_kg_per_h,
        mg_per_h=mg_per_h,
        dose_mg=dose_mg,
        duration_min=rule.duration_min,
        concentration_mg_ml=concentration_mg_ml,
        volume_to_draw_ml=volume,
        container_volume_ml=container_volume_ml,
        diluent_ml=diluent,
        final_concentration_mg_ml=final_conc,
        pump_rate_ml_per_h=pump,
        devices=devices,
        device_timetable=timetable,
        override_reason=override_reason.strip() if override_reason else None,
        second_person_check=second_person,
        warnings=tuple(warnings),
        steps=tuple(steps),
    )
