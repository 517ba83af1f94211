"""Depression, anxiety and mania scales: PHQ-9, GAD-7, MADRS, QIDS-SR16, YMRS (clinical.md §8).

Item wording is stored only where it is certain word for word (PHQ-9, GAD-7). MADRS and YMRS carry short
item titles; QIDS-SR16 carries its published item headings but not its response statements. A clinic loads
the wording of its own copy of a form with ``registry.with_item_texts``.
"""

from __future__ import annotations

from typing import Final

from .common import DEPRESSION_RESPONSE, numbered_items
from .model import (
    Band,
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

# PHQ-9 and GAD-7 share the 0–3 frequency answers (clinical.md §8: "not at all"…"nearly every day").
# LOINC answer codes from interop.md §1.6; the US Core example confirms the first three only.
_FREQ_SOURCE = "interop.md §1.6 (US Core QuestionnaireResponse-phq-9-example confirms the first three)"
PHQ_FREQUENCY_OPTIONS: Final = (
    ResponseOption(0, "Not at all", LoincCode("LA6568-5", "Not at all", source=_FREQ_SOURCE)),
    ResponseOption(1, "Several days", LoincCode("LA6569-3", "Several days", source=_FREQ_SOURCE)),
    ResponseOption(
        2, "More than half the days", LoincCode("LA6570-1", "More than half the days", source=_FREQ_SOURCE)
    ),
    ResponseOption(
        3,
        "Nearly every day",
        LoincCode("LA6571-9", "Nearly every day", confirmed=False, source=_FREQ_SOURCE),
    ),
)

_PHQ_TEXT_SOURCE = (
    "PHQ-9 form (Pfizer; free to reproduce, translate, display and distribute) as carried by the LOINC "
    "items of panel 44249-1; punctuation differs slightly between printings"
)

PHQ9: Final = Instrument(
    code="phq9",
    name="PHQ-9",
    version="1",
    form="Patient Health Questionnaire-9 (Kroenke, Spitzer & Williams 2001)",
    source="clinical.md §8 (Kroenke 2001)",
    recall_period="last 2 weeks",
    items=numbered_items(
        (
            "Little interest or pleasure",
            "Feeling down, depressed or hopeless",
            "Sleep trouble",
            "Tired, little energy",
            "Poor appetite or overeating",
            "Feeling bad about yourself",
            "Trouble concentrating",
            "Moving or speaking slowly, or restless",
            "Thoughts of being better off dead or of self-harm",
        ),
        0,
        3,
        texts=(
            "Little interest or pleasure in doing things",
            "Feeling down, depressed, or hopeless",
            "Trouble falling or staying asleep, or sleeping too much",
            "Feeling tired or having little energy",
            "Poor appetite or overeating",
            "Feeling bad about yourself - or that you are a failure or have let yourself or your family down",
            "Trouble concentrating on things, such as reading the newspaper or watching television",
            "Moving or speaking so slowly that other people could have noticed. Or the opposite - being so "
            "fidgety or restless that you have been moving around a lot more than usual",
            "Thoughts that you would be better off dead, or of hurting yourself in some way",
        ),
        loinc=(
            "44250-9",
            "44255-8",
            "44259-0",
            "44254-1",
            "44251-7",
            "44258-2",
            "44252-5",
            "44253-3",
            "44260-8",
        ),
        options=PHQ_FREQUENCY_OPTIONS,
    ),
    text_source=_PHQ_TEXT_SOURCE,
    score_range=ScoreRange(0, 27, "clinical.md §8"),
    bands=(
        Band("Minimal", 0, 4, "clinical.md §8 (Kroenke 2001)"),
        Band("Mild", 5, 9, "clinical.md §8 (Kroenke 2001)"),
        Band("Moderate", 10, 14, "clinical.md §8 (Kroenke 2001)"),
        Band("Moderately severe", 15, 19, "clinical.md §8 (Kroenke 2001)"),
        Band("Severe", 20, 27, "clinical.md §8 (Kroenke 2001)"),
    ),
    flag_rules=(
        FlagRule(
            "phq9_item9_suicidality",
            FlagKind.SUICIDALITY,
            "PHQ-9 item 9 (thoughts of being better off dead or of self-harm) above 0 → follow up "
            "immediately, whatever the total",
            "clinical.md §8 (Kroenke 2001); interop.md §1.6 (44260-8 → safety escalation)",
        ),
        FlagRule(
            "phq9_total_ge_10",
            FlagKind.SCREEN,
            "PHQ-9 total ≥10 → at or above the cut-off for major depression (sensitivity 88%, "
            "specificity 88%)",
            "clinical.md §8 (Kroenke 2001)",
        ),
    ),
    change_rules=(
        DEPRESSION_RESPONSE,
        ChangeRule(
            code="remission",
            label="Remission: total below 5",
            kind=ChangeKind.CURRENT_BELOW,
            threshold=5,
            source="clinical.md §0 (McInnes 2022, doi 10.1016/j.jad.2021.12.097: 'drop to <5'); "
            "Hull 2022's own threshold is [U] and is not used",
        ),
    ),
    loinc_panel=LoincCode("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
    loinc_total=LoincCode("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    notes=("The unscored difficulty question has LOINC 69722-7 (interop.md §1.6); it is not an item here.",),
)

GAD7: Final = Instrument(
    code="gad7",
    name="GAD-7",
    version="1",
    form="Generalized Anxiety Disorder-7 (Spitzer et al. 2006)",
    source="clinical.md §8 (Spitzer 2006)",
    recall_period="last 2 weeks",
    items=numbered_items(
        (
            "Nervous, anxious or on edge",
            "Cannot stop or control worrying",
            "Worrying too much",
            "Trouble relaxing",
            "Restless",
            "Easily annoyed or irritable",
            "Afraid something awful might happen",
        ),
        0,
        3,
        texts=(
            "Feeling nervous, anxious, or on edge",
            "Not being able to stop or control worrying",
            "Worrying too much about different things",
            "Trouble relaxing",
            "Being so restless that it is hard to sit still",
            "Becoming easily annoyed or irritable",
            "Feeling afraid, as if something awful might happen",
        ),
        # interop.md §1.6 lists the item codes in item order (loinc.org/69729-2).
        loinc=("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
        options=tuple(ResponseOption(o.value, o.label) for o in PHQ_FREQUENCY_OPTIONS),
    ),
    text_source="GAD-7 form (Pfizer; free to reproduce) as carried by the LOINC items listed in "
    "interop.md §1.6; punctuation differs slightly between printings",
    score_range=ScoreRange(0, 21, "clinical.md §8"),
    bands=(
        # clinical.md §8 gives the cut-points 5/10/15 = mild/moderate/severe; the 0–4 label is not named
        # there and "Minimal" is our wording.
        Band("Minimal", 0, 4, "clinical.md §8 (below the mild cut-point 5; label ours)"),
        Band("Mild", 5, 9, "clinical.md §8 (Spitzer 2006)"),
        Band("Moderate", 10, 14, "clinical.md §8 (Spitzer 2006)"),
        Band("Severe", 15, 21, "clinical.md §8 (Spitzer 2006)"),
    ),
    flag_rules=(
        FlagRule(
            "gad7_total_ge_10",
            FlagKind.SCREEN,
            "GAD-7 total ≥10 → further evaluation (GAD sensitivity 89%, specificity 82%)",
            "clinical.md §8 (Spitzer 2006)",
        ),
    ),
    change_rules=(
        ChangeRule(
            code="response",
            label="Response: reduction from baseline of at least the configured percentage",
            kind=ChangeKind.REDUCTION_PCT_AT_LEAST,
            threshold=None,
            source="not in the reference (clinical.md §3.3: Hull 2022 reports GAD-7 response without "
            "the definition)",
            confirmed=False,
            option="gad7_response_min_reduction_pct",
        ),
        ChangeRule(
            code="remission",
            label="Remission: total below the configured value",
            kind=ChangeKind.CURRENT_BELOW,
            threshold=None,
            source="not in the reference (clinical.md §3.3: Hull 2022 reports GAD-7 remission without "
            "the definition)",
            confirmed=False,
            option="gad7_remission_below",
        ),
    ),
    loinc_panel=LoincCode("69737-5", "GAD-7"),
    loinc_total=LoincCode("70274-6", "GAD-7 total score [Reported.PHQ]"),
)

_MADRS_SOURCE = "clinical.md §8 (MADRS manual text; Snaith bands)"

MADRS: Final = Instrument(
    code="madrs",
    name="MADRS",
    version="2",
    form="Montgomery–Åsberg Depression Rating Scale, 10 clinician-rated items",
    source=_MADRS_SOURCE,
    items=numbered_items(
        (
            "Apparent sadness",
            "Reported sadness",
            "Inner tension",
            "Reduced sleep",
            "Reduced appetite",
            "Concentration difficulties",
            "Lassitude",
            "Inability to feel",
            "Pessimistic thoughts",
            "Suicidal thoughts",
        ),
        0,
        6,
    ),
    score_range=ScoreRange(0, 60, "clinical.md §8"),
    bands=(
        Band("Normal", 0, 6, _MADRS_SOURCE),
        Band("Mild", 7, 19, _MADRS_SOURCE),
        Band("Moderate", 20, 34, _MADRS_SOURCE),
        Band("Severe", 35, 60, _MADRS_SOURCE),
    ),
    change_rules=(
        DEPRESSION_RESPONSE,
        ChangeRule(
            code="remission",
            label="Remission: total at or below 10 (default) or 12 (setting madrs_remission_max)",
            kind=ChangeKind.CURRENT_AT_MOST,
            threshold=10,
            source="clinical.md §0 (≤10 ESCAPE-TRD, KetECT; ≤12 TRANSFORM esketamine trials)",
            option="madrs_remission_max",
        ),
    ),
    flag_rules=(
        FlagRule(
            "madrs_item10_suicidality",
            FlagKind.SUICIDALITY,
            "MADRS item 10 (suicidal thoughts) above the clinic threshold (default 0: any answer above 0) "
            "→ follow up on suicidality",
            "item 10 is 'Suicidal thoughts', 0–6 (clinical.md §8, MADRS manual text); the reference gives no "
            "item-10 cut-off, so any answer above 0 is flagged by default, as for PHQ-9 item 9 (clinical.md "
            "§8: >0 needs immediate follow-up); setting madrs_item10_flag_above (clinic default, unconfirmed)",
            confirmed=False,
        ),
    ),
    notes=(
        "LOINC codes: none found (interop.md §1.6 ⚠); use a local code system.",
        "Alternative bandings in the reference (12/24/35; 31 moderate/severe, Müller 2003) are not "
        "encoded; the Snaith bands are used.",
        "Version 2: item 10 (suicidal thoughts) raises a suicidality flag (version 1 raised none).",
    ),
)

_QIDS_SOURCE = "clinical.md §8 (Rush 2003; ids-qids.org)"


def _qids_domain(key: str, label: str, items: tuple[str, ...]) -> Subscale:
    method = SubscaleMethod.MAX if len(items) > 1 else SubscaleMethod.SUM
    return Subscale(key, label, items, method, 0, 3, _QIDS_SOURCE)


QIDS_SR16: Final = Instrument(
    code="qids-sr16",
    name="QIDS-SR16",
    version="1",
    form="Quick Inventory of Depressive Symptomatology, Self-Report, 16 items (Rush 2003)",
    source=_QIDS_SOURCE,
    total_rule=TotalRule.SUM_SUBSCALES,
    items=numbered_items(
        (
            "Falling asleep",
            "Sleep during the night",
            "Waking up too early",
            "Sleeping too much",
            "Feeling sad",
            "Decreased appetite",
            "Increased appetite",
            "Decreased weight (within the last two weeks)",
            "Increased weight (within the last two weeks)",
            "Concentration/decision making",
            "View of myself",
            "Thoughts of death or suicide",
            "General interest",
            "Energy level",
            "Feeling slowed down",
            "Feeling restless",
        ),
        0,
        3,
    ),
    score_range=ScoreRange(0, 27, "clinical.md §8"),
    subscales=(
        _qids_domain("sleep", "Sleep (max of items 1–4)", ("1", "2", "3", "4")),
        _qids_domain("sad_mood", "Sad mood (item 5)", ("5",)),
        _qids_domain("appetite_weight", "Appetite/weight (max of items 6–9)", ("6", "7", "8", "9")),
        _qids_domain("concentration", "Concentration (item 10)", ("10",)),
        _qids_domain("self_view", "View of self (item 11)", ("11",)),
        _qids_domain("suicidal_ideation", "Thoughts of death or suicide (item 12)", ("12",)),
        _qids_domain("interest", "General interest (item 13)", ("13",)),
        _qids_domain("energy", "Energy (item 14)", ("14",)),
        _qids_domain("psychomotor", "Psychomotor (max of items 15–16)", ("15", "16")),
    ),
    bands=(
        Band("None", 0, 5, _QIDS_SOURCE),
        Band("Mild", 6, 10, _QIDS_SOURCE),
        Band("Moderate", 11, 15, _QIDS_SOURCE),
        Band("Severe", 16, 20, _QIDS_SOURCE),
        Band("Very severe", 21, 27, _QIDS_SOURCE),
    ),
    flag_rules=(
        FlagRule(
            "qids_item12_suicidality",
            FlagKind.SUICIDALITY,
            "QIDS-SR16 item 12 (thoughts of death or suicide) above 0 → follow up",
            "item 12 is the suicidality domain (clinical.md §8, Rush 2003); the reference gives no item-12 "
            "cut-off, so any answer above 0 is flagged, as for PHQ-9 item 9",
            confirmed=False,
        ),
    ),
    change_rules=(
        DEPRESSION_RESPONSE,
        ChangeRule(
            code="remission",
            label="Remission: total at or below 5",
            kind=ChangeKind.CURRENT_AT_MOST,
            threshold=5,
            source="clinical.md §0 (ELEKT-D / CRTCE, McIntyre 2020; Trivedi 2006)",
        ),
    ),
    notes=(
        "Item titles are the published item headings; the response statements are not stored. Load them "
        "from the clinic's copy of the form with with_item_texts(..., option_labels=...).",
        "Recall period: not stated in the reference.",
    ),
)

_YMRS_SOURCE = "clinical.md §8 (Young 1978; banding varies by source)"


def _ymrs_item(n: int, title: str) -> Item:
    # clinical.md §8: items 5, 6, 8, 9 are scored 0–8, the other seven 0–4.
    high = 8 if n in (5, 6, 8, 9) else 4
    return Item(str(n), title, 0, high)


YMRS: Final = Instrument(
    code="ymrs",
    name="YMRS",
    version="1",
    form="Young Mania Rating Scale, 11 items (Young 1978)",
    source="clinical.md §8 (Young 1978)",
    recall_period="48 hours, plus interview",
    items=tuple(
        _ymrs_item(n, title)
        for n, title in enumerate(
            (
                "Elevated mood",
                "Increased motor activity–energy",
                "Sexual interest",
                "Sleep",
                "Irritability",
                "Speech (rate and amount)",
                "Language–thought disorder",
                "Content",
                "Disruptive–aggressive behavior",
                "Appearance",
                "Insight",
            ),
            start=1,
        )
    ),
    score_range=ScoreRange(0, 60, "clinical.md §8"),
    bands=(
        Band("Remission/minimal", 0, 12, _YMRS_SOURCE),
        Band("Minimal/mild", 13, 19, _YMRS_SOURCE),
        Band("Mild–moderate", 20, 25, _YMRS_SOURCE),
        Band("Moderate", 26, 37, _YMRS_SOURCE),
        Band("Severe", 38, 60, _YMRS_SOURCE),
    ),
    flag_rules=(
        FlagRule(
            "ymrs_possible_mania",
            FlagKind.MANIA,
            "YMRS total above the clinic threshold (default 12) → possible mania; review before dosing",
            "clinical.md §5.2: no guideline hold/stop cut-off ([U]); default 12 = top of the "
            "'≤12 remission/minimal' band (clinical.md §8); setting ymrs_mania_threshold",
            confirmed=False,
        ),
    ),
    notes=("The reference gives no YMRS change-from-baseline rule.",),
)
