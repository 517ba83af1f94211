"""Screening reads the measurements taken at the intake, not only the history: a measured BP at or above
180/110 stops eligibility until a prescriber reviews it, a history answer that a measurement contradicts is
flagged, and childbearing potential is recorded (issue 14, *Why*: a measured 190/115 passed as "eligible
with cautions" because the history said "no uncontrolled hypertension")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ketaclinic.clinical.screening import (
    Answer,
    ChildbearingPotential,
    Decision,
    IntakeSnapshot,
    NotChildbearingReason,
    ScreeningConfig,
    ScreeningConfigError,
    ScreeningResult,
    Severity,
    override_check,
    screen,
)
from ketaclinic.clinical.screening_consistency import is_contradiction

from .test_screening import CLEAN_HISTORY, E, K, by_code, clean, with_history

C, W, M = Severity.CONTRAINDICATED, Severity.CAUTION, Severity.MISSING_INFORMATION


def bp(sbp: int, dbp: int, repeat: tuple[int, int] | None = None, **history: Answer) -> IntakeSnapshot:
    cardiac = replace(
        clean().cardiac,
        systolic_bp=sbp,
        diastolic_bp=dbp,
        repeat_systolic_bp=repeat[0] if repeat else None,
        repeat_diastolic_bp=repeat[1] if repeat else None,
    )
    return clean(cardiac=cardiac, history=replace(CLEAN_HISTORY, **history))  # type: ignore[arg-type]


def codes(result: ScreeningResult) -> set[str]:
    return {f.code for f in result.findings}


def test_a_measured_190_115_with_no_uncontrolled_hypertension_in_the_history_is_not_eligible_and_flagged() -> (
    None
):
    result = screen(bp(190, 115, uncontrolled_hypertension=Answer.NO))
    assert result.decisions == {E: Decision.NOT_ELIGIBLE, K: Decision.NOT_ELIGIBLE}
    stop = by_code(result, "baseline_bp_stop")
    assert set(stop) == {E, K}
    for finding in stop.values():
        assert finding.severity is C and not finding.confirmed  # a clinic default, shown as unconfirmed
        assert "190/115" in finding.reason and "180/110" in finding.reason
        assert "prescriber" in finding.reason and "clinical.md §11" in finding.source
    clash = by_code(result, "contradiction:uncontrolled_hypertension")
    assert set(clash) == {E, K} and all(f.severity is W for f in clash.values())
    assert "History says no uncontrolled hypertension" in clash[E].reason
    assert "190/115" in clash[E].reason and "at or above 180/110" in clash[E].reason
    # The stop replaces the 140/90 caution; a prescriber may still decide to go ahead (not a label item).
    assert "baseline_bp_elevated" not in codes(result)
    assert override_check(result.findings, drug=E).overridable
    assert override_check(result.findings, drug=K).overridable


@pytest.mark.parametrize(
    ("sbp", "dbp", "stopped"),
    [(180, 80, True), (120, 110, True), (179, 109, False), (200, 120, True)],
)
def test_the_stop_is_at_or_above_180_110(sbp: int, dbp: int, stopped: bool) -> None:
    result = screen(bp(sbp, dbp))
    assert ("baseline_bp_stop" in codes(result)) is stopped
    assert ("baseline_bp_elevated" in codes(result)) is not stopped
    assert (result.decisions[E] is Decision.NOT_ELIGIBLE) is stopped


def test_a_repeat_reading_below_the_stop_clears_it_and_keeps_the_first_reading_on_the_screening() -> None:
    result = screen(bp(190, 115, repeat=(150, 92)))
    assert result.decisions == {E: Decision.ELIGIBLE_WITH_CAUTIONS, K: Decision.ELIGIBLE_WITH_CAUTIONS}
    remeasured = by_code(result, "baseline_bp_remeasured")
    assert "190/115" in remeasured[E].reason and "150/92" in remeasured[E].reason
    assert "still above 140/90" in remeasured[E].reason
    # The history (no uncontrolled hypertension) still disagrees with 150/92.
    assert "150/92" in by_code(result, "contradiction:uncontrolled_hypertension")[K].reason

    calm = screen(bp(190, 115, repeat=(128, 80)))
    assert codes(calm) == {"baseline_bp_remeasured"}
    assert "within 140/90" in by_code(calm, "baseline_bp_remeasured")[E].reason


def test_a_repeat_still_at_or_above_the_stop_names_both_readings() -> None:
    result = screen(bp(192, 112, repeat=(186, 104)))
    (reason,) = {f.reason for f in result.findings if f.code == "baseline_bp_stop"}
    assert "192/112 at intake and 186/104 on re-measurement" in reason
    assert result.decisions[K] is Decision.NOT_ELIGIBLE


def test_the_latest_reading_is_judged_below_the_stop() -> None:
    assert codes(screen(bp(150, 95, repeat=(130, 82)))) == set()
    elevated = by_code(screen(bp(130, 82, repeat=(150, 95))), "baseline_bp_elevated")
    assert "150/95 (re-measured)" in elevated[E].reason


def test_no_contradiction_when_the_history_does_not_say_no() -> None:
    unknown = screen(bp(190, 115, uncontrolled_hypertension=Answer.UNKNOWN))
    assert not any(is_contradiction(c) for c in codes(unknown))
    assert "missing:uncontrolled_hypertension" in codes(unknown)
    assert unknown.decisions[E] is Decision.NOT_ELIGIBLE  # the stop decides even with information missing
    known = screen(bp(150, 95, uncontrolled_hypertension=Answer.YES))
    assert not any(is_contradiction(c) for c in codes(known))


def test_a_clinic_may_set_its_own_stop_within_bounds() -> None:
    config = ScreeningConfig(bp_stop_systolic=170, bp_stop_diastolic=105)
    assert "baseline_bp_stop" in codes(screen(bp(172, 90), config=config))
    with pytest.raises(ScreeningConfigError) as caught:
        screen(clean(), config=ScreeningConfig(bp_stop_systolic=140, bp_stop_diastolic=250))
    assert caught.value.errors["bp_stop_systolic"] == "must be above the pre-dose limit 140 and at most 300"
    assert caught.value.errors["bp_stop_diastolic"] == "must be above the pre-dose limit 90 and at most 200"


def test_moca_below_the_minimum_contradicts_no_cognitive_impairment() -> None:
    result = screen(clean(moca_score=15))
    clash = by_code(result, "contradiction:cognitive_impairment")
    assert set(clash) == {E, K} and "MoCA score is 15 (below 18)" in clash[E].reason
    flagged = screen(clean(moca_score=15, history=replace(CLEAN_HISTORY, cognitive_impairment=Answer.YES)))
    assert "contradiction:cognitive_impairment" not in codes(flagged)


def test_pregnant_and_unable_to_become_pregnant_is_a_contradiction() -> None:
    result = screen(with_history(pregnancy=Answer.YES))
    clash = by_code(result, "contradiction:pregnancy")
    assert "Post-menopausal" in clash[E].reason
    assert result.decisions[E] is Decision.NOT_ELIGIBLE  # pregnancy itself


@pytest.mark.parametrize(
    ("recorded", "code", "severity", "decision"),
    [
        (ChildbearingPotential(), "missing:childbearing_potential", M, Decision.INCOMPLETE),
        (ChildbearingPotential(Answer.YES), "childbearing_potential", W, Decision.ELIGIBLE_WITH_CAUTIONS),
        (
            ChildbearingPotential(Answer.NO),
            "missing:childbearing_potential_reason",
            M,
            Decision.INCOMPLETE,
        ),
    ],
)
def test_childbearing_potential(
    recorded: ChildbearingPotential, code: str, severity: Severity, decision: Decision
) -> None:
    result = screen(clean(childbearing_potential=recorded))
    (finding,) = {f for f in result.findings if f.code == code and E in f.drugs}
    assert finding.severity is severity and "§2.5" in finding.source and "§11" in finding.source
    assert result.decisions == {E: decision, K: decision}


def test_not_of_childbearing_potential_with_a_reason_raises_nothing() -> None:
    for reason in NotChildbearingReason:
        recorded = ChildbearingPotential(Answer.NO, reason, note="born without a uterus")
        assert screen(clean(childbearing_potential=recorded)).findings == ()
    assert ChildbearingPotential(Answer.NO, NotChildbearingReason.OTHER, "MRKH").reason_text == "other: MRKH"
