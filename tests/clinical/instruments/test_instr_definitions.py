"""The instrument definitions themselves: items, ranges, bands, codes, sources, settings, wording."""

from __future__ import annotations

import dataclasses

import pytest

from ketaclinic.clinical.instruments import (
    INSTRUMENTS,
    SETTINGS,
    InstrumentInputError,
    InstrumentOptions,
    UnknownInstrumentError,
    get_instrument,
    with_item_texts,
)
from ketaclinic.clinical.instruments.model import TotalRule

CLI_CODES = [
    "phq9",
    "gad7",
    "madrs",
    "qids-sr16",
    "pcl5",
    "cadss",
    "cadss6",
    "ymrs",
    "cssrs-screen",
    "bprs-positive",
    "pain-nrs",
    "bpi-sf",
    "moaas",
]


def test_registry_has_exactly_the_cli_codes() -> None:
    assert list(INSTRUMENTS) == CLI_CODES
    for code, instrument in INSTRUMENTS.items():
        assert instrument.code == code


def test_unknown_code_is_a_clear_error() -> None:
    with pytest.raises(UnknownInstrumentError) as info:
        get_instrument("phq10")
    assert "Unknown rating scale 'phq10'" in str(info.value)
    assert "phq9" in str(info.value)


# (code, number of items, {item range: count}, score range) — from clinical.md §8.
SHAPES = [
    ("phq9", 9, {(0, 3): 9}, (0, 27)),
    ("gad7", 7, {(0, 3): 7}, (0, 21)),
    ("madrs", 10, {(0, 6): 10}, (0, 60)),
    ("qids-sr16", 16, {(0, 3): 16}, (0, 27)),
    ("pcl5", 20, {(0, 4): 20}, (0, 80)),
    ("cadss", 23, {(0, 4): 23}, (0, 92)),
    ("cadss6", 6, {(0, 4): 6}, (0, 24)),
    ("ymrs", 11, {(0, 4): 7, (0, 8): 4}, (0, 60)),
    ("cssrs-screen", 7, {(0, 1): 7}, None),
    ("bprs-positive", 4, {(1, 7): 4}, (4, 28)),
    ("pain-nrs", 1, {(0, 10): 1}, (0, 10)),
    ("bpi-sf", 11, {(0, 10): 11}, None),
    ("moaas", 1, {(0, 5): 1}, (0, 5)),
]


@pytest.mark.parametrize(("code", "n", "ranges", "score_range"), SHAPES)
def test_item_counts_ranges_and_score_range(
    code: str, n: int, ranges: dict[tuple[int, int], int], score_range: tuple[int, int] | None
) -> None:
    instrument = INSTRUMENTS[code]
    assert len(instrument.items) == n
    seen: dict[tuple[int, int], int] = {}
    for item in instrument.items:
        seen[(item.low, item.high)] = seen.get((item.low, item.high), 0) + 1
    assert seen == ranges
    rng = instrument.score_range
    assert (None if rng is None else (rng.low, rng.high)) == score_range
    assert len(set(instrument.item_ids)) == n  # ids are unique


def test_ymrs_items_5_6_8_9_are_scored_0_to_8() -> None:
    highs = {i.id: i.high for i in INSTRUMENTS["ymrs"].items}
    assert [k for k, v in highs.items() if v == 8] == ["5", "6", "8", "9"]


def test_cadss6_keeps_the_23_item_numbering() -> None:
    assert INSTRUMENTS["cadss6"].item_ids == ("1", "2", "6", "7", "15", "22")
    assert INSTRUMENTS["cadss"].subscale("cadss6").items == ("1", "2", "6", "7", "15", "22")


def test_ranges_the_reference_marks_derived_or_unconfirmed() -> None:
    cadss, cadss6 = INSTRUMENTS["cadss"], INSTRUMENTS["cadss6"]
    assert cadss.score_range is not None and cadss.score_range.confirmed is False
    assert cadss6.score_range is not None and cadss6.score_range.confirmed is False
    assert cadss.subscale("cadss6").confirmed is False
    phq9 = INSTRUMENTS["phq9"]
    assert phq9.score_range is not None and phq9.score_range.confirmed is True


@pytest.mark.parametrize("code", CLI_CODES)
def test_bands_are_contiguous_and_cover_the_score_range(code: str) -> None:
    instrument = INSTRUMENTS[code]
    if not instrument.bands:
        return
    rng = instrument.score_range
    assert rng is not None
    assert instrument.bands[0].low == rng.low
    assert instrument.bands[-1].high == rng.high
    for lower, upper in zip(instrument.bands, instrument.bands[1:], strict=False):
        assert upper.low == lower.high + 1


