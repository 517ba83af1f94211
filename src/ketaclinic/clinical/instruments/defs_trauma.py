"""PTSD, dissociation and suicide-risk scales: PCL-5, CADSS (23 items and 6-item short form), C-SSRS
screener (clinical.md §8)."""

from __future__ import annotations

from typing import Final

from .common import numbered_items
from .model import (
    ChangeKind,
    ChangeRule,
    FlagKind,
    FlagRule,
    Instrument,
    Item,
    LoincCode,
    ResponseOption,
    ScoreRange,
    Subscale,
    SubscaleMethod,
    TotalRule,
)
from .options import CSSRS_TRIAGE_SOURCE

_PCL5_SOURCE = "clinical.md §8 (NC-PTSD text via comorbidityguidelines.org.au; onlinemedicaltools.com)"

# clinical.md §8: DSM-5 clusters B 1–5, C 6–7, D 8–14, E 15–20.
PCL5_CLUSTERS: Final[dict[str, tuple[str, ...]]] = {
    "B": tuple(str(n) for n in range(1, 6)),
    "C": ("6", "7"),
    "D": tuple(str(n) for n in range(8, 15)),
    "E": tuple(str(n) for n in range(15, 21)),
}
# clinical.md §8: "item ≥2 counts, need ≥1B, ≥1C, ≥2D, ≥2E".
PCL5_ENDORSED_MIN_ITEM: Final = 2
PCL5_CLUSTERS_NEEDED: Final[dict[str, int]] = {"B": 1, "C": 1, "D": 2, "E": 2}

PCL5: Final = Instrument(
    code="pcl5",
    name="PCL-5",
    version="1",
    form="PTSD Checklist for DSM-5, 20 items (National Center for PTSD)",
    source=_PCL5_SOURCE,
    recall_period="past month",
    items=numbered_items(
        (
            "Unwanted memories",
            "Disturbing dreams",
            "Feeling or acting as if it were happening again",
            "Upset by reminders",
            "Physical reactions to reminders",
            "Avoiding memories, thoughts or feelings",
            "Avoiding external reminders",
            "Trouble remembering important parts",
            "Strong negative beliefs",
            "Blaming yourself or someone else",
            "Strong negative feelings",
            "Loss of interest",
            "Feeling distant or cut off",
            "Trouble experiencing positive feelings",
            "Irritable, angry or aggressive",
            "Taking too many risks",
            "Superalert, watchful, on guard",
            "Jumpy or easily startled",
            "Difficulty concentrating",
            "Trouble falling or staying asleep",
        ),
        0,
        4,
        texts=(
            "Repeated, disturbing, and unwanted memories of the stressful experience?",
            "Repeated, disturbing dreams of the stressful experience?",
            "Suddenly feeling or acting as if the stressful experience were actually happening again (as "
            "if you were actually back there reliving it)?",
            "Feeling very upset when something reminded you of the stressful experience?",
            "Having strong physical reactions when something reminded you of the stressful experience (for "
            "example, heart pounding, trouble breathing, sweating)?",
            "Avoiding memories, thoughts, or feelings related to the stressful experience?",
            "Avoiding external reminders of the stressful experience (for example, people, places, "
            "conversations, activities, objects, or situations)?",
            "Trouble remembering important parts of the stressful experience?",
            "Having strong negative beliefs about yourself, other people, or the world (for example, having "
            "thoughts such as: I am bad, there is something seriously wrong with me, no one can be trusted, "
            "the world is completely dangerous)?",
            "Blaming yourself or someone else for the stressful experience or what happened after it?",
            "Having strong negative feelings such as fear, horror, anger, guilt, or shame?",
            "Loss of interest in activities that you used to enjoy?",
            "Feeling distant or cut off from other people?",
            "Trouble experiencing positive feelings (for example, being unable to feel happiness or have "
            "loving feelings for people close to you)?",
            "Irritable behavior, angry outbursts, or acting aggressively?",
            "Taking too many risks or doing things that could cause you harm?",
            'Being "superalert" or watchful or on guard?',
            "Feeling jumpy or easily startled?",
            "Having difficulty concentrating?",
            "Trouble falling or staying asleep?",
        ),
        options=(
            ResponseOption(0, "Not at all"),
            ResponseOption(1, "A little bit"),
            ResponseOption(2, "Moderately"),
            ResponseOption(3, "Quite a bit"),
            ResponseOption(4, "Extremely"),
        ),
    ),
    text_source="PCL-5 (National Center for PTSD, US government work, public domain), standard form",
    score_range=ScoreRange(0, 80, "clinical.md §8"),
    subscales=tuple(
        Subscale(
            key=f"cluster_{name.lower()}",
            label=f"Cluster {name} (items {items[0]}–{items[-1]})",
            items=items,
            method=SubscaleMethod.SUM,
            low=0,
            high=4 * len(items),
            source=_PCL5_SOURCE,
        )
        for name, items in PCL5_CLUSTERS.items()
    ),
    flag_rules=(
        FlagRule(
            "pcl5_provisional_ptsd_cutpoint",
            FlagKind.SCREEN,
            "PCL-5 total at or above the provisional PTSD cut-point (31–33; default 33)",
            _PCL5_SOURCE + "; setting pcl5_cutpoint",
        ),
        FlagRule(
            "pcl5_dsm5_pattern",
            FlagKind.SCREEN,
            "PCL-5 DSM-5 pattern met: items rated ≥2 count; needs ≥1 in B, ≥1 in C, ≥2 in D, ≥2 in E",
            _PCL5_SOURCE,
        ),
    ),
    change_rules=(
        ChangeRule(
            code="pcl5_reliable_improvement",
            label="Reliable improvement: at least 5 points lower (5–10; setting pcl5_reliable_change_points)",
            kind=ChangeKind.REDUCTION_POINTS_AT_LEAST,
            threshold=5,
            source=_PCL5_SOURCE,
            option="pcl5_reliable_change_points",
        ),
        ChangeRule(
            code="pcl5_clinically_meaningful_improvement",
            label="Clinically meaningful improvement: at least 10 points lower (10–20; setting "
            "pcl5_meaningful_change_points)",
            kind=ChangeKind.REDUCTION_POINTS_AT_LEAST,
            threshold=10,
            source=_PCL5_SOURCE,
            option="pcl5_meaningful_change_points",
        ),
        ChangeRule(
            code="pcl5_reliable_worsening",
            label="Reliable worsening: at least 5 points higher (5–10; setting pcl5_reliable_change_points)",
            kind=ChangeKind.INCREASE_POINTS_AT_LEAST,
            threshold=5,
            source=_PCL5_SOURCE,
            option="pcl5_reliable_change_points",
        ),
    ),
    loinc_panel=LoincCode(
        "101697-1", "Post traumatic stress disorder checklist - civilian version DSM-5 [PCL-5]"
    ),
    loinc_total=LoincCode("101698-9", "PTSD PCL-5 score [PCL-5]"),
    notes=(
        "No empirical severity bands exist (clinical.md §8), so no band is given.",
        "PCL-5 item LOINC codes are not in the reference. Do not use 70221-7 (old DSM-IV PCL-C).",
        "PTSD response ≥30% (clinical.md §0) is defined on CAPS-5, not PCL-5, and is not applied here.",
    ),
)

