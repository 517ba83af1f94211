"""Data types for rating-scale definitions and their results.

An instrument is plain data (``Instrument``): its items, allowed values, score range, severity bands,
subscales, flag rules and change rules, each fact carrying its ``source`` and whether the reference marks
it confirmed. The scoring code in ``scoring.py`` and ``change.py`` reads these definitions; it holds no
numbers of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class TotalRule(StrEnum):
    """How an instrument's total is formed from its items."""

    SUM_ITEMS = "sum_items"  # total = sum of every item
    SUM_SUBSCALES = "sum_subscales"  # total = sum of the subscale scores (QIDS-SR16 domains)
    NONE = "none"  # no total (C-SSRS screener, BPI-SF: results live in risk/subscores)


class SubscaleMethod(StrEnum):
    SUM = "sum"
    MEAN = "mean"
    MAX = "max"


class FlagKind(StrEnum):
    """What a flag asks staff to act on. SUICIDALITY/MANIA/SEDATION/DISSOCIATION are safety flags."""

    SUICIDALITY = "suicidality"
    MANIA = "mania"
    SEDATION = "sedation"
    DISSOCIATION = "dissociation"
    SCREEN = "screen"  # a screening cut-off or diagnostic pattern is met (not an emergency)


class CssrsRisk(StrEnum):
    """C-SSRS screener triage level (clinical.md §8)."""

    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]


_RISK_RANK: dict[CssrsRisk, int] = {
    CssrsRisk.NONE: 0,
    CssrsRisk.LOW: 1,
    CssrsRisk.MODERATE: 2,
    CssrsRisk.HIGH: 3,
}


class ChangeKind(StrEnum):
    """How a change rule compares a baseline and a current score (lower score = better, except MOAA/S)."""

    REDUCTION_PCT_AT_LEAST = "reduction_pct_at_least"  # (baseline - current) / baseline * 100 >= t
    CURRENT_AT_MOST = "current_at_most"  # current <= t
    CURRENT_BELOW = "current_below"  # current < t
    REDUCTION_POINTS_AT_LEAST = "reduction_points_at_least"  # baseline - current >= t
    INCREASE_POINTS_AT_LEAST = "increase_points_at_least"  # current - baseline >= t
    ANY_DECREASE = "any_decrease"  # current < baseline


@dataclass(frozen=True)
class LoincCode:
    code: str
    display: str = ""
    confirmed: bool = True
    source: str = "interop.md §1.6"


@dataclass(frozen=True)
class ResponseOption:
    value: int
    label: str
    loinc_answer: LoincCode | None = None


@dataclass(frozen=True)
class Item:
    """One item. ``id`` is the key the app stores answers under ({item_id: int})."""

    id: str
    title: str
    low: int
    high: int
    text: str | None = None  # published wording, only where certain word for word
    options: tuple[ResponseOption, ...] = ()
    loinc: LoincCode | None = None
    # (item id, value): the item is asked only when that item has that answer (C-SSRS skip logic).
    asked_if: tuple[str, int] | None = None
    note: str | None = None

    @property
    def values(self) -> range:
        return range(self.low, self.high + 1)


@dataclass(frozen=True)
class ScoreRange:
    low: int
    high: int
    source: str
    confirmed: bool = True


@dataclass(frozen=True)
class Band:
    """A severity band; ``low`` and ``high`` are inclusive."""

    label: str
    low: int
    high: int
    source: str
    confirmed: bool = True

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Subscale:
    key: str
    label: str
    items: tuple[str, ...]
    method: SubscaleMethod
    low: int
    high: int
    source: str
    confirmed: bool = True


@dataclass(frozen=True)
class FlagRule:
    """A rule that raises a flag; the logic lives in scoring.py under the same ``code``."""

    code: str
    kind: FlagKind
    rule: str  # one line for staff: what triggers it
    source: str
    confirmed: bool = True


@dataclass(frozen=True)
class ChangeRule:
    """A change-from-baseline rule evaluated by ``compare``.

    ``threshold`` is the reference default; when ``option`` names an ``InstrumentOptions`` field, that
    field's value is used instead (and a None value there means "not evaluated").
    """

    code: str
    label: str
    kind: ChangeKind
    threshold: int | None
    source: str
    confirmed: bool = True
    option: str | None = None
    measure: str = "total"
    flag_kind: FlagKind | None = None  # set when meeting the rule is itself a safety flag


