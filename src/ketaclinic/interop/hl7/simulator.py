"""A bedside-monitor simulator: realistic PCD-01 ORU^R01 text and a seeded vitals trajectory.

Messages (:func:`make_vitals_message`) follow the samples in reference/hl7/ and the field guide of
interop.md §3.2 in three styles that the parser must all read:

* ``mdc``  — MDC codes and MDC units, current PCD profile in MSH-21 (like pcd01_nibp.hl7);
* ``ucum`` — MDC codes with UCUM units (like the AwareGateway sample pcd01_gateway_hr_arterial.hl7);
* ``mdil`` — Philips style: MDC numbers written in hex (``0002-4182^HR^MDIL``, §3.3), HL7 2.4,
  no MSH-21, OBX-1 empty and OBX-11 ``F`` (§3.5).

The trajectory (:func:`vitals_trajectory`) models one chair's session around a ketamine dose: the
baseline plus a blood-pressure rise that peaks about 40 min after the dose and is gone by about
90 min, with measurement noise, and now and then a surge. Shape and sizes cite clinical.md; every
number is a parameter. SpO2 and RR only get noise: the reference gives no figures for their course
([U] clinical.md §7.3), so none are invented.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from ketaclinic.interop.hl7.er7 import escape, format_dtm
from ketaclinic.interop.hl7.mdc import TERMS_BY_CODE, UNITS_BY_CODE, mdc_to_mdil

Style = Literal["mdc", "ucum", "mdil"]
STYLES: Final[tuple[Style, ...]] = ("mdc", "ucum", "mdil")

# interop.md §3.2: current PCD DEC profile id in MSH-21; OBR-4 "monitoring of patient".
PCD_PROFILE: Final = "PCD_DEC_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
OBR_SERVICE: Final = "182777000^monitoring of patient^SCT"
SIM_APPLICATION: Final = "KETASIM"

# (parameter, MDC code, unit MDC code, OBX-4 containment). NIBP under a 150020 group header
# carrying the measurement time, as in pcd01_nibp.hl7; containment numbers are not normative (§3.1).
_NIBP_GROUP: Final = (150020, "1.0.1")
_ROWS: Final[tuple[tuple[str, int, int, str], ...]] = (
    ("sbp", 150021, 266016, "1.0.1.1"),
    ("dbp", 150022, 266016, "1.0.1.2"),
    ("mean", 150023, 266016, "1.0.1.3"),
    ("hr", 147842, 264864, "1.0.2.1"),
    ("spo2", 150456, 262688, "1.0.3.1"),
    ("rr", 151562, 264928, "1.0.4.1"),
)
# Display labels for the MDIL style: "HR" is Philips' (interop.md §3.3); the others are ours, free
# text that the parser ignores (only ``MDC_`` labels are checked).
_MDIL_LABELS: Final = {
    147842: "HR",
    150021: "NBPs",
    150022: "NBPd",
    150023: "NBPm",
    150456: "SpO2",
    151562: "RR",
}


def _num(value: float) -> str:
    return f"{value:.10g}"


def _code(code: int, style: Style) -> str:
    if style == "mdil":
        return f"{mdc_to_mdil(code)}^{_MDIL_LABELS.get(code, TERMS_BY_CODE[code].refid)}^MDIL"
    return f"{code}^{TERMS_BY_CODE[code].refid}^MDC"


def _unit(code: int, style: Style) -> str:
    unit = UNITS_BY_CODE[code]
    if style == "mdil":
        return f"{mdc_to_mdil(code)}^{unit.ucum}^MDIL"
    if style == "ucum":
        return f"{unit.ucum}^{unit.ucum}^UCUM"
    return f"{code}^{unit.refid}^MDC"


def make_vitals_message(
    *,
    device_eui64: str,
    bed: str,
    patient_id: str | None,
    at: datetime,
    sbp: float | None,
    dbp: float | None,
    hr: float | None,
    spo2: float | None,
    rr: float | None,
    control_id: str,
    style: Style = "mdc",
    mean: float | None = None,
    point_of_care: str = "KETACLINIC",
    patient_authority: str = "KETACLINIC",
) -> str:
    """One ORU^R01, segments separated by CR (no trailing CR). A value of None is left out.

    ``at`` aware → times carry its UTC offset; naive → no offset (the receiver applies its zone).
    ``patient_id`` None or "" → empty PID-3 (monitor not admitted, interop.md §3.2).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, not {style!r}")
    e = escape
    ts = format_dtm(at)
    eui = e(device_eui64)
    philips = style == "mdil"
    msh = f"MSH|^~\\&|{SIM_APPLICATION}^{eui}^EUI-64||||{ts}||ORU^R01^ORU_R01|{e(control_id)}|P|" + (
        "2.4|||NE|AL||8859/1" if philips else f"2.6|||NE|AL||UNICODE UTF-8|||{PCD_PROFILE}"
    )
    pid = f"PID|||{e(patient_id)}^^^{e(patient_authority)}^MR" if patient_id else "PID|||"
    pv1 = f"PV1||O|{e(point_of_care)}^^{e(bed)}"
    obr = (
        f"OBR|1|{e(control_id)}^{SIM_APPLICATION}^{eui}^EUI-64|{e(control_id)}^{SIM_APPLICATION}^{eui}^EUI-64"
        f"|{OBR_SERVICE}|||{ts}"
    )
    values = {"sbp": sbp, "dbp": dbp, "mean": mean, "hr": hr, "spo2": spo2, "rr": rr}
    status = "F" if philips else "R"
    obxs: list[str] = []

    def set_id() -> str:
        return "" if philips else str(len(obxs) + 1)

    if any(values[k] is not None for k in ("sbp", "dbp", "mean")):
        group_code, group_pos = _NIBP_GROUP
        obxs.append(f"OBX|{set_id()}||{_code(group_code, style)}|{group_pos}|||||||X|||{ts}")
    for name, code, unit, position in _ROWS:
        value = values[name]
        if value is None:
            continue
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value!r}")
        obxs.append(
            f"OBX|{set_id()}|NM|{_code(code, style)}|{position}|{_num(value)}|{_unit(unit, style)}"
            f"|||||{status}|||{ts}||||{eui}^EUI-64"
        )
    return "\r".join([msh, pid, pv1, obr, *obxs])


