"""Psychosis, pain and sedation scales: BPRS positive subscale, pain NRS, BPI short form, MOAA/S
(clinical.md §8)."""

from __future__ import annotations

from typing import Final

from .common import IMMPACT_SOURCE, immpact_rules
from .model import (
    ChangeKind,
    ChangeRule,
    FlagKind,
    FlagRule,
    Instrument,
    Item,
    ResponseOption,
    ScoreRange,
    Subscale,
    SubscaleMethod,
    TotalRule,
)

_BPRS_SOURCE = "clinical.md §8 (NIDA datashare; pubcompare protocol)"

BPRS_POSITIVE: Final = Instrument(
    code="bprs-positive",
    name="BPRS positive subscale",
    version="1",
    form="Brief Psychiatric Rating Scale, positive-symptom subscale (BPRS+), 4 items rated 1–7",
    source=_BPRS_SOURCE,
    # Item order as listed in clinical.md §8; ids are names because the item numbers differ between the
    # 18-item and the expanded 24-item BPRS.
    items=(
        Item("suspiciousness", "Suspiciousness", 1, 7),
        Item("hallucinatory_behavior", "Hallucinatory behavior", 1, 7),
        Item("unusual_thought_content", "Unusual thought content", 1, 7),
        Item("conceptual_disorganization", "Conceptual disorganization", 1, 7),
    ),
    score_range=ScoreRange(4, 28, "clinical.md §8 (derived 4×1 to 4×7)"),
    notes=(
        "No standard cut-off (clinical.md §8); used to watch for treatment-emergent psychosis.",
        "Item wording and anchors are not stored; load them from the clinic's copy with with_item_texts.",
        "The reference gives no BPRS change-from-baseline rule.",
    ),
)

PAIN_NRS: Final = Instrument(
    code="pain-nrs",
    name="Pain NRS",
    version="1",
    form="11-point pain numeric rating scale (0–10)",
    source="clinical.md §8 (Farrar, Pain 2001; Dworkin 2008)",
    items=(Item("pain", "Pain intensity", 0, 10),),
    score_range=ScoreRange(0, 10, "clinical.md §8"),
    change_rules=immpact_rules(),
    notes=(
        "IMMPACT states 10–20% as minimal; reductions from 10% up to 30% are reported as minimal here.",
        "A ~2-point reduction is about moderately important (Farrar 2001, clinical.md §8); it is approximate "
        "and not applied as a rule.",
    ),
)

_BPI_SOURCE = "clinical.md §8 (Wikipedia; sralab.org; bandolier; J Pain 2010)"
_BPI_MEAN_SOURCE = (
    "clinical.md §8 gives 0–10 per subscale; the mean of the items (the issue's rule, as in the BPI user "
    "guide) keeps that range"
)
BPI_SEVERITY_ITEMS: Final = ("worst", "least", "average", "now")
BPI_INTERFERENCE_ITEMS: Final = (
    "general_activity",
    "mood",
    "walking",
    "work",
    "relations",
    "sleep",
    "enjoyment",
)

BPI_SF: Final = Instrument(
    code="bpi-sf",
    name="BPI-SF",
    version="1",
    form="Brief Pain Inventory, short form: 4 intensity items and 7 interference items, each 0–10",
    source=_BPI_SOURCE,
    total_rule=TotalRule.NONE,
    items=(
        Item("worst", "Pain at its worst", 0, 10),
        Item("least", "Pain at its least", 0, 10),
        Item("average", "Pain on average", 0, 10),
        Item("now", "Pain right now", 0, 10),
        Item("general_activity", "Interference: general activity", 0, 10),
        Item("mood", "Interference: mood", 0, 10),
        Item("walking", "Interference: walking ability", 0, 10),
        Item("work", "Interference: normal work", 0, 10),
        Item("relations", "Interference: relations with other people", 0, 10),
        Item("sleep", "Interference: sleep", 0, 10),
        Item("enjoyment", "Interference: enjoyment of life", 0, 10),
    ),
    subscales=(
        Subscale(
            "severity",
            "Pain severity (mean of worst, least, average, now)",
            BPI_SEVERITY_ITEMS,
            SubscaleMethod.MEAN,
            0,
            10,
            _BPI_MEAN_SOURCE,
        ),
        Subscale(
            "interference",
            "Pain interference (mean of the 7 interference items)",
            BPI_INTERFERENCE_ITEMS,
            SubscaleMethod.MEAN,
            0,
            10,
            _BPI_MEAN_SOURCE,
        ),
    ),
    change_rules=(
        *immpact_rules("severity"),
        ChangeRule(
            code="bpi_interference_minimally_important",
            label="Minimally important improvement in interference: at least 1 point lower",
            kind=ChangeKind.REDUCTION_POINTS_AT_LEAST,
            threshold=1,
            source=IMMPACT_SOURCE + "; clinical.md §8 (BPI-SF)",
            measure="interference",
        ),
    ),
    notes=(
        "All 11 items are required: the reference states no rule for partly answered forms.",
        "The '% relief' item is not scored and is not an item here.",
        "No total: compare() needs measure='severity' or measure='interference'.",
        "CID ≈34% for the single worst/average items (Farrar 2010) is per item and not applied to the "
        "severity mean.",
        "Item wording and anchors are not stored; load them from the clinic's copy with with_item_texts.",
    ),
)

_MOAAS_SOURCE = "clinical.md §8 (Spravato label)"

MOAAS: Final = Instrument(
    code="moaas",
    name="MOAA/S",
    version="1",
    form="Modified Observer's Assessment of Alertness/Sedation, 0–5",
    source=_MOAAS_SOURCE,
    items=(
        Item(
            "moaas",
            "MOAA/S level",
            0,
            5,
            options=(
                ResponseOption(0, "No response after painful trapezius squeeze"),
                ResponseOption(5, "Responds readily to name in normal tone"),
            ),
            note="Only the anchors 5 and 0 are in the reference; levels 1–4 are not labelled here.",
        ),
    ),
    score_range=ScoreRange(0, 5, "clinical.md §8"),
    flag_rules=(
        FlagRule(
            "moaas_loss_of_consciousness",
            FlagKind.SEDATION,
            "MOAA/S 0 → loss of consciousness",
            _MOAAS_SOURCE,
        ),
        FlagRule(
            "moaas_sedation",
            FlagKind.SEDATION,
            "MOAA/S lower than the pre-dose value → sedation (use compare with the pre-dose value)",
            _MOAAS_SOURCE,
        ),
    ),
    change_rules=(
        ChangeRule(
            code="moaas_sedation",
            label="Sedation: any decrease from the pre-dose MOAA/S",
            kind=ChangeKind.ANY_DECREASE,
            threshold=None,
            source=_MOAAS_SOURCE,
            flag_kind=FlagKind.SEDATION,
        ),
    ),
    notes=(
        "Higher is more alert. Sedation is judged against the pre-dose value: compare('moaas', pre, now).",
    ),
)
