"""Suicidality flags read back from stored results (what the pre-dose gate asks)."""

from __future__ import annotations

from ketaclinic.clinical.instruments import (
    SUICIDALITY_FLAG_CODES,
    SUICIDALITY_INSTRUMENTS,
    score,
    score_values,
    suicidality_flags,
    suicidality_reason,
)

CSSRS_ITEM2_YES = {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0, "6": 0}
MADRS_ITEM10_2 = {str(i): 0 for i in range(1, 10)} | {"10": 2}


def stored(code: str, answers: dict[str, int]) -> list[dict[str, object]]:
    """The flags list as measures.ScaleAdministration.flags keeps it."""
    flags = score(code, answers).to_dict()["flags"]
    assert isinstance(flags, list)
    return flags


def test_the_instruments_with_a_suicidality_item() -> None:
    assert SUICIDALITY_INSTRUMENTS == frozenset({"phq9", "qids-sr16", "madrs", "cssrs-screen"})
    assert SUICIDALITY_FLAG_CODES == frozenset(
        {
            "phq9_item9_suicidality",
            "qids_item12_suicidality",
            "madrs_item10_suicidality",
            "cssrs_suicide_risk",
        }
    )


def test_each_suicidality_item_is_found_in_the_stored_flags() -> None:
    cases = {
        "phq9": ([0] * 8 + [1], "PHQ-9 item 9 is 1"),
        "qids-sr16": ([0] * 11 + [1] + [0] * 4, "QIDS-SR16 item 12 (thoughts of death or suicide) is 1"),
        "madrs": ([0] * 9 + [2], "MADRS item 10 (suicidal thoughts) is 2"),
    }
    for code, (values, expected) in cases.items():
        flags = score_values(code, values).to_dict()["flags"]
        assert isinstance(flags, list)
        (found,) = suicidality_flags(code, flags)
        assert found.instrument == code and expected in found.text, code
        assert suicidality_reason(code, flags).startswith(found.instrument_name + ": ")
    (found,) = suicidality_flags("cssrs-screen", stored("cssrs-screen", CSSRS_ITEM2_YES))
    assert found.reason.startswith("C-SSRS Screener: C-SSRS screener triage: low risk (item 2 yes → low)")


def test_screen_flags_are_not_suicidality() -> None:
    # PHQ-9 total 18 with item 9 = 0: the major-depression cut-off is a screen flag, not a safety one.
    flags = stored("phq9", {str(i): 2 for i in range(1, 9)} | {"9": 0})
    assert [f["code"] for f in flags] == ["phq9_total_ge_10"]
    assert suicidality_flags("phq9", flags) == ()
    assert suicidality_reason("phq9", flags) == ""


def test_a_stored_flag_that_lost_its_kind_is_still_caught_by_its_code() -> None:
    flags = [{"code": "phq9_item9_suicidality", "rule": "PHQ-9 item 9 above 0", "text": ""}]
    (found,) = suicidality_flags("phq9", flags)
    assert found.reason == "PHQ-9: PHQ-9 item 9 above 0"  # no text stored: the rule is shown


def test_with_the_answers_a_result_stored_under_an_older_definition_still_shows_its_flag() -> None:
    # MADRS and C-SSRS version 1 stored no flag for item 10 / a low-triage yes.
    assert suicidality_flags("madrs", []) == ()
    (found,) = suicidality_flags("madrs", [], answers=MADRS_ITEM10_2)
    assert found.code == "madrs_item10_suicidality"
    (found,) = suicidality_flags("cssrs-screen", [], answers=CSSRS_ITEM2_YES)
    assert found.code == "cssrs_suicide_risk"
    # Stored and re-scored flags with the same code count once.
    assert len(suicidality_flags("madrs", stored("madrs", MADRS_ITEM10_2), answers=MADRS_ITEM10_2)) == 1
    # Answers that no longer score leave the stored flags as they are.
    assert suicidality_flags("madrs", [], answers={"10": 9}) == ()
