"""Controlled-drug stock at the chair: what a lot is counted in, and how much of a lot one dose takes.

Pure: no Django, no I/O. The register (``ledger``) and the dose at the chair (``chairside``) ask these
functions, so that a dose record and the register's draw can never disagree: the amount given from a lot is
the dose divided by *that lot's* strength, never a strength typed at the chair (issue 14: a dose recorded as
"10 mg/mL · lot DEMO-K" while lot DEMO-K is 50 mg/mL).

Units follow the product. Esketamine comes only as the single-use nasal spray device of 28 mg
(clinical.md §2.1), counted in whole devices; ketamine as solution (vials, counted in mL to 0.001 mL, the
register's precision: security.md §4 asks for measured mL where states require exact counts) or as tablets
or troches (whole tablets). A quantity that does not fit its unit is refused with the reason, never rounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Final

ML: Final = "mL"
DEVICE: Final = "device"
TABLET: Final = "tablet"
UNIT_WORDS: Final[Mapping[str, tuple[str, str]]] = {
    ML: ("mL", "mL"),
    DEVICE: ("device", "devices"),
    TABLET: ("tablet", "tablets"),
}

#: The register keeps quantities to 3 decimals (mL to 0.001 mL); devices and tablets are whole.
ML_STEP: Final = Decimal("0.001")
WHOLE: Final = Decimal(1)
WHOLE_UNITS: Final = frozenset({DEVICE, TABLET})

#: What each drug may be received in.
UNITS_BY_DRUG: Final[Mapping[str, tuple[str, ...]]] = {
    "ketamine": (ML, TABLET),
    "esketamine": (DEVICE,),
}
#: Which units a dose by each route is drawn from: an IV infusion or an IM injection from solution, a
#: sublingual dose from solution or tablets/troches, esketamine from its device.
UNITS_BY_ROUTE: Final[Mapping[str, tuple[str, ...]]] = {
    "iv": (ML,),
    "im": (ML,),
    "subcutaneous": (ML,),
    "sublingual": (ML, TABLET),
    "oral": (ML, TABLET),
    "intranasal": (DEVICE,),
}
ESKETAMINE_DEVICE_MG: Final = Decimal(28)
UNIT_SOURCE: Final = (
    "clinical.md §2.1: each SPRAVATO device = 28 mg (2 sprays); security.md §4: the register records units "
    "or volume per container and given (21 CFR 1304.22(c)), measured mL"
)


def words(amount: Decimal, unit: str) -> str:
    """``0.7 mL``, ``1 device``, ``3 devices``: an amount as staff write it (no trailing zeros)."""
    text = f"{amount.normalize():f}"
    text = "0" if text in ("-0", "") else text
    one, many = UNIT_WORDS.get(unit, (unit, unit))
    if unit == ML:
        return f"{text} mL"
    return f"{text} {one if amount == 1 else many}"


def unit_problem(*, drug: str, unit: str, mg_per_unit: Decimal) -> str | None:
    """Why a lot of ``drug`` cannot be counted in ``unit`` at ``mg_per_unit`` (None when it can)."""
    allowed = UNITS_BY_DRUG.get(drug, ())
    if unit not in allowed:
        names = " or ".join(UNIT_WORDS[u][1] for u in allowed) or "nothing"
        return f"{drug} is received in {names}, not {UNIT_WORDS.get(unit, (unit, unit))[1]} ({UNIT_SOURCE})"
    if unit == DEVICE and mg_per_unit != ESKETAMINE_DEVICE_MG:
        return f"a SPRAVATO device holds {ESKETAMINE_DEVICE_MG} mg, not {mg_per_unit.normalize():f} mg (clinical.md §2.1)"
    return None


def amount_problem(value: Decimal, unit: str) -> str | None:
    """Why ``value`` is not a quantity of ``unit`` the register can hold exactly (None when it is)."""
    if unit in WHOLE_UNITS:
        if value != value.to_integral_value():
            return f"{words(value, unit)}: {UNIT_WORDS[unit][1]} are counted whole"
        return None
    if value != value.quantize(ML_STEP):
        return f"{value.normalize():f} mL has more than 3 decimals: the register counts mL to 0.001 mL"
    return None


def units_for_dose(*, dose_mg: Decimal, mg_per_unit: Decimal, unit: str) -> Decimal | str:
    """The amount of a lot a dose of ``dose_mg`` takes (``dose_mg`` ÷ the lot's strength), or why it cannot be
    measured: a fraction of a device or tablet, or a volume finer than 0.001 mL."""
    try:
        exact = dose_mg / mg_per_unit
    except (InvalidOperation, ZeroDivisionError):
        return f"{mg_per_unit} mg per {unit} is not a strength"
    strength = f"{mg_per_unit.normalize():f} mg/{'mL' if unit == ML else UNIT_WORDS[unit][0]}"
    if unit in WHOLE_UNITS:
        if exact != exact.to_integral_value():
            return (
                f"{dose_mg.normalize():f} mg is {exact.normalize():f} {UNIT_WORDS[unit][1]} of {strength}: "
                f"{UNIT_WORDS[unit][1]} are given whole, so choose a lot whose strength fits the dose"
            )
        return exact.to_integral_value()
    if exact != exact.quantize(ML_STEP):
        low = exact.quantize(ML_STEP, rounding="ROUND_FLOOR")
        high = low + ML_STEP
        return (
            f"{dose_mg.normalize():f} mg of {strength} is {exact:.5f}… mL, which cannot be measured to 0.001 mL: "
            f"record the dose drawn up, e.g. {(low * mg_per_unit).normalize():f} mg ({low} mL) or "
            f"{(high * mg_per_unit).normalize():f} mg ({high} mL)"
        )
    return exact.quantize(ML_STEP)
