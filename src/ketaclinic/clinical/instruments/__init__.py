"""Rating scales for measurement-based care: definitions as data, scoring, change from baseline.

Public API (the app stores answers as {item_id: int} and calls these):

- ``INSTRUMENTS: dict[str, Instrument]`` keyed by code (phq9, gad7, madrs, qids-sr16, pcl5, cadss, cadss6,
  ymrs, cssrs-screen, bprs-positive, pain-nrs, bpi-sf, moaas); ``get_instrument(code)``.
- ``score(code, answers, *, options=None) -> ScoreResult``: total, band, subscores, flags, version.
- ``score_values(code, values, *, options=None)``: the same with values in published item order.
- ``compare(code, baseline, current, *, measure=None, options=None) -> ComparisonResult``.
- ``with_item_texts(instrument, texts, *, source, option_labels=None)``: load a clinic's own wording.
- ``InstrumentOptions`` (clinic settings) and ``SETTINGS`` (default, source and confirmation of each).
- ``InstrumentInputError`` (``.errors`` names every bad item), ``UnknownInstrumentError``.

Pure: no Django, no I/O. Every number cites /work/shared/reference (clinical.md §0, §8; interop.md §1.6).
"""

from .change import compare
from .errors import InstrumentError, InstrumentInputError, UnknownInstrumentError
from .model import (
    Band,
    ChangeFinding,
    ComparisonResult,
    CssrsRisk,
    Flag,
    FlagKind,
    Instrument,
    Item,
    ScoreResult,
    Subscore,
)
from .options import SETTINGS, CssrsTriage, InstrumentOptions, Setting
from .registry import INSTRUMENTS, get_instrument, with_item_texts
from .scoring import score, score_values

__all__ = [
    "INSTRUMENTS",
    "SETTINGS",
    "Band",
    "ChangeFinding",
    "ComparisonResult",
    "CssrsRisk",
    "CssrsTriage",
    "Flag",
    "FlagKind",
    "Instrument",
    "InstrumentError",
    "InstrumentInputError",
    "InstrumentOptions",
    "Item",
    "ScoreResult",
    "Setting",
    "Subscore",
    "UnknownInstrumentError",
    "compare",
    "get_instrument",
    "score",
    "score_values",
    "with_item_texts",
]
