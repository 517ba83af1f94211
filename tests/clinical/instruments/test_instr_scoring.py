"""score(): totals, every band edge on both sides, subscores and every flag, with hand-computed values."""

from __future__ import annotations

import pytest

from ketaclinic.clinical.instruments import (
    INSTRUMENTS,
    CssrsRisk,
    CssrsTriage,
    FlagKind,
    InstrumentOptions,
    score,
    score_values,
)


def answers_for_total(code: str, total: int) -> dict[str, int]:
    """Answers whose total is ``total``: fill items in order, each up to its maximum."""
    instrument = INSTRUMENTS[code]
    # QIDS-SR16 counts one value per domain, so fill only the first item of each domain.
    if code == "qids-sr16":
        fill = [s.items[0] for s in instrument.subscales]
    else:
        fill = list(instrument.item_ids)
    answers = {item.id: item.low for item in instrument.items}
    left = total - sum(answers.values())
    for item_id in fill:
        item = instrument.item(item_id)
        add = min(item.high - item.low, left)
        answers[item_id] += add
        left -= add
    assert left == 0, f"{code}: cannot reach {total}"
    return answers


def flag_codes(code: str, answers: dict[str, int], options: InstrumentOptions | None = None) -> set[str]:
    return {f.code for f in score(code, answers, options=options).flags}


# Totals on both sides of every band edge (clinical.md §8), written out by hand.
BAND_EDGES = {
    "phq9": [
        (0, "Minimal"),
        (4, "Minimal"),
        (5, "Mild"),
        (9, "Mild"),
        (10, "Moderate"),
        (14, "Moderate"),
        (15, "Moderately severe"),
        (19, "Moderately severe"),
        (20, "Severe"),
        (27, "Severe"),
    ],
    "gad7": [
        (0, "Minimal"),
        (4, "Minimal"),
        (5, "Mild"),
        (9, "Mild"),
        (10, "Moderate"),
        (14, "Moderate"),
        (15, "Severe"),
        (21, "Severe"),
    ],
    "madrs": [
        (0, "Normal"),
        (6, "Normal"),
        (7, "Mild"),
        (19, "Mild"),
        (20, "Moderate"),
        (34, "Moderate"),
        (35, "Severe"),
        (60, "Severe"),
    ],
    "qids-sr16": [
        (0, "None"),
        (5, "None"),
        (6, "Mild"),
        (10, "Mild"),
        (11, "Moderate"),
        (15, "Moderate"),
        (16, "Severe"),
        (20, "Severe"),
        (21, "Very severe"),
        (27, "Very severe"),
    ],
    "ymrs": [
        (0, "Remission/minimal"),
        (12, "Remission/minimal"),
        (13, "Minimal/mild"),
        (19, "Minimal/mild"),
        (20, "Mild–moderate"),
        (25, "Mild–moderate"),
        (26, "Moderate"),
        (37, "Moderate"),
        (38, "Severe"),
        (60, "Severe"),
    ],
}


@pytest.mark.parametrize(
    ("code", "total", "label"),
    [(code, total, label) for code, edges in BAND_EDGES.items() for total, label in edges],
)
def test_band_edges(code: str, total: int, label: str) -> None:
    result = score(code, answers_for_total(code, total))
    assert result.total == total
    assert result.band is not None
    assert result.band.label == label
    assert result.band.low <= total <= result.band.high


def test_phq9_total_and_result_fields() -> None:
    # 1+1+2+1+0+1+2+1+0 = 9
    result = score_values("phq9", [1, 1, 2, 1, 0, 1, 2, 1, 0])
    assert result.total == 9
    assert result.total_range == (0, 27)
    assert result.band is not None and (result.band.label, result.band.low, result.band.high) == (
        "Mild",
        5,
        9,
    )
    assert result.version == "1"
    assert result.flags == ()
    assert result.answers["3"] == 2


def test_phq9_item9_flag_only_when_item9_above_zero() -> None:
    base = {str(i): 3 for i in range(1, 9)}  # items 1–8 = 3 → 24
    assert "phq9_item9_suicidality" not in flag_codes("phq9", {**base, "9": 0})
    low = {str(i): 0 for i in range(1, 9)}
    result = score("phq9", {**low, "9": 1})  # total 1: flag even at the lowest total
    assert [f.code for f in result.flags] == ["phq9_item9_suicidality"]
    flag = result.flags[0]
    assert flag.kind is FlagKind.SUICIDALITY and flag.is_safety and flag.confirmed
    assert "item 9 is 1" in flag.text
    assert "Kroenke 2001" in flag.source
    assert result.suicidality


def test_phq9_screen_flag_at_10_not_9() -> None:
    assert "phq9_total_ge_10" not in flag_codes("phq9", answers_for_total("phq9", 9))
    assert "phq9_total_ge_10" in flag_codes("phq9", answers_for_total("phq9", 10))


