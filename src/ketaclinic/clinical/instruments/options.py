"""Configurable thresholds for scoring and change rules.

Each field is a default the clinic may change. ``SETTINGS`` describes every field with its default, its
source and whether the reference confirms it, so the UI can show "default, unconfirmed" next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from .errors import InstrumentInputError
from .model import CssrsRisk


@dataclass(frozen=True)
class CssrsTriage:
    """Risk level that each endorsed C-SSRS screener answer maps to; the highest one applies.

    Defaults follow clinical.md §8: "items 1–2 only → low; item 3 → moderate; items 4 or 5 → high; item 6
    within 3 months → high (>3 months → moderate) [triage mapping per official color version; verify]".
    The reference marks the mapping "[verify]", so it is unconfirmed and configurable here.
    """

    item1: CssrsRisk = CssrsRisk.LOW
    item2: CssrsRisk = CssrsRisk.LOW
    item3: CssrsRisk = CssrsRisk.MODERATE
    item4: CssrsRisk = CssrsRisk.HIGH
    item5: CssrsRisk = CssrsRisk.HIGH
    item6_past_3_months: CssrsRisk = CssrsRisk.HIGH
    item6_older: CssrsRisk = CssrsRisk.MODERATE


CSSRS_TRIAGE_SOURCE: Final = (
    "clinical.md §8 (C-SSRS screener triage per official color version; NINDS CDE, documentine scoring "
    "guide) — marked [verify] in the reference"
)


@dataclass(frozen=True)
class InstrumentOptions:
    """Clinic-level settings used by ``score`` and ``compare``. See ``SETTINGS`` for sources."""

    # clinical.md §5.2: "Specific YMRS cut-off that should hold/stop treatment: [U]". Default 12 = top of
    # the "≤12 remission/minimal" band (clinical.md §8). Flag when total > threshold. Unconfirmed.
    ymrs_mania_threshold: int = 12
    # clinical.md §8: PCL-5 "provisional PTSD cut-point 31–33". Flag when total >= cut-point.
    pcl5_cutpoint: int = 33
    # clinical.md §8: PCL-5 "change 5–10 pts = reliable, 10–20 = clinically meaningful".
    pcl5_reliable_change_points: int = 5
    pcl5_meaningful_change_points: int = 10
    # clinical.md §8: CADSS "no validated severity cut-off; presence threshold '>4' [U]". None = off.
    cadss_presence_threshold: int | None = 4
    # clinical.md §0: MADRS remission ≤10 (ESCAPE-TRD, KetECT) or ≤12 (TRANSFORM esketamine trials).
    madrs_remission_max: Literal[10, 12] = 10
    # The reference gives no GAD-7 response or remission threshold (Hull 2022 reports both without the
    # definition). None = not evaluated; a value set here is shown as unconfirmed.
    gad7_response_min_reduction_pct: int | None = None
    gad7_remission_below: int | None = None
    cssrs_triage: CssrsTriage = field(default_factory=CssrsTriage)
    # clinical.md §8: MADRS item 10 "Suicidal thoughts" is scored 0–6; the reference gives no item-10
    # cut-off. Clinic default 0: any answer above 0 raises a suicidality flag, as PHQ-9 item 9 (">0 needs
    # immediate follow-up", clinical.md §8) and QIDS-SR16 item 12 do here. Unconfirmed.
    madrs_item10_flag_above: int = 0

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        if not 0 <= self.madrs_item10_flag_above <= 5:
            errors["madrs_item10_flag_above"] = (
                f"MADRS item-10 flag threshold {self.madrs_item10_flag_above} must be between 0 and 5 "
                "(item 10 is scored 0–6; flagged when the answer is above the threshold)"
            )
        if not 0 <= self.ymrs_mania_threshold < 60:
            errors["ymrs_mania_threshold"] = (
                f"YMRS mania threshold {self.ymrs_mania_threshold} must be between 0 and 59 (total is 0–60)"
            )
        if not 31 <= self.pcl5_cutpoint <= 33:
            errors["pcl5_cutpoint"] = (
                f"PCL-5 cut-point {self.pcl5_cutpoint} is outside the published 31–33 (clinical.md §8)"
            )
        if not 5 <= self.pcl5_reliable_change_points <= 10:
            errors["pcl5_reliable_change_points"] = (
                f"PCL-5 reliable change {self.pcl5_reliable_change_points} points is outside the published "
                "5–10 points"
            )
        if not 10 <= self.pcl5_meaningful_change_points <= 20:
            errors["pcl5_meaningful_change_points"] = (
                f"PCL-5 clinically meaningful change {self.pcl5_meaningful_change_points} points is outside "
                "the published 10–20 points"
            )
        if self.cadss_presence_threshold is not None and not 0 <= self.cadss_presence_threshold < 92:
            errors["cadss_presence_threshold"] = (
                f"CADSS presence threshold {self.cadss_presence_threshold} must be between 0 and 91"
            )
        if self.madrs_remission_max not in (10, 12):
            errors["madrs_remission_max"] = (
                f"MADRS remission must be ≤10 or ≤12 (clinical.md §0), not ≤{self.madrs_remission_max}"
            )
        pct = self.gad7_response_min_reduction_pct
        if pct is not None and not 1 <= pct <= 100:
            errors["gad7_response_min_reduction_pct"] = (
                f"GAD-7 response reduction {pct}% must be between 1 and 100"
            )
        rem = self.gad7_remission_below
        if rem is not None and not 1 <= rem <= 21:
            errors["gad7_remission_below"] = f"GAD-7 remission 'below {rem}' must be between 1 and 21"
        if errors:
            raise InstrumentInputError("Rating-scale settings", errors)

    def threshold(self, name: str) -> int | None:
        """The integer setting ``name`` (used by change rules that name an option)."""
        values: dict[str, int | None] = {
            "pcl5_reliable_change_points": self.pcl5_reliable_change_points,
            "pcl5_meaningful_change_points": self.pcl5_meaningful_change_points,
            "madrs_remission_max": self.madrs_remission_max,
            "gad7_response_min_reduction_pct": self.gad7_response_min_reduction_pct,
            "gad7_remission_below": self.gad7_remission_below,
        }
        return values[name]


DEFAULT_OPTIONS: Final = InstrumentOptions()


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    description: str
    source: str
    confirmed: bool


SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "ymrs_mania_threshold",
        12,
        "Flag 'possible mania' when the YMRS total is above this number.",
        "clinical.md §5.2 (no hold/stop cut-off found: [U]); default = top of the '≤12 remission/minimal' "
        "band, clinical.md §8",
        confirmed=False,
    ),
    Setting(
        "pcl5_cutpoint",
        33,
        "PCL-5 total at or above which the provisional-PTSD screen is positive (allowed 31–33).",
        "clinical.md §8 (NC-PTSD: cut-point 31–33); 33 also used as program entry in clinical.md §3.3",
        confirmed=True,
    ),
    Setting(
        "pcl5_reliable_change_points",
        5,
        "PCL-5 points of change counted as reliable (allowed 5–10; default = lower bound).",
        "clinical.md §8 (NC-PTSD: 5–10 points = reliable change)",
        confirmed=True,
    ),
    Setting(
        "pcl5_meaningful_change_points",
        10,
        "PCL-5 points of improvement counted as clinically meaningful "
        "(allowed 10–20; default = lower bound).",
        "clinical.md §8 (NC-PTSD: 10–20 points = clinically meaningful change)",
        confirmed=True,
    ),
    Setting(
        "cadss_presence_threshold",
        4,
        "Flag dissociation as present when the CADSS (23-item) total is above this number; None = off.",
        "clinical.md §8 (no validated cut-off; presence threshold '>4' [U])",
        confirmed=False,
    ),
    Setting(
        "madrs_remission_max",
        10,
        "MADRS remission: total at or below this (10 or 12).",
        "clinical.md §0 (≤10 ESCAPE-TRD/KetECT; ≤12 TRANSFORM esketamine trials)",
        confirmed=True,
    ),
    Setting(
        "gad7_response_min_reduction_pct",
        None,
        "GAD-7 response: % reduction from baseline; None = not evaluated.",
        "not in the reference (Hull 2022 reports GAD-7 response without the definition)",
        confirmed=False,
    ),
    Setting(
        "gad7_remission_below",
        None,
        "GAD-7 remission: total below this; None = not evaluated.",
        "not in the reference (Hull 2022 reports GAD-7 remission without the definition)",
        confirmed=False,
    ),
    Setting(
        "cssrs_triage",
        CssrsTriage(),
        "Risk level per endorsed C-SSRS screener answer (highest applies).",
        CSSRS_TRIAGE_SOURCE,
        confirmed=False,
    ),
    Setting(
        "madrs_item10_flag_above",
        0,
        "Raise a suicidality flag when MADRS item 10 (suicidal thoughts, 0–6) is above this number "
        "(allowed 0–5; default 0: any answer above 0).",
        "clinical.md §8 (MADRS items 0–6; no item-10 cut-off in the reference); default follows PHQ-9 "
        "item 9 >0 → immediate follow-up (clinical.md §8, Kroenke 2001): clinic default, unconfirmed",
        confirmed=False,
    ),
)
