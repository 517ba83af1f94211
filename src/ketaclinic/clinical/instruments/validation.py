"""Checking answers against an instrument definition. Every bad item is reported at once."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .errors import InstrumentInputError
from .model import Instrument, Item

_WHOLE_NUMBER = re.compile(r"[+-]?\d+")


def describe_items(instrument: Instrument) -> str:
    """'1–9' for consecutively numbered items, otherwise the ids in order."""
    ids = instrument.item_ids
    if all(i.isdigit() for i in ids):
        numbers = [int(i) for i in ids]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{numbers[0]}–{numbers[-1]}"
    return ", ".join(ids)


def _value_error(item: Item, value: object) -> str | None:
    label = f"item {item.id}"
    if isinstance(value, bool):
        return f"{label}: {value} is not a whole number (use 1 for yes, 0 for no)"
    if not isinstance(value, int):
        shown = repr(value) if isinstance(value, str) else str(value)
        return f"{label}: {shown} is not a whole number"
    if value not in item.values:
        return f"{label}: {value} is outside {item.low}–{item.high}"
    return None


def collect_answers(
    instrument: Instrument, answers: Mapping[str, object]
) -> tuple[dict[str, int], dict[str, str]]:
    """Valid answers and, separately, a reason for every bad, missing or unknown item."""
    errors: dict[str, str] = {}
    valid: dict[str, int] = {}
    for item in instrument.items:
        if item.id in answers:
            value = answers[item.id]
            reason = _value_error(item, value)
            if reason is None:
                assert isinstance(value, int)
                valid[item.id] = value
            else:
                errors[item.id] = reason
    # Skip logic and missing items, once every value is known to be valid or not.
    for item in instrument.items:
        if item.asked_if is not None:
            ctl_id, ctl_value = item.asked_if
            if ctl_id not in valid:
                continue  # controlling item missing or bad (reported there): need for this one unknown
            if valid[ctl_id] != ctl_value:
                given = valid.get(item.id)
                if given not in (None, 0):
                    errors[item.id] = (
                        f"item {item.id}: {given} given, but this item is asked only when item {ctl_id} "
                        f"is {ctl_value}, and item {ctl_id} is {valid[ctl_id]}"
                    )
                    del valid[item.id]
                continue  # not asked: may be left out
        if item.id not in answers:
            errors[item.id] = f"item {item.id}: missing (no answer)"
    known = set(instrument.item_ids)
    for key in answers:
        if key not in known:
            if isinstance(key, str):
                where, hint = key, ""
            else:  # e.g. the number 9 instead of the text "9"
                where, hint = f"{key!r} ({type(key).__name__})", " (item ids are text, e.g. '1')"
            errors[where] = (
                f"item {where}: {instrument.name} has no such item "
                f"(items: {describe_items(instrument)}){hint}"
            )
    return valid, errors


def validate_answers(instrument: Instrument, answers: Mapping[str, object]) -> dict[str, int]:
    valid, errors = collect_answers(instrument, answers)
    if errors:
        raise InstrumentInputError(f"{instrument.name} answers", errors)
    return valid


def parse_value(value: object) -> object:
    """Turn a typed-in '3' into 3; anything that is not a whole number is returned unchanged."""
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    return value


def answers_from_values(
    instrument: Instrument, values: Sequence[object]
) -> tuple[dict[str, object], dict[str, str]]:
    """Map values given in published item order to item ids; report a wrong number of values per item."""
    ids = instrument.item_ids
    answers: dict[str, object] = {
        item_id: parse_value(value) for item_id, value in zip(ids, values, strict=False)
    }
    errors: dict[str, str] = {}
    n = len(ids)
    for item_id in ids[len(values) :]:
        errors[item_id] = f"item {item_id}: missing ({len(values)} values given, {instrument.name} needs {n})"
    for extra in range(n + 1, len(values) + 1):
        errors[f"value {extra}"] = (
            f"value {extra}: one too many ({len(values)} values given, {instrument.name} has {n} items)"
        )
    return answers, errors


def validate_values(instrument: Instrument, values: Sequence[object]) -> dict[str, int]:
    """Like ``validate_answers`` for values in published item order (the CLI form)."""
    answers, count_errors = answers_from_values(instrument, values)
    valid, errors = collect_answers(instrument, answers)
    errors.update(count_errors)  # "missing (8 values given…)" replaces the plain "missing"
    if errors:
        raise InstrumentInputError(f"{instrument.name} answers", errors)
    return valid
