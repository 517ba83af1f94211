"""IEEE 11073-10101 (MDC) observation and unit codes that a ketamine clinic's vitals need.

Every row cites interop.md §3.3 (or the sample file it was read from). Lookups key on the numeric
code (partition × 65536 + term code); REFIDs are only labels, checked for mismatches
(interop.md §3.5: "key on the numeric code, log REFID mismatches"). Philips MDIL codes are the same
numbers written in hex as ``PPPP-TTTT`` (interop.md §3.3).

Codes that are known but are not vitals we store (device headers, waveforms, time sync, pulmonary
pressures, PVC count) are listed too, so that they are ignored or reported as "not tracked" rather
than as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

S33: Final = "interop.md §3.3"


class VitalKind(StrEnum):
    SBP = "sbp"
    DBP = "dbp"
    MAP = "map"
    HR = "hr"
    PULSE = "pulse"
    SPO2 = "spo2"
    RR = "rr"
    ETCO2 = "etco2"
    TEMP_C = "temp_c"
    WEIGHT_KG = "weight_kg"
    HEIGHT_CM = "height_cm"
    BMI = "bmi"
    PERFUSION_INDEX = "perfusion_index"


class Quantity(StrEnum):
    PRESSURE = "pressure"
    RATE = "rate"
    PERCENT = "percent"
    TEMPERATURE = "temperature"
    MASS = "mass"
    LENGTH = "length"
    MASS_PER_AREA = "mass_per_area"
    DIMENSIONLESS = "dimensionless"


@dataclass(frozen=True)
class KindSpec:
    """Canonical UCUM unit of a vital and the quantity its source unit must measure."""

    unit: str
    quantity: Quantity
    source: str


# Canonical units: interop.md §1.5 (LOINC/UCUM table) — mm[Hg], /min, %, Cel, kg, cm, kg/m2.
KINDS: Final[Mapping[VitalKind, KindSpec]] = {
    VitalKind.SBP: KindSpec("mm[Hg]", Quantity.PRESSURE, "interop.md §1.5"),
    VitalKind.DBP: KindSpec("mm[Hg]", Quantity.PRESSURE, "interop.md §1.5"),
    VitalKind.MAP: KindSpec("mm[Hg]", Quantity.PRESSURE, "interop.md §1.5"),
    VitalKind.HR: KindSpec("/min", Quantity.RATE, "interop.md §1.5"),
    VitalKind.PULSE: KindSpec("/min", Quantity.RATE, "interop.md §1.5"),
    VitalKind.SPO2: KindSpec("%", Quantity.PERCENT, "interop.md §1.5"),
    VitalKind.RR: KindSpec("/min", Quantity.RATE, "interop.md §1.5"),
    VitalKind.ETCO2: KindSpec("mm[Hg]", Quantity.PRESSURE, "interop.md §1.5 (kPa not verified, §3.3)"),
    VitalKind.TEMP_C: KindSpec("Cel", Quantity.TEMPERATURE, "interop.md §1.5"),
    VitalKind.WEIGHT_KG: KindSpec("kg", Quantity.MASS, "interop.md §1.5"),
    VitalKind.HEIGHT_CM: KindSpec("cm", Quantity.LENGTH, "interop.md §1.5"),
    VitalKind.BMI: KindSpec("kg/m2", Quantity.MASS_PER_AREA, "interop.md §1.5"),
    # Unit of the perfusion index is not given in the reference; accepted as % only [U].
    VitalKind.PERFUSION_INDEX: KindSpec("%", Quantity.PERCENT, "interop.md §3.3 (unit [U])"),
}


@dataclass(frozen=True)
class MdcTerm:
    """An observation code. ``kind`` None: known, but not a vital we store.

    ``site`` says how it was measured (nibp, arterial, ecg, oximeter, oral …); ``confirmed`` False
    for codes the reference marks ⚠.
    """

    code: int
    refid: str
    kind: VitalKind | None
    source: str
    site: str | None = None
    confirmed: bool = True
    aliases: tuple[str, ...] = ()


def _t(
    code: int,
    refid: str,
    kind: VitalKind | None,
    site: str | None = None,
    *,
    source: str = S33,
    confirmed: bool = True,
    aliases: tuple[str, ...] = (),
) -> MdcTerm:
    return MdcTerm(code, refid, kind, source, site, confirmed, aliases)


K = VitalKind
_TERMS: Final[tuple[MdcTerm, ...]] = (
    # Blood pressure: NIBP 15002x, Mindray cuff aliases 15030x, arterial (IBP) 15003x.
    _t(150020, "MDC_PRESS_BLD_NONINV", None, "nibp"),  # compound/group header
    _t(150021, "MDC_PRESS_BLD_NONINV_SYS", K.SBP, "nibp"),
    _t(150022, "MDC_PRESS_BLD_NONINV_DIA", K.DBP, "nibp"),
    _t(150023, "MDC_PRESS_BLD_NONINV_MEAN", K.MAP, "nibp"),
    _t(150301, "MDC_PRESS_CUFF_SYS", K.SBP, "nibp"),
    _t(150302, "MDC_PRESS_CUFF_DIA", K.DBP, "nibp"),
    _t(150303, "MDC_PRESS_CUFF_MEAN", K.MAP, "nibp"),
    _t(150033, "MDC_PRESS_BLD_ART_SYS", K.SBP, "arterial"),
    _t(150034, "MDC_PRESS_BLD_ART_DIA", K.DBP, "arterial"),
    _t(150035, "MDC_PRESS_BLD_ART_MEAN", K.MAP, "arterial"),
    # Heart and pulse rate.
    _t(147842, "MDC_ECG_HEART_RATE", K.HR, "ecg"),
    _t(149530, "MDC_PULS_OXIM_PULS_RATE", K.PULSE, "oximeter"),
    _t(149546, "MDC_PULS_RATE_NON_INV", K.PULSE, "nibp"),
    _t(149522, "MDC_BLD_PULS_RATE_INV", K.PULSE, "arterial"),
    _t(149514, "MDC_PULS_RATE", K.PULSE, None),
    # Oximetry.
    _t(150456, "MDC_PULS_OXIM_SAT_O2", K.SPO2, "oximeter"),
    _t(150488, "MDC_BLD_PERF_INDEX", K.PERFUSION_INDEX, "oximeter"),
    # Respiration. 151594 is marked ⚠ in the reference (one simulator uses 150458): unconfirmed.
    _t(151562, "MDC_RESP_RATE", K.RR, None),
    _t(151578, "MDC_TTHOR_RESP_RATE", K.RR, "impedance"),
    _t(151594, "MDC_CO2_RESP_RATE", K.RR, "co2", confirmed=False),
    _t(151708, "MDC_CONC_AWAY_CO2_ET", K.ETCO2, "capnography", aliases=("MDC_AWAY_CO2_ET",)),
    # Temperature.
    _t(150344, "MDC_TEMP", K.TEMP_C, None),
    _t(188496, "MDC_TEMP_AXIL", K.TEMP_C, "axillary"),
    _t(188424, "MDC_TEMP_ORAL", K.TEMP_C, "oral"),
    # Body measurements.
    _t(188736, "MDC_MASS_BODY_ACTUAL", K.WEIGHT_KG, None),
    _t(188740, "MDC_LEN_BODY_ACTUAL", K.HEIGHT_CM, None),
    _t(188752, "MDC_RATIO_MASS_BODY_LEN_SQ", K.BMI, None),
    # Known, not stored: seen in the sample messages (reference/hl7/).
    _t(528388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM", None, source="hl7/continua_oximeter.hl7"),
    _t(528391, "MDC_DEV_SPEC_PROFILE_BP", None, source="hl7/pcd01_nibp.hl7"),
    _t(528392, "MDC_DEV_SPEC_PROFILE_TEMP", None, source="hl7/continua_thermometer_fahrenheit.hl7"),
    _t(150452, "MDC_PULS_OXIM_PLETH", None, source="hl7/continua_oximeter.hl7"),
    _t(68220, "MDC_TIME_SYNC_PROTOCOL", None, source="hl7/continua_bp.hl7"),
    _t(67975, "MDC_ATTR_TIME_ABS", None, source="hl7/continua_bp.hl7"),
    _t(148065, "MDC_ECG_V_P_C_CNT", None, source="hl7/pcd01_gateway_hr_arterial.hl7"),
    _t(150045, "MDC_PRESS_BLD_ART_PULM_SYS", None, source="hl7/pcd01_gateway_hr_arterial.hl7"),
    _t(150046, "MDC_PRESS_BLD_ART_PULM_DIA", None, source="hl7/pcd01_gateway_hr_arterial.hl7"),
    _t(150047, "MDC_PRESS_BLD_ART_PULM_MEAN", None, source="hl7/pcd01_gateway_hr_arterial.hl7"),
)

TERMS_BY_CODE: Final[Mapping[int, MdcTerm]] = {t.code: t for t in _TERMS}
TERMS_BY_REFID: Final[Mapping[str, MdcTerm]] = {name: t for t in _TERMS for name in (t.refid, *t.aliases)}


@dataclass(frozen=True)
class UnitDef:
    """A unit: its MDC code, REFID and UCUM code; canonical = value × scale + offset."""

    mdc_code: int
    refid: str
    ucum: str
    quantity: Quantity
    scale: Decimal = Decimal(1)
    offset: Decimal = Decimal(0)
    ucum_aliases: tuple[str, ...] = ()
    source: str = S33

    def to_canonical(self, value: Decimal) -> Decimal:
        return value * self.scale + self.offset


Q = Quantity
# °F → °C: (F − 32) × 5/9 = F × 5/9 − 160/9 (definition of the Fahrenheit scale).
_F_SCALE: Final = Decimal(5) / Decimal(9)
_F_OFFSET: Final = Decimal(-160) / Decimal(9)

UNITS: Final[tuple[UnitDef, ...]] = (
    UnitDef(266016, "MDC_DIM_MMHG", "mm[Hg]", Q.PRESSURE),
    UnitDef(264864, "MDC_DIM_BEAT_PER_MIN", "/min", Q.RATE, ucum_aliases=("{beat}/min",)),
    UnitDef(264928, "MDC_DIM_RESP_PER_MIN", "/min", Q.RATE, ucum_aliases=("{breath}/min",)),
    UnitDef(262688, "MDC_DIM_PERCENT", "%", Q.PERCENT),
    UnitDef(268192, "MDC_DIM_DEGC", "Cel", Q.TEMPERATURE),
    UnitDef(266560, "MDC_DIM_FAHR", "[degF]", Q.TEMPERATURE, _F_SCALE, _F_OFFSET),
    UnitDef(263875, "MDC_DIM_KILO_G", "kg", Q.MASS),
    UnitDef(263441, "MDC_DIM_CENTI_M", "cm", Q.LENGTH),
    UnitDef(264096, "MDC_DIM_KG_PER_M_SQ", "kg/m2", Q.MASS_PER_AREA),
    UnitDef(262656, "MDC_DIM_DIMLESS", "1", Q.DIMENSIONLESS),
)
# Efficia's 0004-1710 (= 268048) "C" is NOT in this table on purpose: interop.md §3.3 says it differs
# from MDC_DIM_DEGC and must be handled as an unknown unit, not guessed.

UNITS_BY_CODE: Final[Mapping[int, UnitDef]] = {u.mdc_code: u for u in UNITS}
UNITS_BY_REFID: Final[Mapping[str, UnitDef]] = {u.refid: u for u in UNITS}
# "/min" is shared by beats and breaths: both convert identically, first one wins.
UNITS_BY_UCUM: Final[Mapping[str, UnitDef]] = {
    name: u for u in reversed(UNITS) for name in (u.ucum, *u.ucum_aliases)
}

_MDIL: Final = re.compile(r"^([0-9A-Fa-f]{1,4})-([0-9A-Fa-f]{1,4})$")


def mdil_to_mdc(code: str) -> int | None:
    """``0002-4182`` → 0x0002 × 65536 + 0x4182 = 147842 (interop.md §3.3); None if not MDIL."""
    m = _MDIL.match(code.strip())
    if not m:
        return None
    return int(m.group(1), 16) * 65536 + int(m.group(2), 16)


def mdc_to_mdil(code: int) -> str:
    """147842 → ``0002-4182`` (inverse of :func:`mdil_to_mdc`, lower-case hex as Efficia writes)."""
    partition, term = divmod(code, 65536)
    return f"{partition:04x}-{term:04x}"


def _numeric(code: str) -> int | None:
    code = code.strip()
    # ASCII digits only: str.isdigit() is also true of "¹" or "٣", which int() refuses or reads as digits.
    return int(code) if code.isascii() and code.isdigit() else None


def code_number(code: str, system: str) -> int | None:
    """The MDC numeric code written in a CWE ``code^text^system`` triple, or None.

    MDC (or no system): decimal digits; MDIL: hex pair. Proprietary systems (``99COMEN``,
    ``99MNDRY`` …) are not read as MDC: their numbers are the vendor's.
    """
    sys_upper = system.strip().upper()
    if sys_upper == "MDIL":
        return mdil_to_mdc(code)
    if sys_upper in ("MDC", ""):
        return _numeric(code)
    return None


def lookup_unit(code: str, text: str, system: str) -> UnitDef | None:
    """Resolve an OBX-6 unit (``code^text^system``) to a known unit, or None (report, do not guess)."""
    sys_upper = system.strip().upper()
    code = code.strip()
    text = text.strip()
    if sys_upper == "UCUM":
        return UNITS_BY_UCUM.get(code)
    number = code_number(code, system)
    if number is not None:
        return UNITS_BY_CODE.get(number)
    if sys_upper == "":
        if code in UNITS_BY_UCUM:
            return UNITS_BY_UCUM[code]
        if not code and text in UNITS_BY_UCUM:
            return UNITS_BY_UCUM[text]
    # The MDC REFID in the text component is the standard's own name of the unit.
    return UNITS_BY_REFID.get(text)
