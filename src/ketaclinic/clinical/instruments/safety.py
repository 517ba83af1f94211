"""Suicidality flags read back from stored results, for the pre-dose gate and other same-day checks.

A stored administration keeps ``ScoreResult.to_dict()["flags"]``: a list of dicts with ``kind``, ``code``,
``rule``, ``text`` (and ``source``, ``confirmed``). ``suicidality_flags(instrument, flags)`` returns the
suicidality ones as typed values; ``suicidality_reason`` joins them into one line for staff.

A flag counts as suicidality when its ``kind`` says so or when its ``code`` is one of the instruments'
suicidality flag codes (so a stored dict that lost its kind is still caught). Pass ``answers`` to re-score
the stored answers with today's definitions as well: a result stored under an older definition (MADRS and
C-SSRS version 1 raised no flag for item 10 or for a low-triage yes) then still shows its flag.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .errors import InstrumentError
from .model import FlagKind
from .registry import INSTRUMENTS
from .scoring import score

#: Flag codes of kind SUICIDALITY, from the instrument definitions.
SUICIDALITY_FLAG_CODES: Final = frozenset(
    rule.code
    for instrument in INSTRUMENTS.values()
    for rule in instrument.flag_rules
    if rule.kind is FlagKind.SUICIDALITY
)

#: Instruments that carry a suicidality item (phq9, qids-sr16, madrs, cssrs-screen).
SUICIDALITY_INSTRUMENTS: Final = frozenset(
    code
    for code, instrument in INSTRUMENTS.items()
    if any(rule.kind is FlagKind.SUICIDALITY for rule in instrument.flag_rules)
)


@dataclass(frozen=True)
class SuicidalityFlag:
    instrument: str  # instrument code, e.g. "madrs"
    instrument_name: str  # e.g. "MADRS"
    code: str  # flag code, e.g. "madrs_item10_suicidality"
    rule: str
    text: str  # what was found, with the values ("" when the stored flag had none)

    @property
    def reason(self) -> str:
        """One line for staff: '<instrument>: <what was found>'."""
        return f"{self.instrument_name}: {self.text or self.rule}"


def _is_suicidality(flag: Mapping[str, object]) -> bool:
    return flag.get("kind") == FlagKind.SUICIDALITY.value or flag.get("code") in SUICIDALITY_FLAG_CODES


def suicidality_flags(
    instrument: str,
    flags: Iterable[Mapping[str, object]],
    *,
    answers: Mapping[str, int] | None = None,
) -> tuple[SuicidalityFlag, ...]:
    """The suicidality flags among ``flags`` (the stored list) of one administration of ``instrument``.

    With ``answers``, the answers are also re-scored with the current definitions and any suicidality flag
    found there that is not stored is added (same code counted once). Answers that no longer score (an
    item changed) leave the stored flags as they are.
    """
    definition = INSTRUMENTS.get(instrument)
    name = definition.name if definition is not None else instrument
    found: dict[str, SuicidalityFlag] = {}
    for flag in flags:
        if not _is_suicidality(flag):
            continue
        code = str(flag.get("code") or "")
        found.setdefault(
            code or f"#{len(found)}",
            SuicidalityFlag(
                instrument=instrument,
                instrument_name=name,
                code=code,
                rule=str(flag.get("rule") or ""),
                text=str(flag.get("text") or ""),
            ),
        )
    if answers is not None and definition is not None:
        try:
            rescored = score(instrument, answers)
        except InstrumentError:
            rescored = None
        for new in rescored.flags if rescored is not None else ():
            if new.kind is FlagKind.SUICIDALITY and new.code not in found:
                found[new.code] = SuicidalityFlag(instrument, name, new.code, new.rule, new.text)
    return tuple(found.values())


def suicidality_reason(
    instrument: str,
    flags: Iterable[Mapping[str, object]],
    *,
    answers: Mapping[str, int] | None = None,
) -> str:
    """The suicidality flags as one line for staff ("" when there are none)."""
    return "; ".join(f.reason for f in suicidality_flags(instrument, flags, answers=answers))
