"""Clinic outcomes per instrument (clinical/outcomes.py), with hand-computed values: baseline = first score,
outcome = latest score by the end of the period, counted only when it falls in the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ketaclinic.clinical.outcomes import Score, patient_outcome, summarize

DAY0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def scores(*pairs: tuple[int, float]) -> list[Score]:
    return [Score(DAY0 + timedelta(days=d), total) for d, total in pairs]


SINCE, UNTIL = DAY0 + timedelta(days=30), DAY0 + timedelta(days=50)
A = scores((0, 20), (10, 12), (40, 8))  # 20 -> 8: -60 %: response; 8 is not below 5: no remission
B = scores((0, 10), (20, 4))  # latest by the end is before the period: not counted
C = scores((35, 18))  # a baseline only: not counted
D = scores((0, 0), (45, 0))  # percent change undefined: response not evaluable; 0 < 5: remission
E = scores((60, 3), (0, 15), (35, 7))  # unsorted; 3 comes after the period: 15 -> 7 = -53.3 %: response


def test_one_patient() -> None:
    out = patient_outcome("phq9", A, SINCE, UNTIL)
    assert out is not None
    assert (out.baseline, out.outcome, out.percent_change) == (20, 8, pytest.approx(-60.0))
    assert out.response is True and out.remission is False
    assert patient_outcome("phq9", B, SINCE, UNTIL) is None
    assert patient_outcome("phq9", C, SINCE, UNTIL) is None
    e = patient_outcome("phq9", E, SINCE, UNTIL)
    assert e is not None and e.outcome == 7 and e.outcome_at == DAY0 + timedelta(days=35)


def test_summary_counts_each_rule_over_the_patients_it_can_judge() -> None:
    s = summarize("phq9", [A, B, C, D, E], SINCE, UNTIL)
    assert s.patients == 3  # A, D, E
    assert (s.responders, s.response_evaluable) == (2, 2)  # D's percentage is undefined
    assert (s.remitters, s.remission_evaluable) == (1, 3)  # only D is below 5
    assert s.response_pct == 100 and s.remission_pct == pytest.approx(100 / 3)
    assert s.median_percent_change == pytest.approx((-60 + (7 - 15) / 15 * 100) / 2)
    assert s.response_rule is not None and "50%" in s.response_rule.label and s.response_rule.confirmed
    assert s.remission_rule is not None and "clinical.md" in s.remission_rule.source


def test_madrs_remission_uses_the_default_threshold_of_10() -> None:
    s = summarize("madrs", [scores((0, 30), (40, 10)), scores((0, 30), (40, 11))], SINCE, UNTIL)
    assert (s.responders, s.remitters, s.remission_evaluable) == (2, 1, 2)


def test_nothing_to_count() -> None:
    s = summarize("qids-sr16", [], SINCE, UNTIL)
    assert s.patients == 0 and s.response_pct is None and s.median_percent_change is None


def test_ptsd_and_pain_count_their_improvement_rule() -> None:
    """PCL-5: a drop of at least 10 points (the clinic default of 10–20) is clinically meaningful;
    pain NRS: at least 30 % lower is a moderately important improvement (IMMPACT)."""
    pcl5 = summarize(
        "pcl5",
        [scores((0, 50), (40, 40)), scores((0, 50), (40, 41)), scores((0, 50), (40, 55))],
        SINCE,
        UNTIL,
        "pcl5_clinically_meaningful_improvement",
    )
    assert (pcl5.patients, pcl5.improved, pcl5.improvement_evaluable) == (3, 1, 3)
    assert pcl5.responders == 0 and pcl5.response_evaluable == 0  # no response rule for PCL-5
    assert pcl5.improvement_rule is not None and "clinical" in pcl5.improvement_rule.label.lower()
    pain = summarize(
        "pain-nrs", [scores((0, 10), (40, 7)), scores((0, 10), (40, 8))], SINCE, UNTIL, "immpact_moderate"
    )
    assert (pain.improved, pain.improvement_evaluable) == (1, 2)  # -30 % counts, -20 % does not
    assert pain.improvement_pct == 50
