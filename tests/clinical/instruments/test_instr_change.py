"""compare(): percent change and every change rule, with hand-computed values."""

from __future__ import annotations

import pytest

from ketaclinic.clinical.instruments import (
    FlagKind,
    InstrumentInputError,
    InstrumentOptions,
    compare,
    score_values,
)


def met(code: str, baseline: float, current: float, rule: str, **kw: object) -> bool | None:
    result = compare(code, baseline, current, **kw)  # type: ignore[arg-type]
    finding = result.finding(rule)
    assert finding is not None, f"{code}: no finding {rule}"
    return finding.met


def test_percent_change_and_change() -> None:
    result = compare("phq9", 20, 10)
    assert result.change == -10  # 10 - 20
    assert result.percent_change == -50.0  # -10 / 20 × 100
    assert result.version == "1" and result.measure == "total"
    up = compare("phq9", 8, 10)
    assert up.change == 2 and up.percent_change == 25.0  # 2 / 8 × 100


@pytest.mark.parametrize(
    ("code", "baseline", "current", "expected"),
    [
        # ≥50% reduction (clinical.md §0)
        ("phq9", 20, 10, True),  # 50.0%
        ("phq9", 20, 11, False),  # 45%
        ("madrs", 30, 15, True),  # 50%
        ("madrs", 30, 16, False),  # 46.7%
        ("madrs", 59, 30, False),  # 29/59 = 49.2%: just short of 50%
        ("madrs", 60, 30, True),  # 30/60 = 50%
        ("qids-sr16", 16, 8, True),  # 50%
        ("qids-sr16", 16, 9, False),  # 43.75%
        ("qids-sr16", 15, 7, True),  # 53.3%
        ("qids-sr16", 15, 8, False),  # 46.7%: 8 > 7.5
    ],
)
def test_depression_response(code: str, baseline: int, current: int, expected: bool) -> None:
    assert met(code, baseline, current, "response") is expected
    assert compare(code, baseline, current).response is expected


@pytest.mark.parametrize(
    ("code", "current", "expected", "options"),
    [
        ("phq9", 4, True, None),  # <5 (McInnes 2022)
        ("phq9", 5, False, None),
        ("qids-sr16", 5, True, None),  # ≤5
        ("qids-sr16", 6, False, None),
        ("madrs", 10, True, None),  # ≤10 default
        ("madrs", 11, False, None),
        ("madrs", 12, True, InstrumentOptions(madrs_remission_max=12)),  # ≤12 selectable
        ("madrs", 13, False, InstrumentOptions(madrs_remission_max=12)),
    ],
)
def test_remission(code: str, current: int, expected: bool, options: InstrumentOptions | None) -> None:
    result = compare(code, 25, current, options=options)
    assert result.remission is expected
    finding = result.finding("remission")
    assert finding is not None and finding.confirmed is True


def test_madrs_remission_threshold_reported() -> None:
    finding = compare("madrs", 30, 11, options=InstrumentOptions(madrs_remission_max=12)).finding("remission")
    assert finding is not None and finding.threshold == 12 and finding.met is True


def test_baseline_zero_cannot_give_a_percentage() -> None:
    result = compare("phq9", 0, 3)
    assert result.percent_change is None
    assert result.response is None  # not evaluable
    assert result.remission is True  # 3 < 5
    assert any("baseline of 0" in n for n in result.notes)


def test_gad7_has_no_reference_thresholds_by_default() -> None:
    result = compare("gad7", 16, 4)
    assert result.percent_change == -75.0  # -12 / 16
    assert result.findings == ()
    assert result.response is None and result.remission is None
    assert len(result.notes) == 2
    assert all("not evaluated" in n for n in result.notes)


def test_gad7_thresholds_when_a_clinic_sets_them_are_unconfirmed() -> None:
    options = InstrumentOptions(gad7_response_min_reduction_pct=50, gad7_remission_below=5)
    result = compare("gad7", 16, 8, options=options)  # 50% reduction; 8 is not below 5
    assert result.response is True
    assert result.remission is False
    assert all(f.confirmed is False for f in result.findings)
    assert compare("gad7", 16, 9, options=options).response is False  # 43.75%
    assert compare("gad7", 16, 4, options=options).remission is True


