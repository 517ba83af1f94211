"""Bad answers: one InstrumentInputError whose .errors names every bad item."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ketaclinic.clinical.instruments import (
    InstrumentError,
    InstrumentInputError,
    UnknownInstrumentError,
    score,
    score_values,
)

PHQ9_OK = {str(i): 1 for i in range(1, 10)}


def errors_of(code: str, answers: Mapping[str, object]) -> dict[str, str]:
    with pytest.raises(InstrumentInputError) as info:
        score(code, answers)  # type: ignore[arg-type]
    return info.value.errors


def test_every_bad_item_is_reported_at_once() -> None:
    answers: dict[str, object] = dict(PHQ9_OK)
    answers["9"] = 4
    answers["2"] = 2.5
    answers["4"] = True
    answers["5"] = "1"
    del answers["3"]
    answers["10"] = 1
    errors = errors_of("phq9", answers)
    assert errors == {
        "2": "item 2: 2.5 is not a whole number",
        "3": "item 3: missing (no answer)",
        "4": "item 4: True is not a whole number (use 1 for yes, 0 for no)",
        "5": "item 5: '1' is not a whole number",
        "9": "item 9: 4 is outside 0–3",
        "10": "item 10: PHQ-9 has no such item (items: 1–9)",
    }


def test_error_message_and_types() -> None:
    with pytest.raises(InstrumentInputError) as info:
        score("phq9", {**PHQ9_OK, "9": 4})
    exc = info.value
    assert str(exc) == "PHQ-9 answers: 1 problem: item 9: 4 is outside 0–3"
    assert isinstance(exc, ValueError) and isinstance(exc, InstrumentError)


def test_empty_answers_name_every_item() -> None:
    errors = errors_of("gad7", {})
    assert list(errors) == ["1", "2", "3", "4", "5", "6", "7"]


def test_number_keys_instead_of_text() -> None:
    errors = errors_of("pain-nrs", {7: 3})  # type: ignore[dict-item]
    assert errors == {
        "pain": "item pain: missing (no answer)",
        "7 (int)": "item 7 (int): Pain NRS has no such item (items: pain) (item ids are text, e.g. '1')",
    }


def test_per_item_ranges_ymrs_and_bprs() -> None:
    ymrs = {str(i): 0 for i in range(1, 12)}
    ymrs.update({"1": 5, "5": 8, "6": 9})  # item 1 is 0–4; items 5 and 6 are 0–8
    assert errors_of("ymrs", ymrs) == {"1": "item 1: 5 is outside 0–4", "6": "item 6: 9 is outside 0–8"}
    bprs = {
        "suspiciousness": 0,
        "hallucinatory_behavior": 8,
        "unusual_thought_content": 1,
        "conceptual_disorganization": 7,
    }
    assert errors_of("bprs-positive", bprs) == {
        "suspiciousness": "item suspiciousness: 0 is outside 1–7",
        "hallucinatory_behavior": "item hallucinatory_behavior: 8 is outside 1–7",
    }


def test_bpi_requires_every_item() -> None:
    answers = dict.fromkeys(
        ["worst", "least", "average", "general_activity", "mood", "walking", "work", "sleep"], 3
    )
    assert errors_of("bpi-sf", answers) == {
        "now": "item now: missing (no answer)",
        "relations": "item relations: missing (no answer)",
        "enjoyment": "item enjoyment: missing (no answer)",
    }


def test_cssrs_skip_logic() -> None:
    # item 2 = yes → items 3–5 must be answered
    assert errors_of("cssrs-screen", {"1": 1, "2": 1, "6": 0}) == {
        "3": "item 3: missing (no answer)",
        "4": "item 4: missing (no answer)",
        "5": "item 5: missing (no answer)",
    }
    # yes to a question that is asked only after another yes
    errors = errors_of("cssrs-screen", {"1": 0, "2": 0, "3": 1, "6": 0, "6_recent": 1})
    assert errors == {
        "3": "item 3: 1 given, but this item is asked only when item 2 is 1, and item 2 is 0",
        "6_recent": "item 6_recent: 1 given, but this item is asked only when item 6 is 1, and item 6 is 0",
    }
    # item 6 = yes → recency must be given
    assert errors_of("cssrs-screen", {"1": 0, "2": 0, "6": 1}) == {
        "6_recent": "item 6_recent: missing (no answer)"
    }
    # yes/no items accept only 0 or 1; a bad item 2 is reported once, without guessing about 3–5
    assert errors_of("cssrs-screen", {"1": 2, "2": 5, "6": 0}) == {
        "1": "item 1: 2 is outside 0–1",
        "2": "item 2: 5 is outside 0–1",
    }


def test_wrong_number_of_values_in_item_order() -> None:
    with pytest.raises(InstrumentInputError) as info:
        score_values("phq9", [1, 1, 1, 1, 1, 1, 1])
    assert info.value.errors == {
        "8": "item 8: missing (7 values given, PHQ-9 needs 9)",
        "9": "item 9: missing (7 values given, PHQ-9 needs 9)",
    }
    with pytest.raises(InstrumentInputError) as info:
        score_values("gad7", ["1", "1", "x", "1", "1", "1", "9", "0", "0"])
    assert info.value.errors == {
        "3": "item 3: 'x' is not a whole number",
        "7": "item 7: 9 is outside 0–3",
        "value 8": "value 8: one too many (9 values given, GAD-7 has 7 items)",
        "value 9": "value 9: one too many (9 values given, GAD-7 has 7 items)",
    }


def test_typed_in_numbers_are_accepted_in_item_order() -> None:
    # " 2" and "+1" are whole numbers typed at a prompt: 2+1+0+0+0+0+0 = 3
    assert score_values("gad7", [" 2", "+1", "0", "0", "0", "0", "0"]).total == 3


def test_unknown_instrument() -> None:
    with pytest.raises(UnknownInstrumentError):
        score("hamd", {})
    with pytest.raises(KeyError):  # also a KeyError for dict-style callers
        score_values("hamd", [])