# ---------------------------------------------------------------- trajectory


@dataclass(frozen=True)
class Baseline:
    """A patient's resting vitals: the simulator's input, not a clinical norm."""

    sbp: float
    dbp: float
    hr: float
    spo2: float
    rr: float


# Illustrative input for demos, NOT a clinical reference: BP 120/80 and HR 60 are the values in the
# reference sample messages (hl7/pcd01_nibp.hl7, hl7/pcd01_gateway_hr_arterial.hl7); SpO2 98 % and
# RR 14/min are illustrative [U]. Pass the patient's own values where known.
EXAMPLE_BASELINE: Final = Baseline(sbp=120, dbp=80, hr=60, spo2=98, rr=14)
EXAMPLE_BASELINE_CONFIRMED: Final = False


@dataclass(frozen=True)
class SessionShape:
    """Course of the post-dose blood-pressure rise (all configurable; sources next to each)."""

    # clinical.md §7.2 (Yale: "peak at 40 min") and §2.6 (esketamine: "increases peak ~40 min").
    peak_min: float = 40.0
    # clinical.md §2.6 (TRANSFORM-2: AEs "resolve by 1.5 h") and §7.2 (Szarmach 2020: back to baseline
    # within 1.5 h). The Spravato label says increases "last ~4 h" (§2.6): set this longer to model it.
    resolve_min: float = 90.0
    # Mean rise at the peak, drawn per session between the smallest and largest mean rises reported in
    # clinical.md §7.2: Emory +3.28/+3.17 mmHg … Yale +16.0/+11.0 mmHg (China +7.4/+6.0 lies between).
    sbp_rise_mmhg: tuple[float, float] = (3.28, 16.0)
    dbp_rise_mmhg: tuple[float, float] = (3.17, 11.0)
    # clinical.md §7.2 (China: pulse +1.9 bpm at 30–40 min).
    hr_rise_per_min: float = 1.9
    # clinical.md §7.2 (Yale: severe hypertension in 0.98 % of sessions).
    surge_probability: float = 0.0098
    # clinical.md §2.6 (label: SBP rise ≥40 and/or DBP rise ≥25 mmHg in the first 1.5 h): a surge
    # session peaks at least this much above baseline.
    surge_sbp_rise_mmhg: float = 40.0
    surge_dbp_rise_mmhg: float = 25.0

    def factor(self, minutes_post_dose: float) -> float:
        """0 before the dose, rising smoothly to 1 at ``peak_min``, back to 0 at ``resolve_min``."""
        t = minutes_post_dose
        if t <= 0 or t >= self.resolve_min:
            return 0.0
        if t <= self.peak_min:
            return math.sin(math.pi / 2 * t / self.peak_min) ** 2
        return math.cos(math.pi / 2 * (t - self.peak_min) / (self.resolve_min - self.peak_min)) ** 2