def test_scales_without_bands_in_the_reference_have_none() -> None:
    # clinical.md §8: PCL-5 "no empirical severity bands"; CADSS "no validated severity cut-off";
    # BPRS+ "no standard cut-off"; NRS/BPI/MOAA/S/C-SSRS list none.
    for code in ("pcl5", "cadss", "cadss6", "bprs-positive", "pain-nrs", "bpi-sf", "moaas", "cssrs-screen"):
        assert INSTRUMENTS[code].bands == ()


@pytest.mark.parametrize("code", CLI_CODES)
def test_every_fact_has_a_source(code: str) -> None:
    instrument = INSTRUMENTS[code]
    assert instrument.source
    sources = [
        *(b.source for b in instrument.bands),
        *(s.source for s in instrument.subscales),
        *(r.source for r in instrument.flag_rules),
        *(r.source for r in instrument.change_rules),
    ]
    if instrument.score_range is not None:
        sources.append(instrument.score_range.source)
    assert all(sources)


@pytest.mark.parametrize("code", CLI_CODES)
def test_subscales_and_rules_refer_to_real_items_and_settings(code: str) -> None:
    instrument = INSTRUMENTS[code]
    ids = set(instrument.item_ids)
    for sub in instrument.subscales:
        assert set(sub.items) <= ids
    option_names = {f.name for f in dataclasses.fields(InstrumentOptions)}
    measures = {"total", *(s.key for s in instrument.subscales)}
    for rule in instrument.change_rules:
        assert rule.measure in measures
        if rule.option is not None:
            assert rule.option in option_names
        if rule.flag_kind is not None:
            assert rule.code in {f.code for f in instrument.flag_rules}
    for item in instrument.items:
        if item.asked_if is not None:
            assert item.asked_if[0] in ids


def test_qids_total_is_the_sum_of_nine_domains() -> None:
    qids = INSTRUMENTS["qids-sr16"]
    assert qids.total_rule is TotalRule.SUM_SUBSCALES
    domains = {s.key: s.items for s in qids.subscales}
    assert domains == {
        "sleep": ("1", "2", "3", "4"),
        "sad_mood": ("5",),
        "appetite_weight": ("6", "7", "8", "9"),
        "concentration": ("10",),
        "self_view": ("11",),
        "suicidal_ideation": ("12",),
        "interest": ("13",),
        "energy": ("14",),
        "psychomotor": ("15", "16"),
    }


def test_pcl5_clusters() -> None:
    pcl5 = INSTRUMENTS["pcl5"]
    clusters = {s.key: (s.items[0], s.items[-1], s.high) for s in pcl5.subscales}
    # B 1–5 (5 items × 4 = 20), C 6–7 (8), D 8–14 (28), E 15–20 (24)
    assert clusters == {
        "cluster_b": ("1", "5", 20),
        "cluster_c": ("6", "7", 8),
        "cluster_d": ("8", "14", 28),
        "cluster_e": ("15", "20", 24),
    }


def test_loinc_codes_from_interop_1_6() -> None:
    phq9, gad7, pcl5 = INSTRUMENTS["phq9"], INSTRUMENTS["gad7"], INSTRUMENTS["pcl5"]
    assert phq9.loinc_panel is not None and phq9.loinc_panel.code == "44249-1"
    assert phq9.loinc_total is not None and phq9.loinc_total.code == "44261-6"
    assert [i.loinc.code for i in phq9.items if i.loinc] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    assert gad7.loinc_panel is not None and gad7.loinc_panel.code == "69737-5"
    assert gad7.loinc_total is not None and gad7.loinc_total.code == "70274-6"
    assert gad7.items[5].loinc is not None and gad7.items[5].loinc.code == "69689-8"
    assert pcl5.loinc_panel is not None and pcl5.loinc_panel.code == "101697-1"
    assert pcl5.loinc_total is not None and pcl5.loinc_total.code == "101698-9"
    # interop.md §1.6: only the first three PHQ answer codes are confirmed by the US Core example.
    answers = [o.loinc_answer for o in phq9.items[0].options]
    assert [(a.code, a.confirmed) for a in answers if a] == [
        ("LA6568-5", True),
        ("LA6569-3", True),
        ("LA6570-1", True),
        ("LA6571-9", False),
    ]
    for code in ("madrs", "cadss"):
        assert INSTRUMENTS[code].loinc_panel is None and INSTRUMENTS[code].loinc_total is None