def test_gad7_further_evaluation_at_10_not_9() -> None:
    assert flag_codes("gad7", answers_for_total("gad7", 9)) == set()
    result = score("gad7", answers_for_total("gad7", 10))
    assert [f.code for f in result.flags] == ["gad7_total_ge_10"]
    assert result.flags[0].kind is FlagKind.SCREEN and not result.flags[0].is_safety


def test_madrs_total_and_no_flag_when_item10_is_0() -> None:
    # 10 items: 6+5+4+3+2+1+0+1+2+0 = 24 → Moderate (20–34)
    result = score_values("madrs", [6, 5, 4, 3, 2, 1, 0, 1, 2, 0])
    assert result.total == 24
    assert result.band is not None and result.band.label == "Moderate"
    assert result.flags == () and not result.suicidality


@pytest.mark.parametrize("item10", [1, 2, 6])
def test_madrs_item10_above_0_raises_a_suicidality_flag(item10: int) -> None:
    result = score_values("madrs", [0] * 9 + [item10])
    assert result.total == item10 and result.band is not None and result.band.label == "Normal"
    (flag,) = result.flags  # whatever the total: a normal-band total still flags item 10
    assert flag.code == "madrs_item10_suicidality" and flag.kind is FlagKind.SUICIDALITY
    assert flag.confirmed is False and "clinic default, unconfirmed" in flag.text
    assert f"is {item10} (above 0)" in flag.text
    assert result.version == "2"


def test_madrs_item10_threshold_is_a_clinic_setting() -> None:
    options = InstrumentOptions(madrs_item10_flag_above=2)
    assert score_values("madrs", [0] * 9 + [2], options=options).flags == ()
    (flag,) = score_values("madrs", [0] * 9 + [3], options=options).flags
    assert "is 3 (above 2)" in flag.text


def test_qids_total_uses_domain_maxima() -> None:
    values = [1, 3, 0, 2, 2, 0, 1, 2, 0, 1, 0, 1, 2, 3, 1, 2]
    result = score_values("qids-sr16", values)
    # sleep max(1,3,0,2)=3; mood 2; appetite/weight max(0,1,2,0)=2; concentration 1; self-view 0;
    # suicidality 1; interest 2; energy 3; psychomotor max(1,2)=2 → 3+2+2+1+0+1+2+3+2 = 16
    assert result.total == 16
    assert result.band is not None and result.band.label == "Severe"
    assert {k: s.value for k, s in result.subscores.items()} == {
        "sleep": 3,
        "sad_mood": 2,
        "appetite_weight": 2,
        "concentration": 1,
        "self_view": 0,
        "suicidal_ideation": 1,
        "interest": 2,
        "energy": 3,
        "psychomotor": 2,
    }
    # item 12 = 1 → suicidality flag (rule not confirmed in the reference)
    assert [f.code for f in result.flags] == ["qids_item12_suicidality"]
    assert result.flags[0].confirmed is False


def test_qids_no_flag_when_item12_is_zero() -> None:
    answers = {str(i): 3 for i in range(1, 17)}
    answers["12"] = 0
    result = score("qids-sr16", answers)
    assert result.total == 24  # 8 domains × 3 + 0
    assert result.flags == ()


def test_ymrs_mania_flag_default_threshold_12() -> None:
    assert flag_codes("ymrs", answers_for_total("ymrs", 12)) == set()
    result = score("ymrs", answers_for_total("ymrs", 13))
    assert [f.code for f in result.flags] == ["ymrs_possible_mania"]
    flag = result.flags[0]
    assert flag.kind is FlagKind.MANIA and flag.confirmed is False
    assert "above 12" in flag.text


def test_ymrs_mania_threshold_is_configurable() -> None:
    options = InstrumentOptions(ymrs_mania_threshold=20)
    assert flag_codes("ymrs", answers_for_total("ymrs", 20), options) == set()
    assert flag_codes("ymrs", answers_for_total("ymrs", 21), options) == {"ymrs_possible_mania"}


def test_ymrs_total_with_double_weighted_items() -> None:
    # items 1–11: 1,2,0,1,6,8,2,4,2,1,3 → 30 (items 5, 6, 8, 9 allow up to 8)
    result = score_values("ymrs", [1, 2, 0, 1, 6, 8, 2, 4, 2, 1, 3])
    assert result.total == 30
    assert result.band is not None and result.band.label == "Moderate"


def pcl5_answers(ratings: dict[int, int]) -> dict[str, int]:
    return {str(i): ratings.get(i, 0) for i in range(1, 21)}