_CADSS_SOURCE = "clinical.md §8 (Bremner 1998; Rodrigues JAD 2021; pubcompare protocol)"
# clinical.md §8: CADSS-6 short form = items 1, 2, 6, 7, 15, 22 of the 23-item version.
CADSS6_ITEMS: Final = ("1", "2", "6", "7", "15", "22")
_CADSS_TITLES_NOTE = (
    "Item titles and wording are not in the reference; load them from the clinic's copy of the CADSS "
    "with with_item_texts."
)

CADSS: Final = Instrument(
    code="cadss",
    name="CADSS",
    version="1",
    form="Clinician-Administered Dissociative States Scale, 23-item version used in ketamine studies",
    source=_CADSS_SOURCE,
    items=tuple(Item(str(n), f"CADSS item {n}", 0, 4) for n in range(1, 24)),
    score_range=ScoreRange(0, 92, "clinical.md §8: derived 23×4, exact range [U]", confirmed=False),
    subscales=(
        Subscale(
            "cadss6",
            "CADSS-6 short form (items 1, 2, 6, 7, 15, 22)",
            CADSS6_ITEMS,
            SubscaleMethod.SUM,
            0,
            24,
            "clinical.md §8 (item list); range derived 6×4 [U]",
            confirmed=False,
        ),
    ),
    flag_rules=(
        FlagRule(
            "cadss_dissociation_present",
            FlagKind.DISSOCIATION,
            "CADSS total above the presence threshold (default >4) → dissociation present",
            "clinical.md §8: no validated cut-off; presence threshold '>4' [U]; setting "
            "cadss_presence_threshold",
            confirmed=False,
        ),
    ),
    notes=(
        "No validated severity cut-off or bands (clinical.md §8).",
        "LOINC codes: none found (interop.md §1.6 ⚠); use a local code system.",
        _CADSS_TITLES_NOTE,
        "The reference gives no CADSS change-from-baseline rule.",
    ),
)

