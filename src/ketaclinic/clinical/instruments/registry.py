"""The registry of instruments, keyed by CLI code, and loading a clinic's own item wording."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from .defs_mood import GAD7, MADRS, PHQ9, QIDS_SR16, YMRS
from .defs_other import BPI_SF, BPRS_POSITIVE, MOAAS, PAIN_NRS
from .defs_trauma import CADSS, CADSS6, CSSRS_SCREEN, PCL5
from .errors import InstrumentInputError, UnknownInstrumentError
from .model import Instrument, Item, ResponseOption

INSTRUMENTS: Final[dict[str, Instrument]] = {
    i.code: i
    for i in (
        PHQ9,
        GAD7,
        MADRS,
        QIDS_SR16,
        PCL5,
        CADSS,
        CADSS6,
        YMRS,
        CSSRS_SCREEN,
        BPRS_POSITIVE,
        PAIN_NRS,
        BPI_SF,
        MOAAS,
    )
}


def get_instrument(code: str) -> Instrument:
    try:
        return INSTRUMENTS[code]
    except KeyError:
        raise UnknownInstrumentError(code, tuple(INSTRUMENTS)) from None


def with_item_texts(
    instrument: Instrument,
    texts: Mapping[str, str],
    *,
    source: str,
    option_labels: Mapping[str, Mapping[int, str]] | None = None,
) -> Instrument:
    """A copy of ``instrument`` carrying the clinic's own item wording (e.g. its licensed MADRS form).

    ``texts`` maps item id → wording; ``option_labels`` maps item id → {value: label} (e.g. the QIDS-SR16
    response statements). ``source`` names the copy the wording came from and is kept on the instrument.
    Scoring is unchanged. Every unknown item, empty text or out-of-range option value is reported at once.
    """
    errors: dict[str, str] = {}
    known = set(instrument.item_ids)
    if not source.strip():
        errors["source"] = "source: name the form the wording comes from"
    for item_id, text in texts.items():
        if item_id not in known:
            errors[item_id] = f"item {item_id}: not an item of {instrument.name}"
        elif not text.strip():
            errors[item_id] = f"item {item_id}: wording is empty"
    for item_id, labels in (option_labels or {}).items():
        if item_id not in known:
            errors[item_id] = f"item {item_id}: not an item of {instrument.name}"
            continue
        item = instrument.item(item_id)
        bad = sorted(v for v in labels if v not in item.values)
        if bad:
            errors[f"{item_id}:options"] = (
                f"item {item_id}: answer values {bad} are outside {item.low}–{item.high}"
            )
    if errors:
        raise InstrumentInputError(f"{instrument.name} wording", errors)

    def updated(item: Item) -> Item:
        new = item
        if item.id in texts:
            new = dataclasses.replace(new, text=texts[item.id])
        labels = (option_labels or {}).get(item.id)
        if labels is not None:
            old = {o.value: o for o in item.options}
            merged: dict[int, ResponseOption] = dict(old)
            for v, label in labels.items():
                merged[v] = dataclasses.replace(old[v], label=label) if v in old else ResponseOption(v, label)
            options = tuple(merged[v] for v in sorted(merged))
            new = dataclasses.replace(new, options=options)
        return new

    return dataclasses.replace(
        instrument,
        items=tuple(updated(i) for i in instrument.items),
        text_source=source,
    )
