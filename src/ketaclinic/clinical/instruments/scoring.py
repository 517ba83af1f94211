"""``score``: total, band, subscores, C-SSRS triage and flags for one set of answers.

Numbers come from the instrument definitions (defs_*.py) and ``InstrumentOptions``; this module holds
only the arithmetic and the flag logic, keyed by the flag codes those definitions declare.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .defs_trauma import PCL5_CLUSTERS, PCL5_CLUSTERS_NEEDED, PCL5_ENDORSED_MIN_ITEM
from .model import (
    CssrsRisk,
    Flag,
    Instrument,
    ScoreResult,
    Subscale,
    SubscaleMethod,
    Subscore,
    TotalRule,
)
from .options import DEFAULT_OPTIONS, InstrumentOptions
from .registry import get_instrument
from .validation import validate_answers, validate_values


def score(code: str, answers: Mapping[str, int], *, options: InstrumentOptions | None = None) -> ScoreResult:
    """Score one completed form. ``answers`` maps item id (text, e.g. "9") to the answer value.

    Raises ``InstrumentInputError`` naming every missing, unknown, non-integer or out-of-range item, and
    ``UnknownInstrumentError`` for an unknown code.
    """
    instrument = get_instrument(code)
    valid = validate_answers(instrument, answers)
    return _score_valid(instrument, valid, options or DEFAULT_OPTIONS)


def score_values(
    code: str, values: Sequence[object], *, options: InstrumentOptions | None = None
) -> ScoreResult:
    """Score values given in published item order (see each instrument's ``items``)."""
    instrument = get_instrument(code)
    valid = validate_values(instrument, values)
    return _score_valid(instrument, valid, options or DEFAULT_OPTIONS)


def subscale_value(sub: Subscale, answers: Mapping[str, int]) -> int | float:
    values = [answers.get(i, 0) for i in sub.items]
    if sub.method is SubscaleMethod.MEAN:
        return sum(values) / len(values)
    if sub.method is SubscaleMethod.MAX:
        return max(values)
    return sum(values)


def _score_valid(
    instrument: Instrument, answers: Mapping[str, int], options: InstrumentOptions
) -> ScoreResult:
    subscores = {
        sub.key: Subscore(sub.key, sub.label, subscale_value(sub, answers), sub.low, sub.high, sub.items)
        for sub in instrument.subscales
    }
    total: int | None
    if instrument.total_rule is TotalRule.SUM_ITEMS:
        total = sum(answers.values())
    elif instrument.total_rule is TotalRule.SUM_SUBSCALES:
        # QIDS-SR16: every domain is a max or a single item of whole numbers.
        total = sum(int(s.value) for s in subscores.values())
    else:
        total = None
    band = None if total is None else instrument.band_for(total)
    rng = instrument.score_range
    ctx = _Context(instrument, answers, total, options)
    flags = _FLAG_LOGIC.get(instrument.code, _no_flags)(ctx)
    return ScoreResult(
        instrument=instrument.code,
        name=instrument.name,
        version=instrument.version,
        total=total,
        total_range=None if rng is None else (rng.low, rng.high),
        band=band,
        subscores=subscores,
        flags=tuple(flags),
        answers=dict(answers),
        risk=ctx.risk,
        notes=tuple(ctx.notes),
    )


class _Context:
    def __init__(
        self,
        instrument: Instrument,
        answers: Mapping[str, int],
        total: int | None,
        options: InstrumentOptions,
    ) -> None:
        self.instrument = instrument
        self.answers = answers
        self.total = total
        self.options = options
        self.risk: CssrsRisk | None = None
        self.notes: list[str] = []

    def flag(self, code: str, text: str) -> Flag:
        rules = {r.code: r for r in self.instrument.flag_rules}
        rule = rules[code]  # every flag raised here is declared in the instrument's data
        return Flag(
            code=code, kind=rule.kind, rule=rule.rule, text=text, source=rule.source, confirmed=rule.confirmed
        )

    def item(self, item_id: str) -> int:
        return self.answers.get(item_id, 0)

    def total_value(self) -> int:
        assert self.total is not None
        return self.total


def _no_flags(ctx: _Context) -> list[Flag]:
    return []


def _phq9(ctx: _Context) -> list[Flag]:
    flags = []
    total = ctx.total_value()
    item9 = ctx.item("9")
    if item9 > 0:
        flags.append(
            ctx.flag(
                "phq9_item9_suicidality",
                f"PHQ-9 item 9 is {item9} (above 0): thoughts of being better off dead or of self-harm. "
                f"Follow up now, whatever the total ({total}).",
            )
        )
    if total >= 10:
        flags.append(
            ctx.flag(
                "phq9_total_ge_10",
                f"PHQ-9 total {total} is at or above 10, the cut-off for major depression.",
            )
        )
    return flags


def _gad7(ctx: _Context) -> list[Flag]:
    total = ctx.total_value()
    if total >= 10:
        return [
            ctx.flag(
                "gad7_total_ge_10",
                f"GAD-7 total {total} is at or above 10: evaluate further for generalized anxiety disorder.",
            )
        ]
    return []


def _qids(ctx: _Context) -> list[Flag]:
    item12 = ctx.item("12")
    if item12 > 0:
        return [
            ctx.flag(
                "qids_item12_suicidality",
                f"QIDS-SR16 item 12 (thoughts of death or suicide) is {item12} (above 0): "
                "follow up on suicidality.",
            )
        ]
    return []


def _madrs(ctx: _Context) -> list[Flag]:
    item10 = ctx.item("10")
    above = ctx.options.madrs_item10_flag_above
    if item10 > above:
        return [
            ctx.flag(
                "madrs_item10_suicidality",
                f"MADRS item 10 (suicidal thoughts) is {item10} (above {above}): follow up on suicidality "
                f"(threshold {above} is a clinic default, unconfirmed: the reference gives no item-10 cut-off).",
            )
        ]
    return []


def _ymrs(ctx: _Context) -> list[Flag]:
    total = ctx.total_value()
    threshold = ctx.options.ymrs_mania_threshold
    if total > threshold:
        return [
            ctx.flag(
                "ymrs_possible_mania",
                f"YMRS total {total} is above {threshold}: possible mania. Review before the next dose "
                f"(threshold {threshold} is a clinic setting, not a published cut-off).",
            )
        ]
    return []


def _pcl5(ctx: _Context) -> list[Flag]:
    flags = []
    total = ctx.total_value()
    cut = ctx.options.pcl5_cutpoint
    if total >= cut:
        flags.append(
            ctx.flag(
                "pcl5_provisional_ptsd_cutpoint",
                f"PCL-5 total {total} is at or above the provisional PTSD cut-point {cut}.",
            )
        )
    endorsed = {
        name: sum(1 for i in items if ctx.item(i) >= PCL5_ENDORSED_MIN_ITEM)
        for name, items in PCL5_CLUSTERS.items()
    }
    counts = ", ".join(f"{name} {n}" for name, n in endorsed.items())
    needed = ", ".join(f"{name} ≥{n}" for name, n in PCL5_CLUSTERS_NEEDED.items())
    if all(endorsed[name] >= n for name, n in PCL5_CLUSTERS_NEEDED.items()):
        flags.append(
            ctx.flag(
                "pcl5_dsm5_pattern",
                f"PCL-5 items rated 2 or more per cluster: {counts}. This meets the DSM-5 pattern "
                f"(needs {needed}); confirm with a clinical interview.",
            )
        )
    else:
        ctx.notes.append(
            f"DSM-5 pattern not met: items rated 2 or more per cluster: {counts} (needs {needed})."
        )
    return flags


def _cadss(ctx: _Context) -> list[Flag]:
    threshold = ctx.options.cadss_presence_threshold
    total = ctx.total_value()
    if threshold is not None and total > threshold:
        return [
            ctx.flag(
                "cadss_dissociation_present",
                f"CADSS total {total} is above {threshold}: dissociation present "
                "(threshold not validated in the reference).",
            )
        ]
    return []


def cssrs_risk(answers: Mapping[str, int], options: InstrumentOptions) -> tuple[CssrsRisk, list[str]]:
    """Triage level (highest over the endorsed answers) and the reasons, e.g. 'item 3 yes → moderate'."""
    triage = options.cssrs_triage
    levels: list[tuple[str, CssrsRisk]] = []
    by_item = {
        "1": triage.item1,
        "2": triage.item2,
        "3": triage.item3,
        "4": triage.item4,
        "5": triage.item5,
    }
    for item_id, level in by_item.items():
        if answers.get(item_id, 0) == 1:
            levels.append((f"item {item_id} yes", level))
    if answers.get("6", 0) == 1:
        if answers.get("6_recent", 0) == 1:
            levels.append(("item 6 yes, within the past 3 months", triage.item6_past_3_months))
        else:
            levels.append(("item 6 yes, more than 3 months ago", triage.item6_older))
    if not levels:
        return CssrsRisk.NONE, []
    risk = max((level for _, level in levels), key=lambda r: r.rank)
    return risk, [f"{why} → {level.value}" for why, level in levels]


def _cssrs(ctx: _Context) -> list[Flag]:
    risk, reasons = cssrs_risk(ctx.answers, ctx.options)
    ctx.risk = risk
    ctx.notes.append(
        "Triage: "
        + ("; ".join(reasons) if reasons else "no yes answers → none")
        + " (mapping marked [verify] in the reference)."
    )
    if not reasons:
        return []
    # Any yes is suicidal ideation or behaviour: flagged whatever its triage level (a clinic may map an
    # answer to "none" in cssrs_triage; the yes is still flagged and the level shown).
    if risk in (CssrsRisk.MODERATE, CssrsRisk.HIGH):
        action = "Suicide-risk follow-up needed."
    else:
        action = "Suicidal ideation: a clinician reviews it the same day (clinic policy)."
    return [
        ctx.flag(
            "cssrs_suicide_risk",
            f"C-SSRS screener triage: {risk.value} risk ({'; '.join(reasons)}). {action}",
        )
    ]


def _moaas(ctx: _Context) -> list[Flag]:
    if ctx.item("moaas") == 0:
        return [ctx.flag("moaas_loss_of_consciousness", "MOAA/S is 0: loss of consciousness.")]
    return []


_FLAG_LOGIC: dict[str, Callable[[_Context], list[Flag]]] = {
    "phq9": _phq9,
    "gad7": _gad7,
    "madrs": _madrs,
    "qids-sr16": _qids,
    "ymrs": _ymrs,
    "pcl5": _pcl5,
    "cadss": _cadss,
    "cssrs-screen": _cssrs,
    "moaas": _moaas,
}