def test_pcl5_clusters_and_total() -> None:
    # B: items 1–5 = 4,3,2,1,0 → 10; C: 6–7 = 2,2 → 4; D: 8–14 = 1×7 → 7; E: 15–20 = 0,0,0,0,3,3 → 6
    ratings = {1: 4, 2: 3, 3: 2, 4: 1, 6: 2, 7: 2, 19: 3, 20: 3}
    ratings.update({i: 1 for i in range(8, 15)})
    result = score("pcl5", pcl5_answers(ratings))
    assert result.total == 27  # 10 + 4 + 7 + 6
    assert result.band is None
    assert {k: s.value for k, s in result.subscores.items()} == {
        "cluster_b": 10,
        "cluster_c": 4,
        "cluster_d": 7,
        "cluster_e": 6,
    }
    # D has no item rated ≥2 → DSM-5 pattern not met; total 27 < 33 → no cut-point flag
    assert result.flags == ()
    assert any("DSM-5 pattern not met" in n for n in result.notes)


def test_pcl5_dsm5_pattern_minimum() -> None:
    # exactly 1 B, 1 C, 2 D, 2 E items at 2 → total 12, pattern met
    minimal = {1: 2, 6: 2, 8: 2, 9: 2, 15: 2, 16: 2}
    result = score("pcl5", pcl5_answers(minimal))
    assert result.total == 12
    assert [f.code for f in result.flags] == ["pcl5_dsm5_pattern"]
    assert "B 1, C 1, D 2, E 2" in result.flags[0].text


@pytest.mark.parametrize("drop", [1, 6, 9, 16])
def test_pcl5_dsm5_pattern_one_short_in_any_cluster(drop: int) -> None:
    minimal = {1: 2, 6: 2, 8: 2, 9: 2, 15: 2, 16: 2}
    minimal[drop] = 1  # a rating of 1 does not count as endorsed
    assert "pcl5_dsm5_pattern" not in flag_codes("pcl5", pcl5_answers(minimal))


def test_pcl5_all_items_at_1_is_not_endorsed() -> None:
    result = score("pcl5", pcl5_answers({i: 1 for i in range(1, 21)}))
    assert result.total == 20
    assert result.flags == ()


def test_pcl5_cutpoint_default_33_and_configurable() -> None:
    assert "pcl5_provisional_ptsd_cutpoint" not in flag_codes("pcl5", answers_for_total("pcl5", 32))
    assert "pcl5_provisional_ptsd_cutpoint" in flag_codes("pcl5", answers_for_total("pcl5", 33))
    options = InstrumentOptions(pcl5_cutpoint=31)
    assert "pcl5_provisional_ptsd_cutpoint" not in flag_codes("pcl5", answers_for_total("pcl5", 30), options)
    assert "pcl5_provisional_ptsd_cutpoint" in flag_codes("pcl5", answers_for_total("pcl5", 31), options)


def test_cadss_total_short_form_subscore_and_presence_flag() -> None:
    answers = {str(i): 0 for i in range(1, 24)}
    answers.update({"1": 1, "2": 2, "3": 1, "15": 1})
    result = score("cadss", answers)
    assert result.total == 5  # 1+2+1+1
    assert result.subscores["cadss6"].value == 4  # items 1, 2, 15 → 1+2+1 (item 3 not in CADSS-6)
    assert [f.code for f in result.flags] == ["cadss_dissociation_present"]
    assert result.flags[0].kind is FlagKind.DISSOCIATION and result.flags[0].confirmed is False
    assert flag_codes("cadss", answers_for_total("cadss", 4)) == set()  # >4, so 4 is not flagged
    assert flag_codes("cadss", answers, InstrumentOptions(cadss_presence_threshold=None)) == set()


def test_cadss6_total() -> None:
    # items 1, 2, 6, 7, 15, 22 = 4, 3, 2, 1, 0, 4 → 14
    result = score_values("cadss6", [4, 3, 2, 1, 0, 4])
    assert result.total == 14
    assert result.flags == ()  # the >4 presence threshold is for the full scale only


def test_bprs_positive_total() -> None:
    # suspiciousness 3, hallucinatory 1, unusual thought content 5, conceptual disorganization 2 → 11
    result = score_values("bprs-positive", [3, 1, 5, 2])
    assert result.total == 11
    assert result.total_range == (4, 28)
    assert result.band is None


def test_pain_nrs() -> None:
    result = score("pain-nrs", {"pain": 7})
    assert result.total == 7
    assert result.flags == ()


def test_bpi_severity_and_interference_are_means() -> None:
    result = score_values("bpi-sf", [8, 2, 5, 4, 3, 3, 4, 5, 2, 6, 1])
    assert result.total is None and result.band is None
    # severity (8+2+5+4)/4 = 19/4 = 4.75; interference (3+3+4+5+2+6+1)/7 = 24/7
    assert result.subscores["severity"].value == 4.75
    assert result.subscores["interference"].value == pytest.approx(24 / 7)


