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
- ``suicidality_flags(instrument, stored_flags, *, answers=None) -> tuple[SuicidalityFlag, ...]`` and
  ``suicidality_reason(...) -> str``: the suicidality flags of a stored administration (pre-dose gate);
  ``SUICIDALITY_INSTRUMENTS``: the instruments with a suicidality item (phq9, qids-sr16, madrs,
  cssrs-screen).

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
from .safety import (
    SUICIDALITY_FLAG_CODES,
    SUICIDALITY_INSTRUMENTS,
    SuicidalityFlag,
    suicidality_flags,
    suicidality_reason,
)
from .scoring import score, score_values

__all__ = [
    "INSTRUMENTS",
    "SETTINGS",
    "SUICIDALITY_FLAG_CODES",
    "SUICIDALITY_INSTRUMENTS",
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
    "SuicidalityFlag",
    "UnknownInstrumentError",
    "compare",
    "get_instrument",
    "score",
    "score_values",
    "suicidality_flags",
    "suicidality_reason",
    "with_item_texts",
]
