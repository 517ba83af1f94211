"""Esketamine label adverse-reaction terms and adverse-event grading enums (pure data).

The table is the SPRAVATO label's TRD short-term pooled adverse reactions (SPRAVATO + oral AD, N=346,
vs placebo + oral AD, N=222), as given in clinical.md §2.6 (spravatohcp.com / label table). Percentages
are the share of patients with the reaction. Severity and seriousness are the recording categories the
app uses; their definitions are not in the reference and the clinic's AE policy applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class AeSeverity(StrEnum):
    """How intense the event was, as the clinician grades it (definitions per clinic AE policy)."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class AeSeriousness(StrEnum):
    """Whether the event is serious (reportable on the REMS form's serious-AE question, clinical.md §2.4)."""

    NON_SERIOUS = "non_serious"
    SERIOUS = "serious"


@dataclass(frozen=True, slots=True, kw_only=True)
class AdverseReactionTerm:
    term: str
    esketamine_pct: float
    placebo_pct: float
    source: str


LABEL_TABLE_SOURCE: Final = (
    "clinical.md §2.6: SPRAVATO label, TRD short-term pooled (SPRAVATO+AD N=346 vs placebo+AD N=222)"
)

_ROWS: Final[tuple[tuple[str, float, float], ...]] = (
    ("Dissociation", 41, 9),
    ("Dizziness", 29, 8),
    ("Nausea", 28, 9),
    ("Sedation", 23, 9),
    ("Vertigo", 23, 3),
    ("Headache", 20, 17),
    ("Dysgeusia", 19, 14),
    ("Hypoesthesia", 18, 2),
    ("Anxiety", 13, 6),
    ("Lethargy", 11, 5),
    ("Blood pressure increased", 10, 3),
    ("Vomiting", 9, 2),
    ("Insomnia", 8, 7),
    ("Diarrhea", 7, 6),
    ("Nasal discomfort", 7, 5),
    ("Throat irritation", 7, 4),
    ("Feeling drunk", 5, 0.5),
    ("Dry mouth", 5, 3),
    ("Euphoric mood", 4, 1),
    ("Dysarthria", 4, 0),
    ("Tremor", 3, 1),
    ("Tachycardia", 2, 0.5),
)

#: The label's adverse reactions, most frequent first.
LABEL_ADVERSE_REACTIONS: Final[tuple[AdverseReactionTerm, ...]] = tuple(
    AdverseReactionTerm(term=t, esketamine_pct=e, placebo_pct=p, source=LABEL_TABLE_SOURCE)
    for t, e, p in _ROWS
)

_BY_NAME: Final[Mapping[str, AdverseReactionTerm]] = {t.term.casefold(): t for t in LABEL_ADVERSE_REACTIONS}


def find_term(name: str) -> AdverseReactionTerm | None:
    """The label term called ``name`` (case and surrounding spaces ignored), or None."""
    return _BY_NAME.get(name.strip().casefold())


#: Events the REMS Patient Monitoring Form asks about (clinical.md §2.4).
REMS_MONITORED_EVENTS: Final[tuple[str, ...]] = ("Sedation", "Dissociation", "Respiratory depression")