@pytest.mark.parametrize(
    ("baseline", "current", "reliable", "meaningful", "worse"),
    [
        (50, 46, False, False, False),  # 4 points lower
        (50, 45, True, False, False),  # 5 points lower
        (50, 41, True, False, False),  # 9 points lower
        (50, 40, True, True, False),  # 10 points lower
        (40, 44, False, False, False),  # 4 points higher
        (40, 45, False, False, True),  # 5 points higher
    ],
)
def test_pcl5_change_rules(
    baseline: int, current: int, reliable: bool, meaningful: bool, worse: bool
) -> None:
    result = compare("pcl5", baseline, current)
    got = {f.code: f.met for f in result.findings}
    assert got == {
        "pcl5_reliable_improvement": reliable,
        "pcl5_clinically_meaningful_improvement": meaningful,
        "pcl5_reliable_worsening": worse,
    }
    assert result.response is None  # PTSD ≥30% response is a CAPS-5 rule, not applied to PCL-5


def test_pcl5_change_thresholds_are_configurable() -> None:
    options = InstrumentOptions(pcl5_reliable_change_points=8, pcl5_meaningful_change_points=20)
    assert met("pcl5", 50, 43, "pcl5_reliable_improvement", options=options) is False  # 7 < 8
    assert met("pcl5", 50, 42, "pcl5_reliable_improvement", options=options) is True  # 8
    assert met("pcl5", 50, 31, "pcl5_clinically_meaningful_improvement", options=options) is False  # 19
    assert met("pcl5", 50, 30, "pcl5_clinically_meaningful_improvement", options=options) is True  # 20


@pytest.mark.parametrize(
    ("baseline", "current", "minimal", "moderate", "substantial"),
    [
        (10, 10, False, False, False),  # 0%
        (10, 9, True, False, False),  # 10%
        (10, 8, True, False, False),  # 20%
        (7, 5, True, False, False),  # 28.6%
        (10, 7, True, True, False),  # 30%
        (3, 2, True, True, False),  # 33.3%
        (10, 6, True, True, False),  # 40%
        (10, 5, True, True, True),  # 50%
        (8, 0, True, True, True),  # 100%
        (4, 5, False, False, False),  # worse
    ],
)
def test_pain_nrs_immpact(
    baseline: int, current: int, minimal: bool, moderate: bool, substantial: bool
) -> None:
    got = {f.code: f.met for f in compare("pain-nrs", baseline, current).findings}
    assert got == {
        "immpact_minimal": minimal,
        "immpact_moderate": moderate,
        "immpact_substantial": substantial,
    }


def test_bpi_needs_a_measure() -> None:
    with pytest.raises(InstrumentInputError) as info:
        compare("bpi-sf", 5, 3)
    assert info.value.errors == {
        "measure": "measure: BPI-SF has no total score; choose measure 'severity' or 'interference'"
    }
    with pytest.raises(InstrumentInputError) as info:
        compare("bpi-sf", 5, 3, measure="worst")
    assert "'worst' is not a score of BPI-SF" in info.value.errors["measure"]


def test_bpi_severity_uses_immpact_percentages() -> None:
    before = score_values("bpi-sf", [8, 6, 6, 4, 0, 0, 0, 0, 0, 0, 0]).subscores["severity"].value
    after = score_values("bpi-sf", [4, 3, 3, 2, 0, 0, 0, 0, 0, 0, 0]).subscores["severity"].value
    # (8+6+6+4)/4 = 6.0 → (4+3+3+2)/4 = 3.0: exactly 50% lower
    result = compare("bpi-sf", before, after, measure="severity")
    assert result.percent_change == -50.0
    assert {f.code: f.met for f in result.findings} == {
        "immpact_minimal": True,
        "immpact_moderate": True,
        "immpact_substantial": True,
    }


