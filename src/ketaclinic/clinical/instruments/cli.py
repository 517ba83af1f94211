"""``ketaclinic score INSTRUMENT VALUE... [--json]``: score a rating scale from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
from typing import NoReturn

from .change import compare
from .errors import InstrumentInputError
from .model import ComparisonResult, Flag, Instrument, ScoreResult
from .options import InstrumentOptions
from .registry import INSTRUMENTS
from .scoring import score_values
from .validation import describe_items


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _value_order(instrument: Instrument) -> str:
    if instrument.code == "cssrs-screen":
        return (
            "items 1–6 as 0/1 (1 = yes), then 1 if the item-6 behavior was within the past 3 months, "
            "else 0 (7 values)"
        )
    if instrument.code == "bpi-sf":
        return "worst, least, average, now, then the 7 interference items: " + ", ".join(
            i.id for i in instrument.items[4:]
        )
    if len(instrument.items) == 1:
        item = instrument.items[0]
        return f"1 value, {item.low}–{item.high}"
    by_range: dict[tuple[int, int], list[str]] = {}
    for item in instrument.items:
        by_range.setdefault((item.low, item.high), []).append(item.id)
    common = max(by_range, key=lambda r: len(by_range[r]))
    parts = [
        f"items {', '.join(ids)} {low}–{high}"
        for (low, high), ids in by_range.items()
        if (low, high) != common
    ]
    others = "each" if not parts else "the others"
    parts.append(f"{others} {common[0]}–{common[1]}")
    return f"{len(instrument.items)} values, items {describe_items(instrument)}; " + "; ".join(parts)


def _epilog() -> str:
    lines = ["Scales and the order of their values:"]
    for code, instrument in INSTRUMENTS.items():
        lines.append(f"  {code:<14} {instrument.name}: {_value_order(instrument)}")
    lines += [
        "",
        "Examples:",
        "  ketaclinic score phq9 1 1 2 1 0 1 2 1 0",
        "  ketaclinic score moaas 3 --pre-dose 5 --json",
        "",
        "Exit codes: 0 scored; 2 invalid input (the reason for every bad value is printed).",
    ]
    return "\n".join(lines)


def _parser() -> _Parser:
    parser = _Parser(
        prog="ketaclinic score",
        description=textwrap.fill(
            "Score a completed rating scale. Give the answers in the order the form prints them. "
            "Safety flags (suicidality, possible mania, sedation, dissociation) are listed with the rule "
            "that raised them and its source; 'unconfirmed' marks a rule or threshold the reference does "
            "not confirm (a clinic default, not a published cut-off).",
            width=88,
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("instrument", choices=list(INSTRUMENTS), metavar="INSTRUMENT", help="scale code")
    parser.add_argument("values", nargs="+", metavar="VALUE", help="answers in published item order")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--pre-dose",
        type=int,
        metavar="N",
        help="moaas only: the pre-dose MOAA/S, to check for sedation (any decrease)",
    )
    parser.add_argument(
        "--ymrs-threshold",
        type=int,
        metavar="N",
        help="ymrs only: flag possible mania above this total (default 12, unconfirmed)",
    )
    parser.add_argument(
        "--madrs-item10-above",
        type=int,
        metavar="N",
        help="madrs only: flag suicidality when item 10 is above N, 0–5 (default 0, unconfirmed)",
    )
    parser.add_argument(
        "--pcl5-cutpoint",
        type=int,
        metavar="N",
        help="pcl5 only: provisional PTSD cut-point, 31–33 (default 33)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        code: str = args.instrument
        for flag, owner in (
            ("pre_dose", "moaas"),
            ("ymrs_threshold", "ymrs"),
            ("madrs_item10_above", "madrs"),
            ("pcl5_cutpoint", "pcl5"),
        ):
            if getattr(args, flag) is not None and code != owner:
                raise _UsageError(f"--{flag.replace('_', '-')} applies to {owner} only")
    except _UsageError as exc:
        print(f"ketaclinic score: error: {exc}", file=sys.stderr)
        return 2
    try:
        options = InstrumentOptions()
        if args.ymrs_threshold is not None:
            options = dataclasses.replace(options, ymrs_mania_threshold=args.ymrs_threshold)
        if args.madrs_item10_above is not None:
            options = dataclasses.replace(options, madrs_item10_flag_above=args.madrs_item10_above)
        if args.pcl5_cutpoint is not None:
            options = dataclasses.replace(options, pcl5_cutpoint=args.pcl5_cutpoint)
        result = score_values(code, args.values, options=options)
        change = None
        if args.pre_dose is not None and result.total is not None:
            change = compare(code, args.pre_dose, result.total, options=options)
    except InstrumentInputError as exc:
        print(f"ketaclinic score: {exc.what} — {len(exc.errors)} to fix:", file=sys.stderr)
        for reason in exc.errors.values():
            print(f"  {reason}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(_as_json(result, change), ensure_ascii=False, indent=2))
    else:
        print(_as_text(result, change))
    return 0


def _all_flags(result: ScoreResult, change: ComparisonResult | None) -> list[Flag]:
    return [*result.flags, *(change.flags if change is not None else ())]


def _as_json(result: ScoreResult, change: ComparisonResult | None) -> dict[str, object]:
    out = result.to_dict()
    out["flags"] = [f.to_dict() for f in _all_flags(result, change)]
    if change is not None:
        out["pre_dose"] = change.baseline
    return out


def _fmt(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.2f}"


def _as_text(result: ScoreResult, change: ComparisonResult | None) -> str:
    lines = [f"{result.name} (definition version {result.version})"]
    if result.total is not None:
        rng = f" of {result.total_range[0]}–{result.total_range[1]}" if result.total_range else ""
        lines.append(f"Total: {result.total}{rng}")
    if result.band is not None:
        lines.append(f"Band: {result.band.label} ({result.band.low}–{result.band.high})")
    if result.risk is not None:
        lines.append(f"Risk: {result.risk.value}")
    for sub in result.subscores.values():
        lines.append(f"{sub.label}: {_fmt(sub.value)} (range {sub.low}–{sub.high})")
    if change is not None:
        lines.append(f"Pre-dose: {change.baseline}")
    flags = _all_flags(result, change)
    if flags:
        lines.append("Flags:")
        for f in flags:
            mark = "" if f.confirmed else " [unconfirmed]"
            bullet = "!" if f.is_safety else "*"
            lines.append(f"  {bullet} {f.kind.value.upper()}: {f.text}{mark}")
            lines.append(f"    rule {f.code} — source: {f.source}")
    else:
        lines.append("Flags: none")
    for note in result.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
