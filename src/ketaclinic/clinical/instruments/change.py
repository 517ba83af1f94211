"""``compare``: change from baseline, percent change, and the instrument's change rules.

Rules are data (``Instrument.change_rules``); thresholds that the reference leaves open come from
``InstrumentOptions``. Arithmetic is exact (fractions), so a 50% rule is met at exactly 50%.
"""

from __future__ import annotations

from fractions import Fraction

from .errors import InstrumentInputError
from .model import (
    ChangeFinding,
    ChangeKind,
    ChangeRule,
    ComparisonResult,
    Flag,
    Instrument,
    SubscaleMethod,
    TotalRule,
)
from .options import DEFAULT_OPTIONS, InstrumentOptions
from .registry import get_instrument

# BPI subscores are means of 4 or 7 whole numbers; a float such as 22/7 is turned back into that exact
# fraction before comparing, so 1-point and percentage rules are not missed by rounding.
_MAX_DENOMINATOR = 10_000


def compare(
    code: str,
    baseline_total: int | float,
    current_total: int | float,
    *,
    measure: str | None = None,
    options: InstrumentOptions | None = None,
) -> ComparisonResult:
    """Compare a current score with the baseline.

    ``measure`` is "total" (default) or a subscore key; BPI-SF has no total and needs "severity" or
    "interference". Raises ``InstrumentInputError`` naming every bad value.
    """
    instrument = get_instrument(code)
    opts = options or DEFAULT_OPTIONS
    measure_key, low, high, whole = _measure(instrument, measure)
    errors: dict[str, str] = {}
    for name, value in (("baseline", baseline_total), ("current", current_total)):
        reason = _check(name, value, low, high, whole)
        if reason is not None:
            errors[name] = reason
    if errors:
        raise InstrumentInputError(f"{instrument.name} change from baseline", errors)

    base = _exact(baseline_total)
    now = _exact(current_total)
    diff = now - base
    change: int | float = int(diff) if diff.denominator == 1 and whole else float(diff)
    percent = None if base == 0 else float(diff / base * 100)

    findings: list[ChangeFinding] = []
    flags: list[Flag] = []
    notes: list[str] = []
    rules = [r for r in instrument.change_rules if r.measure == measure_key]
    for rule in rules:
        threshold = rule.threshold if rule.option is None else opts.threshold(rule.option)
        if rule.option is not None and threshold is None:
            notes.append(
                f"{rule.label}: not evaluated. The reference gives no threshold; "
                f"set {rule.option} to use one."
            )
            continue
        met = _met(rule, base, now, threshold)
        findings.append(
            ChangeFinding(
                code=rule.code,
                label=rule.label,
                met=met,
                threshold=threshold,
                source=rule.source,
                confirmed=rule.confirmed,
            )
        )
        if met and rule.flag_kind is not None:
            flags.append(_change_flag(instrument, rule, baseline_total, current_total))
    if base == 0:
        notes.append("Percent change is undefined from a baseline of 0; percentage rules are not evaluated.")
    if not rules:
        notes.append("The reference gives no change-from-baseline rule for this scale or measure.")

    return ComparisonResult(
        instrument=instrument.code,
        version=instrument.version,
        measure=measure_key,
        baseline=baseline_total,
        current=current_total,
        change=change,
        percent_change=percent,
        findings=tuple(findings),
        flags=tuple(flags),
        notes=tuple(notes),
    )


def _measure(instrument: Instrument, measure: str | None) -> tuple[str, int, int, bool]:
    """(measure key, low, high, whole numbers only) for the chosen measure."""
    key = measure or "total"
    if key == "total":
        rng = instrument.score_range
        if instrument.total_rule is not TotalRule.NONE and rng is not None:
            return key, rng.low, rng.high, True
        choices = [s.key for s in instrument.subscales]
        hint = f"choose measure {' or '.join(repr(c) for c in choices)}" if choices else "nothing to compare"
        raise InstrumentInputError(
            f"{instrument.name} change from baseline",
            {"measure": f"measure: {instrument.name} has no total score; {hint}"},
        )
    for sub in instrument.subscales:
        if sub.key == key:
            return key, sub.low, sub.high, sub.method is not SubscaleMethod.MEAN
    known = ", ".join(["total", *(s.key for s in instrument.subscales)])
    raise InstrumentInputError(
        f"{instrument.name} change from baseline",
        {"measure": f"measure: {key!r} is not a score of {instrument.name} (choose from: {known})"},
    )


def _check(name: str, value: object, low: int, high: int, whole: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name}: {value!r} is not a number"
    if whole and not isinstance(value, int):
        return f"{name}: {value} is not a whole number"
    if value != value or not low <= value <= high:  # NaN fails the first test
        return f"{name}: {value} is outside {low}–{high}"
    return None


def _exact(value: int | float) -> Fraction:
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(value).limit_denominator(_MAX_DENOMINATOR)


def _met(rule: ChangeRule, base: Fraction, now: Fraction, threshold: int | None) -> bool | None:
    kind = rule.kind
    if kind is ChangeKind.ANY_DECREASE:
        return now < base
    assert threshold is not None, f"change rule {rule.code} needs a threshold"
    if kind is ChangeKind.REDUCTION_PCT_AT_LEAST:
        if base == 0:
            return None
        return (base - now) * 100 >= threshold * base
    if kind is ChangeKind.CURRENT_AT_MOST:
        return now <= threshold
    if kind is ChangeKind.CURRENT_BELOW:
        return now < threshold
    if kind is ChangeKind.REDUCTION_POINTS_AT_LEAST:
        return base - now >= threshold
    if kind is ChangeKind.INCREASE_POINTS_AT_LEAST:
        return now - base >= threshold
    raise AssertionError(f"unhandled change rule kind {kind}")


def _change_flag(
    instrument: Instrument, rule: ChangeRule, baseline: int | float, current: int | float
) -> Flag:
    declared = {r.code: r for r in instrument.flag_rules}[rule.code]
    return Flag(
        code=rule.code,
        kind=declared.kind,
        rule=declared.rule,
        # Only MOAA/S declares a flagging change rule (any decrease from the pre-dose value).
        text=f"{instrument.name} {current} is lower than the pre-dose value {baseline}: sedation.",
        source=declared.source,
        confirmed=declared.confirmed,
    )