def test_moaas_loss_of_consciousness_at_0_only() -> None:
    result = score("moaas", {"moaas": 0})
    assert [f.code for f in result.flags] == ["moaas_loss_of_consciousness"]
    assert result.flags[0].kind is FlagKind.SEDATION
    assert score("moaas", {"moaas": 1}).flags == ()


def cssrs(*yes: str) -> dict[str, int]:
    """All seven C-SSRS screener answers, 1 for the item ids given, else 0."""
    answers = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0, "6_recent": 0}
    answers.update({item_id: 1 for item_id in yes})
    return answers


@pytest.mark.parametrize(
    ("answers", "risk", "flagged"),
    [
        (cssrs(), CssrsRisk.NONE, False),
        (cssrs("1"), CssrsRisk.LOW, True),  # wish to be dead: suicidal ideation, flagged at low triage
        (cssrs("2"), CssrsRisk.LOW, True),  # non-specific active suicidal thoughts
        (cssrs("1", "2"), CssrsRisk.LOW, True),
        (cssrs("1", "2", "3"), CssrsRisk.MODERATE, True),
        (cssrs("2", "4"), CssrsRisk.HIGH, True),
        (cssrs("2", "5"), CssrsRisk.HIGH, True),
        (cssrs("6", "6_recent"), CssrsRisk.HIGH, True),
        (cssrs("6"), CssrsRisk.MODERATE, True),
        (cssrs("1", "6"), CssrsRisk.MODERATE, True),
        (cssrs("2", "3", "6", "6_recent"), CssrsRisk.HIGH, True),
    ],
)
def test_cssrs_triage(answers: dict[str, int], risk: CssrsRisk, flagged: bool) -> None:
    result = score("cssrs-screen", answers)
    assert result.total is None
    assert result.risk is risk
    assert result.suicidality is flagged
    if flagged:
        (flag,) = result.flags
        assert flag.code == "cssrs_suicide_risk" and flag.confirmed is False
        assert "[verify]" in flag.source
        assert f"{risk.value} risk" in flag.text
    else:
        assert result.flags == ()


def test_cssrs_low_triage_flag_keeps_the_level_and_asks_for_same_day_review() -> None:
    (flag,) = score("cssrs-screen", cssrs("2")).flags
    assert flag.text.startswith("C-SSRS screener triage: low risk (item 2 yes → low).")
    assert "same day" in flag.text
    (flag,) = score("cssrs-screen", cssrs("2", "4")).flags
    assert "high risk" in flag.text and "Suicide-risk follow-up needed." in flag.text


def test_cssrs_a_yes_mapped_to_no_risk_by_the_clinic_is_still_flagged() -> None:
    options = InstrumentOptions(cssrs_triage=CssrsTriage(item1=CssrsRisk.NONE))
    result = score("cssrs-screen", cssrs("1"), options=options)
    assert result.risk is CssrsRisk.NONE
    (flag,) = result.flags
    assert flag.kind is FlagKind.SUICIDALITY and "none risk (item 1 yes → none)" in flag.text


def test_cssrs_skipped_items_may_be_left_out() -> None:
    # item 2 = no → items 3–5 are not asked; item 6 = no → recency is not asked
    result = score("cssrs-screen", {"1": 1, "2": 0, "6": 0})
    assert result.risk is CssrsRisk.LOW
    assert result.to_dict()["risk"] == "low"


def test_cssrs_triage_is_configurable() -> None:
    options = InstrumentOptions(cssrs_triage=CssrsTriage(item6_older=CssrsRisk.HIGH))
    result = score("cssrs-screen", cssrs("6"), options=options)
    assert result.risk is CssrsRisk.HIGH


def test_to_dict_shape() -> None:
    result = score_values("pcl5", [2] * 20)
    data = result.to_dict()
    assert {"instrument", "total", "band", "flags", "subscores"} <= set(data)
    assert data["instrument"] == "pcl5"
    assert data["total"] == 40  # 20 × 2
    assert data["band"] is None
    assert data["subscores"] == {"cluster_b": 10, "cluster_c": 4, "cluster_d": 14, "cluster_e": 12}
    flags = data["flags"]
    assert isinstance(flags, list)
    assert [f["code"] for f in flags] == ["pcl5_provisional_ptsd_cutpoint", "pcl5_dsm5_pattern"]
    assert set(flags[0]) == {"code", "kind", "rule", "text", "source", "confirmed"}


@pytest.mark.parametrize("code", list(INSTRUMENTS))
def test_every_flag_raised_is_declared_with_a_rule_and_source(code: str) -> None:
    instrument = INSTRUMENTS[code]
    highest = score_values(code, [i.high for i in instrument.items])
    declared = {r.code for r in instrument.flag_rules}
    for flag in highest.flags:
        assert flag.code in declared
        assert flag.rule and flag.text and flag.source
