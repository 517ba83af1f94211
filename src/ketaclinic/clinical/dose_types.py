"""Dose kinds and limits: the small types protocols, the dose calculator and the dose check share.

Pure: no Django, no I/O. Kept apart from ``protocols.py`` so that ``dose_limits.py`` (the reference limits a
protocol may not widen) can be used by the protocol validator without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

#: Esketamine device strength and the doses the label allows (clinical.md §2.1: 28 mg per device,
#: 56 mg = 2 devices, 84 mg = 3 devices, changes in 28-mg increments).
ESKETAMINE_DEVICE_MG: Final = 28.0
ESKETAMINE_LABEL_DOSES_MG: Final = (28.0, 56.0, 84.0)
ESKETAMINE_MIN_OBSERVATION_MIN: Final = 120  # clinical.md §2.3: observe ≥2 h every session (label)
ESKETAMINE_BP_CHECK_MIN: Final = 40  # clinical.md §2.3: BP ~40 min post-dose (label)
ESKETAMINE_RULE_SOURCE: Final = "clinical.md §2.1, §2.3; SPRAVATO US PI"


class DoseKind(StrEnum):
    MG_PER_KG = "mg_per_kg"  # amount mg/kg given over duration_min
    MG_PER_KG_PER_HOUR = "mg_per_kg_per_h"  # amount mg/kg/h for duration_min
    FIXED_MG = "fixed_mg"  # amount mg


DOSE_UNITS: Final[Mapping[DoseKind, str]] = {
    DoseKind.MG_PER_KG: "mg/kg",
    DoseKind.MG_PER_KG_PER_HOUR: "mg/kg/h",
    DoseKind.FIXED_MG: "mg",
}


@dataclass(frozen=True)
class DoseLimits:
    """Soft limits need a recorded override reason; hard limits refuse. Units are the rule's units.

    Continuous doses use the min/max pairs; fixed esketamine doses use the discrete ``*_allowed`` sets.
    """

    source: str
    soft_min: float | None = None
    soft_max: float | None = None
    hard_min: float | None = None
    hard_max: float | None = None
    soft_allowed: tuple[float, ...] = ()
    hard_allowed: tuple[float, ...] = ()
    confirmed: bool = True
    note: str = ""
    # Clinic policy on top of the per-kg limits (None: the route default in ``dose_limits.py`` applies).
    # A session's dose above ``soft_max_mg`` needs a prescriber's reason; above ``hard_max_mg`` it is
    # refused. ``max_mg_per_h`` caps an infusion's hourly rate (CRPS: 25 mg/h, clinical.md §11).
    # ``max_concentration_mg_ml`` is the strongest final IV concentration the clinic infuses.
    soft_max_mg: float | None = None
    hard_max_mg: float | None = None
    max_mg_per_h: float | None = None
    max_concentration_mg_ml: float | None = None
    policy_source: str = ""
    policy_confirmed: bool = False