CADSS6: Final = Instrument(
    code="cadss6",
    name="CADSS-6",
    version="1",
    form="CADSS 6-item short form (items 1, 2, 6, 7, 15, 22 of the 23-item version)",
    source=_CADSS_SOURCE,
    items=tuple(Item(n, f"CADSS item {n}", 0, 4) for n in CADSS6_ITEMS),
    score_range=ScoreRange(0, 24, "derived 6×4 from clinical.md §8 [U]", confirmed=False),
    notes=(
        "Item ids keep the 23-item numbering (1, 2, 6, 7, 15, 22).",
        "No cut-off or bands in the reference; the CADSS >4 presence threshold is stated for the full "
        "scale only and is not applied to the short form.",
        _CADSS_TITLES_NOTE,
    ),
)

_CSSRS_SOURCE = "clinical.md §8 (NINDS CDE page; docest.com screener text; documentine scoring guide)"
_CSSRS_NO_TEXT = (
    "Wording differs between screener versions; load the version the clinic uses with with_item_texts."
)

CSSRS_SCREEN: Final = Instrument(
    code="cssrs-screen",
    name="C-SSRS Screener",
    version="2",
    form="Columbia-Suicide Severity Rating Scale, screener (6 yes/no items)",
    source=_CSSRS_SOURCE,
    total_rule=TotalRule.NONE,
    recall_period="item 6: lifetime, then past 3 months (clinical.md §8); items 1–5: as printed on the "
    "screener version in use",
    items=(
        Item(
            "1",
            "Wish to be dead",
            0,
            1,
            text="Have you wished you were dead or wished you could go to sleep and not wake up?",
        ),
        Item(
            "2",
            "Non-specific active suicidal thoughts",
            0,
            1,
            text="Have you actually had any thoughts of killing yourself?",
        ),
        Item(
            "3",
            "Suicidal thoughts with method",
            0,
            1,
            text="Have you been thinking about how you might do this?",
            asked_if=("2", 1),
        ),
        Item(
            "4",
            "Suicidal intent without specific plan",
            0,
            1,
            text="Have you had these thoughts and had some intention of acting on them?",
            asked_if=("2", 1),
        ),
        Item(
            "5",
            "Suicidal intent with specific plan",
            0,
            1,
            asked_if=("2", 1),
            note=_CSSRS_NO_TEXT,
        ),
        Item(
            "6",
            "Suicidal behavior (lifetime)",
            0,
            1,
            text="Have you ever done anything, started to do anything, or prepared to do anything to end "
            "your life?",
            note="The form's list of examples is not stored.",
        ),
        Item(
            "6_recent",
            "Item 6 behavior within the past 3 months",
            0,
            1,
            asked_if=("6", 1),
            note="1 = within the past 3 months, 0 = longer ago. " + _CSSRS_NO_TEXT,
        ),
    ),
    text_source="C-SSRS screener (Columbia University), question sentences of items 1–4 and 6; item 5 "
    "and the item-6 follow-up are not stored",
    flag_rules=(
        FlagRule(
            "cssrs_suicide_risk",
            FlagKind.SUICIDALITY,
            "C-SSRS screener: any yes answer → suicidality flag with its triage level (items 1–2 only → low: "
            "suicidal ideation, a clinician reviews it the same day; item 3 → moderate; item 4 or 5 → high; "
            "item 6 within 3 months → high, longer ago → moderate)",
            CSSRS_TRIAGE_SOURCE + "; items 1–2 are suicidal ideation (wish to be dead, non-specific active "
            "suicidal thoughts, clinical.md §8); flagging low triage for same-day review is clinic policy, "
            "unconfirmed",
            confirmed=False,
        ),
    ),
    notes=(
        "Items 3–5 are asked only when item 2 is yes; the item-6 follow-up only when item 6 is yes. "
        "Skipped items may be left out or given as 0.",
        "No total: the result is the triage level (risk). The reference does not name the level for no "
        "yes answers; ketaclinic reports 'none'.",
        "Yes/no answers: 1 = yes, 0 = no.",
        "Version 2: any yes answer raises the suicidality flag, low triage included (version 1 flagged "
        "moderate and high only).",
    ),
)