def test_wording_is_stored_only_for_the_public_forms() -> None:
    for code in ("phq9", "gad7", "pcl5"):
        assert all(i.text for i in INSTRUMENTS[code].items), code
        assert INSTRUMENTS[code].text_source
    assert INSTRUMENTS["phq9"].items[8].text == (
        "Thoughts that you would be better off dead, or of hurting yourself in some way"
    )
    for code in ("madrs", "cadss", "cadss6", "ymrs", "bprs-positive", "bpi-sf", "qids-sr16"):
        assert all(i.text is None for i in INSTRUMENTS[code].items), code
        assert all(i.title for i in INSTRUMENTS[code].items), code
    cssrs = {i.id: i.text for i in INSTRUMENTS["cssrs-screen"].items}
    assert cssrs["2"] == "Have you actually had any thoughts of killing yourself?"
    assert cssrs["5"] is None and cssrs["6_recent"] is None  # not certain word for word


def test_with_item_texts_loads_a_clinic_copy_without_touching_the_registry() -> None:
    madrs = INSTRUMENTS["madrs"]
    loaded = with_item_texts(madrs, {"1": "Clinic wording for item 1"}, source="Clinic MADRS copy 2025")
    assert loaded.item("1").text == "Clinic wording for item 1"
    assert loaded.item("2").text is None
    assert loaded.text_source == "Clinic MADRS copy 2025"
    assert INSTRUMENTS["madrs"].item("1").text is None
    qids = with_item_texts(
        INSTRUMENTS["qids-sr16"], {}, source="Clinic QIDS copy", option_labels={"1": {0: "a", 3: "d"}}
    )
    assert [(o.value, o.label) for o in qids.item("1").options] == [(0, "a"), (3, "d")]
    # Existing labels are kept and only the given ones replaced.
    phq9 = with_item_texts(INSTRUMENTS["phq9"], {}, source="x", option_labels={"1": {0: "Nunca"}})
    labels = [o.label for o in phq9.item("1").options]
    assert labels == ["Nunca", "Several days", "More than half the days", "Nearly every day"]
    assert phq9.item("1").options[0].loinc_answer is not None


def test_with_item_texts_reports_every_problem() -> None:
    with pytest.raises(InstrumentInputError) as info:
        with_item_texts(
            INSTRUMENTS["madrs"],
            {"11": "x", "2": "  "},
            source=" ",
            option_labels={"3": {7: "too high"}},
        )
    assert info.value.errors == {
        "source": "source: name the form the wording comes from",
        "11": "item 11: not an item of MADRS",
        "2": "item 2: wording is empty",
        "3:options": "item 3: answer values [7] are outside 0–6",
    }


def test_settings_describe_every_option_with_its_default() -> None:
    defaults = InstrumentOptions()
    names = [f.name for f in dataclasses.fields(InstrumentOptions)]
    assert [s.name for s in SETTINGS] == names
    for setting in SETTINGS:
        assert setting.default == getattr(defaults, setting.name), setting.name
        assert setting.source
    unconfirmed = {s.name for s in SETTINGS if not s.confirmed}
    assert unconfirmed == {
        "ymrs_mania_threshold",
        "cadss_presence_threshold",
        "gad7_response_min_reduction_pct",
        "gad7_remission_below",
        "cssrs_triage",
        "madrs_item10_flag_above",
    }


def test_options_report_every_bad_setting_at_once() -> None:
    with pytest.raises(InstrumentInputError) as info:
        InstrumentOptions(
            ymrs_mania_threshold=-1,
            pcl5_cutpoint=30,
            pcl5_reliable_change_points=11,
            pcl5_meaningful_change_points=9,
            cadss_presence_threshold=92,
            madrs_remission_max=11,  # type: ignore[arg-type]
            gad7_response_min_reduction_pct=0,
            gad7_remission_below=22,
            madrs_item10_flag_above=6,
        )
    assert set(info.value.errors) == {
        "ymrs_mania_threshold",
        "pcl5_cutpoint",
        "pcl5_reliable_change_points",
        "pcl5_meaningful_change_points",
        "cadss_presence_threshold",
        "madrs_remission_max",
        "gad7_response_min_reduction_pct",
        "gad7_remission_below",
        "madrs_item10_flag_above",
    }
    assert "item 10 is scored 0–6" in info.value.errors["madrs_item10_flag_above"]
    assert info.value.errors["pcl5_cutpoint"] == (
        "PCL-5 cut-point 30 is outside the published 31–33 (clinical.md §8)"
    )
    # Edges that are allowed.
    InstrumentOptions(pcl5_cutpoint=31, pcl5_reliable_change_points=10, pcl5_meaningful_change_points=20)