@dataclass(frozen=True)
class Noise:
    """Reading-to-reading noise (standard deviations). Illustrative simulator settings [U]."""

    sbp: float = 2.0
    dbp: float = 2.0
    hr: float = 2.0
    spo2: float = 0.5
    rr: float = 1.0
    confirmed: bool = False


@dataclass(frozen=True)
class VitalsSample:
    at: datetime
    minutes_post_dose: float
    sbp: int
    dbp: int
    hr: int
    spo2: int
    rr: int


@dataclass(frozen=True)
class SessionTrajectory:
    samples: tuple[VitalsSample, ...]
    surge: bool
    peak_sbp_rise_mmhg: float
    peak_dbp_rise_mmhg: float
    shape: SessionShape = field(default_factory=SessionShape)


def vitals_trajectory(
    *,
    baseline: Baseline,
    dose_at: datetime,
    seed: int,
    start_min: float = -10.0,
    end_min: float = 120.0,
    interval_min: float = 10.0,
    shape: SessionShape | None = None,
    noise: Noise | None = None,
    surge: bool | None = None,
) -> SessionTrajectory:
    """Readings from ``start_min`` to ``end_min`` minutes around ``dose_at``, every ``interval_min``.

    Defaults: readings every 10 min (clinical.md §7.1, Emory/Yale BP every 10 min during infusion)
    for 2 h after the dose (§2.3, Spravato observation ≥2 h). ``surge`` None draws it with
    ``shape.surge_probability``; True/False forces it (demos, tests). Same seed, same trajectory.
    """
    if interval_min <= 0:
        raise ValueError("interval_min must be positive")
    if end_min < start_min:
        raise ValueError("end_min must not be before start_min")
    sh = shape or SessionShape()
    nz = noise or Noise()
    rng = random.Random(seed)
    is_surge = rng.random() < sh.surge_probability if surge is None else surge
    if is_surge:
        sbp_rise, dbp_rise = sh.surge_sbp_rise_mmhg, sh.surge_dbp_rise_mmhg
    else:
        sbp_rise = rng.uniform(*sh.sbp_rise_mmhg)
        dbp_rise = rng.uniform(*sh.dbp_rise_mmhg)
    samples: list[VitalsSample] = []
    steps = math.floor((end_min - start_min) / interval_min + 1e-9)
    for k in range(steps + 1):
        t = start_min + k * interval_min
        f = sh.factor(t)
        samples.append(
            VitalsSample(
                at=dose_at + timedelta(minutes=t),
                minutes_post_dose=t,
                sbp=round(baseline.sbp + sbp_rise * f + rng.gauss(0, nz.sbp)),
                dbp=round(baseline.dbp + dbp_rise * f + rng.gauss(0, nz.dbp)),
                hr=round(baseline.hr + sh.hr_rise_per_min * f + rng.gauss(0, nz.hr)),
                spo2=min(100, round(baseline.spo2 + rng.gauss(0, nz.spo2))),
                rr=max(0, round(baseline.rr + rng.gauss(0, nz.rr))),
            )
        )
    return SessionTrajectory(tuple(samples), is_surge, sbp_rise, dbp_rise, sh)


def trajectory_messages(
    samples: Sequence[VitalsSample],
    *,
    device_eui64: str,
    bed: str,
    patient_id: str | None,
    control_id_prefix: str = "SIM",
    style: Style = "mdc",
) -> list[str]:
    """One ORU^R01 per sample, control ids ``<prefix>000001`` …"""
    return [
        make_vitals_message(
            device_eui64=device_eui64,
            bed=bed,
            patient_id=patient_id,
            at=s.at,
            sbp=s.sbp,
            dbp=s.dbp,
            hr=s.hr,
            spo2=s.spo2,
            rr=s.rr,
            control_id=f"{control_id_prefix}{i:06d}",
            style=style,
        )
        for i, s in enumerate(samples, start=1)
    ]
