"""Building blocks shared by the instrument definitions (rules used by more than one scale)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .model import ChangeKind, ChangeRule, Item, LoincCode, ResponseOption


def numbered_items(
    titles: Sequence[str],
    low: int,
    high: int,
    *,
    texts: Sequence[str | None] | None = None,
    loinc: Sequence[str] | None = None,
    options: tuple[ResponseOption, ...] = (),
    first: int = 1,
) -> tuple[Item, ...]:
    """Items with ids "1", "2", … in published order, all with the same value range."""
    if texts is not None and len(texts) != len(titles):
        raise ValueError("texts and titles differ in length")
    if loinc is not None and len(loinc) != len(titles):
        raise ValueError("loinc and titles differ in length")
    return tuple(
        Item(
            id=str(first + i),
            title=title,
            low=low,
            high=high,
            text=None if texts is None else texts[i],
            options=options,
            loinc=None if loinc is None else LoincCode(loinc[i]),
        )
        for i, title in enumerate(titles)
    )


DEPRESSION_RESPONSE: Final = ChangeRule(
    code="response",
    label="Response: ≥50% reduction from baseline",
    kind=ChangeKind.REDUCTION_PCT_AT_LEAST,
    threshold=50,
    source="clinical.md §0 (ELEKT-D, Anand NEJM 2023; McInnes JAD 2022; TRANSFORM-3 PMC7894501)",
)

# IMMPACT pain-change tiers (clinical.md §0 and §8; Dworkin J Pain 2008; Farrar Pain 2001).
IMMPACT_SOURCE: Final = "clinical.md §0/§8 (IMMPACT: Dworkin, J Pain 2008; Farrar, Pain 2001)"


def immpact_rules(measure: str = "total") -> tuple[ChangeRule, ...]:
    return (
        ChangeRule(
            code="immpact_minimal",
            label="Minimally important improvement: ≥10% reduction (IMMPACT 10–20%)",
            kind=ChangeKind.REDUCTION_PCT_AT_LEAST,
            threshold=10,
            source=IMMPACT_SOURCE,
            measure=measure,
        ),
        ChangeRule(
            code="immpact_moderate",
            label="Moderately important improvement: ≥30% reduction (IMMPACT)",
            kind=ChangeKind.REDUCTION_PCT_AT_LEAST,
            threshold=30,
            source=IMMPACT_SOURCE,
            measure=measure,
        ),
        ChangeRule(
            code="immpact_substantial",
            label="Substantial improvement: ≥50% reduction (IMMPACT)",
            kind=ChangeKind.REDUCTION_PCT_AT_LEAST,
            threshold=50,
            source=IMMPACT_SOURCE,
            measure=measure,
        ),
    )