@pytest.mark.parametrize(
    ("baseline", "current", "moderate", "substantial"),
    [
        (8.5, 6.0, False, False),  # 2.5 / 8.5 = 29.4%: just short of 30%
        (8.5, 5.75, True, False),  # 2.75 / 8.5 = 32.4%
        (8.5, 4.5, True, False),  # 4 / 8.5 = 47.1%
        (8.5, 4.25, True, True),  # 4.25 / 8.5 = 50%
    ],
)
def test_bpi_severity_near_the_immpact_edges(
    baseline: float, current: float, moderate: bool, substantial: bool
) -> None:
    result = compare("bpi-sf", baseline, current, measure="severity")
    assert result.finding("immpact_moderate") is not None
    assert met("bpi-sf", baseline, current, "immpact_moderate", measure="severity") is moderate
    assert met("bpi-sf", baseline, current, "immpact_substantial", measure="severity") is substantial


def test_bpi_interference_one_point_is_exact_for_sevenths() -> None:
    before = score_values("bpi-sf", [0, 0, 0, 0, 3, 3, 2, 1, 1, 1, 1]).subscores["interference"].value
    after = score_values("bpi-sf", [0, 0, 0, 0, 2, 2, 1, 0, 0, 0, 0]).subscores["interference"].value
    # (3+3+2+1+1+1+1)/7 = 12/7 → (2+2+1)/7 = 5/7: exactly 1 point lower, although in floating point
    # 12/7 - 5/7 comes out just below 1.0
    assert before - after < 1.0
    result = compare("bpi-sf", before, after, measure="interference")
    assert result.change == pytest.approx(-1.0)
    assert met("bpi-sf", before, after, "bpi_interference_minimally_important", measure="interference")
    # 12/7 → 6/7 is 6/7 of a point: not met
    assert not met("bpi-sf", 12 / 7, 6 / 7, "bpi_interference_minimally_important", measure="interference")


def test_moaas_any_decrease_from_pre_dose_is_sedation() -> None:
    result = compare("moaas", 5, 4)
    assert met("moaas", 5, 4, "moaas_sedation") is True
    (flag,) = result.flags
    assert flag.code == "moaas_sedation" and flag.kind is FlagKind.SEDATION and flag.confirmed
    assert "4 is lower than the pre-dose value 5" in flag.text
    assert compare("moaas", 5, 5).flags == ()
    assert met("moaas", 3, 4, "moaas_sedation") is False


def test_scales_without_change_rules_say_so() -> None:
    for code, baseline, current in (("ymrs", 20, 10), ("cadss", 10, 2), ("bprs-positive", 12, 8)):
        result = compare(code, baseline, current)
        assert result.findings == ()
        assert any("no change-from-baseline rule" in n for n in result.notes)
    cluster = compare("pcl5", 12, 6, measure="cluster_b")
    assert cluster.findings == () and cluster.percent_change == -50.0


def test_cssrs_has_nothing_to_compare() -> None:
    with pytest.raises(InstrumentInputError) as info:
        compare("cssrs-screen", 1, 0)
    assert "has no total score" in info.value.errors["measure"]


def test_bad_values_are_all_reported() -> None:
    with pytest.raises(InstrumentInputError) as info:
        compare("phq9", 28, -1)
    assert info.value.errors == {
        "baseline": "baseline: 28 is outside 0–27",
        "current": "current: -1 is outside 0–27",
    }
    with pytest.raises(InstrumentInputError) as info:
        compare("phq9", 12.5, True)
    assert info.value.errors == {
        "baseline": "baseline: 12.5 is not a whole number",
        "current": "current: True is not a number",
    }
    with pytest.raises(InstrumentInputError) as info:
        compare("bpi-sf", float("nan"), 10.5, measure="severity")
    assert info.value.errors == {
        "baseline": "baseline: nan is outside 0–10",
        "current": "current: 10.5 is outside 0–10",
    }


def test_to_dict() -> None:
    data = compare("phq9", 20, 4).to_dict()
    assert data["percent_change"] == -80.0  # -16 / 20
    findings = data["findings"]
    assert isinstance(findings, list)
    assert [(f["code"], f["met"]) for f in findings] == [("response", True), ("remission", True)]