@dataclass(frozen=True)
class Instrument:
    code: str  # registry / CLI code, e.g. "phq9"
    name: str
    version: str  # revision of this ketaclinic definition; stored with every result
    form: str  # the published form this definition follows
    items: tuple[Item, ...]
    source: str
    total_rule: TotalRule = TotalRule.SUM_ITEMS
    score_range: ScoreRange | None = None
    recall_period: str | None = None
    bands: tuple[Band, ...] = ()
    subscales: tuple[Subscale, ...] = ()
    flag_rules: tuple[FlagRule, ...] = ()
    change_rules: tuple[ChangeRule, ...] = ()
    loinc_panel: LoincCode | None = None
    loinc_total: LoincCode | None = None
    text_source: str | None = None  # where the item wording came from, if any is stored
    notes: tuple[str, ...] = ()

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def subscale(self, key: str) -> Subscale:
        for sub in self.subscales:
            if sub.key == key:
                return sub
        raise KeyError(key)

    def band_for(self, total: float) -> Band | None:
        for band in self.bands:
            if band.contains(total):
                return band
        return None


@dataclass(frozen=True)
class Flag:
    code: str
    kind: FlagKind
    rule: str  # the rule, one line
    text: str  # this result: what was found, with the values
    source: str
    confirmed: bool

    @property
    def is_safety(self) -> bool:
        return self.kind is not FlagKind.SCREEN

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "kind": self.kind.value,
            "rule": self.rule,
            "text": self.text,
            "source": self.source,
            "confirmed": self.confirmed,
        }


@dataclass(frozen=True)
class Subscore:
    key: str
    label: str
    value: int | float
    low: int
    high: int
    items: tuple[str, ...]


@dataclass(frozen=True)
class ScoreResult:
    instrument: str
    name: str
    version: str
    total: int | None
    total_range: tuple[int, int] | None
    band: Band | None
    subscores: Mapping[str, Subscore]
    flags: tuple[Flag, ...]
    answers: Mapping[str, int]
    risk: CssrsRisk | None = None
    notes: tuple[str, ...] = ()

    @property
    def suicidality(self) -> bool:
        return any(f.kind is FlagKind.SUICIDALITY for f in self.flags)

    def to_dict(self) -> dict[str, object]:
        """JSON shape: {"instrument", "total", "band", "flags": [...], "subscores": {...}} plus extras."""
        band: dict[str, object] | None = None
        if self.band is not None:
            band = {"label": self.band.label, "low": self.band.low, "high": self.band.high}
        out: dict[str, object] = {
            "instrument": self.instrument,
            "total": self.total,
            "band": band,
            "flags": [f.to_dict() for f in self.flags],
            "subscores": {k: s.value for k, s in self.subscores.items()},
            "version": self.version,
        }
        if self.risk is not None:
            out["risk"] = self.risk.value
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class ChangeFinding:
    code: str
    label: str
    met: bool | None  # None: cannot be evaluated (e.g. percent change from a baseline of 0)
    threshold: int | None
    source: str
    confirmed: bool


@dataclass(frozen=True)
class ComparisonResult:
    instrument: str
    version: str
    measure: str
    baseline: int | float
    current: int | float
    change: int | float  # current - baseline (negative = lower score)
    percent_change: float | None  # (current - baseline) / baseline * 100; None when baseline is 0
    findings: tuple[ChangeFinding, ...]
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def finding(self, code: str) -> ChangeFinding | None:
        for f in self.findings:
            if f.code == code:
                return f
        return None

    @property
    def response(self) -> bool | None:
        f = self.finding("response")
        return None if f is None else f.met

    @property
    def remission(self) -> bool | None:
        f = self.finding("remission")
        return None if f is None else f.met

    def to_dict(self) -> dict[str, object]:
        return {
            "instrument": self.instrument,
            "version": self.version,
            "measure": self.measure,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "percent_change": self.percent_change,
            "findings": [
                {
                    "code": f.code,
                    "label": f.label,
                    "met": f.met,
                    "threshold": f.threshold,
                    "source": f.source,
                    "confirmed": f.confirmed,
                }
                for f in self.findings
            ],
            "flags": [f.to_dict() for f in self.flags],
            "notes": list(self.notes),
        }
