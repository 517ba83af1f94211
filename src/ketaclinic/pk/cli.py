"""`ketaclinic pk …`: simulate ketamine or esketamine blood levels from the command line.

    ketaclinic pk simulate --drug ketamine --route iv --dose 0.5mg/kg --weight-kg 70 --duration 40min \\
        --at 40,80,110 --population 1000 --plot curve.svg
    ketaclinic pk models

Invalid input prints every problem on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..charts.svg import LineChart, render_svg
from .errors import PKError, PKValidationError
from .models import MODELS, MammillaryModel, PKModel
from .population import Population
from .regimen import (
    ESKETAMINE_DEVICE_INTERVAL_MIN,
    ESKETAMINE_MG_PER_DEVICE,
    Ancestry,
    Covariates,
    Dose,
    Drug,
    Event,
    NasalSession,
    Regimen,
    Route,
    iv_infusion,
)
from .solve import SimulationResult, Spread, resolve_model, simulate, validate_inputs

_DOSE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(mg/kg|mg)\s*$", re.IGNORECASE)
_TIME = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+)\s*(s|sec|min|m|h|hr|hours?)?\s*$", re.IGNORECASE)
_UNIT_MIN = {
    "s": 1 / 60,
    "sec": 1 / 60,
    "min": 1.0,
    "m": 1.0,
    "h": 60.0,
    "hr": 60.0,
    "hour": 60.0,
    "hours": 60.0,
}


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgError(message)


def _parse_time(text: str) -> float | None:
    m = _TIME.match(text)
    if not m:
        return None
    return float(m.group(1)) * _UNIT_MIN[(m.group(2) or "min").lower()]


def _fmt_key(t: float) -> str:
    return f"{t:g}"


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ketaclinic pk",
        description="Predict ketamine or esketamine blood concentrations from published models. "
        "For planning and teaching: it does not replace clinical observation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sim = sub.add_parser(
        "simulate",
        help="predict the concentration curve of one dose",
        description="Predict the blood concentration curve of one ketamine or esketamine dose for a typical "
        "patient, and optionally the 5–95 % range across many virtual patients.",
    )
    sim.add_argument(
        "--drug", required=True, choices=[d.value for d in Drug], help="ketamine (racemic) or esketamine"
    )
    sim.add_argument("--route", required=True, choices=[r.value for r in Route], help="how the dose is given")
    sim.add_argument("--dose", required=True, help="total dose, e.g. 0.5mg/kg (needs --weight-kg) or 56mg")
    sim.add_argument(
        "--weight-kg", type=float, help="body weight in kg (needed for mg/kg doses and ketamine models)"
    )
    sim.add_argument("--duration", help="IV only: infusion length, e.g. 40min or 1.5h; 0 for a bolus")
    sim.add_argument(
        "--model",
        help="model name (see `ketaclinic pk models`); default: Kamp 2020 for ketamine, "
        "Perez-Ruixo 2021 for esketamine",
    )
    sim.add_argument(
        "--at", help="comma-separated times to report, in minutes (or with units), e.g. 40,80,110"
    )
    sim.add_argument("--population", type=int, help="also simulate N virtual patients for 5–95 %% bands")
    sim.add_argument("--seed", type=int, default=0, help="random seed for the virtual patients (default 0)")
    sim.add_argument("--age", type=float, help="age in years (esketamine: lower liver blood flow over 60)")
    sim.add_argument(
        "--ancestry",
        choices=[Ancestry.ASIAN.value, Ancestry.JAPANESE.value],
        help="esketamine model covariate",
    )
    sim.add_argument(
        "--threshold",
        type=float,
        help="concentration line in ng/mL (default: 100, the lower edge of the dissociative range)",
    )
    sim.add_argument(
        "--device-times",
        help="intranasal: comma-separated device times in minutes, e.g. 0,5,12 "
        f"(default: one device every {ESKETAMINE_DEVICE_INTERVAL_MIN:g} min)",
    )
    sim.add_argument("--hours", type=float, help="simulated time in hours (default 24 h)")
    sim.add_argument("--plot", help="write a chart to FILE.svg or FILE.png")
    sim.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sub.add_parser("models", help="list the available models and their routes")
    return parser


def _times_list(text: str, field: str, errors: dict[str, str]) -> list[float]:
    out: list[float] = []
    for part in text.split(","):
        value = _parse_time(part)
        if value is None or value < 0:
            errors[field] = f"'{part.strip()}' is not a time of 0 min or later (e.g. 40 or 1.5h)"
            return []
        out.append(value)
    return out


def _check_numbers(args: argparse.Namespace, errors: dict[str, str]) -> None:
    if args.weight_kg is not None and not (math.isfinite(args.weight_kg) and args.weight_kg > 0):
        errors["--weight-kg"] = "the weight must be more than 0 kg"
    if args.age is not None and not (math.isfinite(args.age) and args.age >= 0):
        errors["--age"] = "the age must be 0 or more years"
    if args.population is not None and args.population < 1:
        errors["--population"] = "the number of virtual patients must be 1 or more"
    if args.seed < 0:
        errors["--seed"] = "the seed must be 0 or more"
    if args.threshold is not None and not (math.isfinite(args.threshold) and args.threshold > 0):
        errors["--threshold"] = "the threshold must be above 0 ng/mL"
    if args.hours is not None and not (math.isfinite(args.hours) and args.hours > 0):
        errors["--hours"] = "the simulated time must be more than 0 hours"
    if args.plot is not None and Path(args.plot).suffix.lower() not in (".svg", ".png"):
        errors["--plot"] = "the chart file must end in .svg or .png"


def _dose_mg(args: argparse.Namespace, errors: dict[str, str]) -> tuple[float, str]:
    m = _DOSE.match(args.dose)
    if not m:
        errors["--dose"] = f"'{args.dose}' is not a dose such as 0.5mg/kg or 56mg"
        return 0.0, ""
    value, unit = float(m.group(1)), m.group(2).lower()
    if value <= 0:
        errors["--dose"] = "the dose must be more than 0"
        return 0.0, ""
    if unit == "mg/kg":
        if args.weight_kg is None:
            errors["--weight-kg"] = "a mg/kg dose needs the patient's weight (--weight-kg)"
            return 0.0, ""
        mg = value * args.weight_kg
        return mg, f"{value:g} mg/kg ({mg:.3g} mg)"
    return value, f"{value:g} mg"


def _event(args: argparse.Namespace, dose_mg: float, errors: dict[str, str]) -> tuple[Event | None, str]:
    route = Route(args.route)
    if route is not Route.IV and args.duration is not None:
        errors["--duration"] = "--duration applies to IV infusions only"
    if route is not Route.INTRANASAL and args.device_times is not None:
        errors["--device-times"] = "--device-times applies to intranasal doses only"
    if route is Route.IV:
        if args.duration is None:
            errors["--duration"] = (
                "give the IV infusion length with --duration (e.g. 40min, or 0 for a bolus)"
            )
            return None, ""
        duration = _parse_time(args.duration)
        if duration is None or duration < 0:
            errors["--duration"] = f"'{args.duration}' is not a duration of 0 min or more (e.g. 40min)"
            return None, ""
        if duration == 0:
            return Dose(0.0, dose_mg, Route.IV), "bolus"
        return iv_infusion(dose_mg, duration), f"over {duration:g} min"
    if route is Route.INTRANASAL:
        esk = args.drug == Drug.ESKETAMINE.value
        if esk:
            n_dev = dose_mg / ESKETAMINE_MG_PER_DEVICE
            if abs(n_dev - round(n_dev)) > 1e-9 or round(n_dev) < 1:
                errors["--dose"] = (
                    f"esketamine nasal spray comes in 28-mg devices: {dose_mg:g} mg is not a multiple of 28"
                )
                return None, ""
        if args.device_times is not None:
            times = _times_list(args.device_times, "--device-times", errors)
        elif esk:
            times = [
                k * ESKETAMINE_DEVICE_INTERVAL_MIN for k in range(round(dose_mg / ESKETAMINE_MG_PER_DEVICE))
            ]
        else:
            times = [0.0]
        if not times:
            return None, ""
        if esk and len(times) != round(dose_mg / ESKETAMINE_MG_PER_DEVICE):
            errors["--device-times"] = (
                f"{dose_mg:g} mg is {round(dose_mg / 28)} devices but {len(times)} times were given"
            )
            return None, ""
        devices = f"{len(times)} device{'s' if len(times) > 1 else ''}"
        return NasalSession(
            tuple(times), dose_mg / len(times)
        ), f"({devices} at {', '.join(f'{t:g}' for t in times)} min)"
    return Dose(0.0, dose_mg, route), ""


def _spread_json(s: Spread | None) -> dict[str, float | None] | None:
    if s is None:
        return None
    return {"p5": _round(s.p5), "p50": _round(s.p50), "p95": _round(s.p95)}


def result_json(result: SimulationResult, at: Sequence[float], dose_mg: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "drug": result.model.drug.value,
        "route": "/".join(sorted(r.value for r in result.regimen.routes)),
        "dose_mg": _round(dose_mg),
        "model": result.model.key,
        "model_name": result.model.name,
        "model_source": result.model.source,
        "model_fitted_population": result.model.fitted_population,
        "sample_site": result.model.sample_site.value,
        "cmax_ng_ml": _round(result.cmax_ng_ml),
        "tmax_min": _round(result.tmax_min),
        "auc_ng_h_ml": _round(result.auc_ng_h_ml),
        "auc_window_min": list(result.auc_window_min),
        "at": {_fmt_key(t): _round(result.at(t)) for t in at},
        "threshold": {
            "ng_ml": result.threshold.value_ng_ml,
            "source": result.threshold.source,
            "confirmed": result.threshold.confirmed,
        },
        "time_above_threshold_min": _round(result.time_above_threshold_min),
        "falls_below_threshold_min": _round(result.falls_below_threshold_min),
        "above_threshold_at_end": result.above_threshold_at_end,
    }
    if result.metabolite_ng_ml is not None:
        i = int(result.metabolite_ng_ml.argmax())
        out["metabolite"] = {
            "name": result.metabolite_name,
            "cmax_ng_ml": _round(float(result.metabolite_ng_ml[i])),
            "tmax_min": _round(float(result.times_min[i])),
        }
    if result.bands is not None:
        b = result.bands
        out["bands"] = {
            "n": b.n,
            "seed": b.seed,
            "cmax_ng_ml": _spread_json(b.cmax_ng_ml),
            "tmax_min": _spread_json(b.tmax_min),
            "auc_ng_h_ml": _spread_json(b.auc_ng_h_ml),
            "time_above_threshold_min": _spread_json(b.time_above_threshold_min),
            "falls_below_threshold_min": _spread_json(b.falls_below_threshold_min),
            "fraction_reaching_threshold": _round(b.fraction_reaching_threshold),
            "fraction_above_threshold_at_end": _round(b.fraction_above_threshold_at_end),
            "at": {_fmt_key(t): _spread_json(result.band_at(t)) for t in at},
        }
    out["unconfirmed"] = list(result.unconfirmed)
    out["notes"] = list(result.notes)
    return out


def _text(result: SimulationResult, at: Sequence[float], header: str) -> str:
    lines = [
        header,
        f"Model: {result.model.name} — predicts {result.model.sample_site.value} concentrations",
        f"  source: {result.model.source}; fitted to {result.model.fitted_population}",
    ]
    hours = (result.auc_window_min[1] - result.auc_window_min[0]) / 60
    lines.append(
        f"Peak {result.cmax_ng_ml:.1f} ng/mL at {result.tmax_min:g} min; AUC over {hours:g} h "
        f"{result.auc_ng_h_ml:.1f} ng·h/mL"
    )
    thr = result.threshold
    if not result.reaches_threshold:
        lines.append(f"Never reaches {thr.value_ng_ml:g} ng/mL ({thr.source})")
    else:
        below = (
            "still above at the end of the simulation"
            if result.falls_below_threshold_min is None
            else f"falls below it at {result.falls_below_threshold_min:.0f} min"
        )
        lines.append(
            f"Above {thr.value_ng_ml:g} ng/mL for {result.time_above_threshold_min:.0f} min; {below} "
            f"({thr.source})"
        )
    for t in at:
        band = result.band_at(t)
        extra = f"  (5–95 %: {band.p5:.1f}–{band.p95:.1f})" if band else ""
        lines.append(f"  at {t:g} min: {result.at(t):.1f} ng/mL{extra}")
    if result.bands is not None:
        b = result.bands
        lines.append(
            f"{b.n} virtual patients (seed {b.seed}): peak 5–95 % "
            f"{b.cmax_ng_ml.p5:.1f}–{b.cmax_ng_ml.p95:.1f} ng/mL; "
            f"{b.fraction_reaching_threshold:.0%} reach {thr.value_ng_ml:g} ng/mL"
        )
    if result.unconfirmed:
        lines.append("Unconfirmed defaults used:")
        lines += [f"  - {u}" for u in result.unconfirmed]
    if result.notes:
        lines.append("Notes:")
        lines += [f"  - {n}" for n in result.notes]
    return "\n".join(lines)


def _write_png(chart: LineChart, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(chart.width / 100, chart.height / 100), dpi=150)
    for band in chart.bands:
        ax.fill_between(
            band.x, band.lower, band.upper, color=band.color, alpha=band.opacity, label=band.label, lw=0
        )
    for s in chart.series:
        ax.plot(s.x, s.y, color=s.color, lw=s.width, ls="--" if s.dash else "-", label=s.label)
    for h in chart.hlines:
        ax.axhline(h.y, color=h.color, ls="--", lw=1.2)
        ax.annotate(
            h.label, (1, h.y), xycoords=("axes fraction", "data"), ha="right", va="bottom", color=h.color
        )
    for v in chart.vmarkers:
        ax.axvline(v.x, color=v.color, ls=":", lw=1)
        ax.annotate(
            v.label,
            (v.x, 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            color=v.color,
            fontsize=8,
        )
    if chart.x_range:
        ax.set_xlim(*chart.x_range)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    ax.set_title(chart.title + (f"\n{chart.subtitle}" if chart.subtitle else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _models_text() -> str:
    lines = []
    for m in MODELS.values():
        routes = ", ".join(sorted(r.value for r in m.routes))
        lines.append(f"{m.key:16} {m.drug.value:10} {m.sample_site.value:22} routes: {routes}")
        lines.append(f"{'':16} {m.name}; fitted to {m.fitted_population}")
    return "\n".join(lines)


def _simulate(args: argparse.Namespace) -> int:
    errors: dict[str, str] = {}
    _check_numbers(args, errors)
    dose_mg, dose_text = _dose_mg(args, errors)
    at = _times_list(args.at, "--at", errors) if args.at else []
    drug = Drug(args.drug)
    model: PKModel | None = None
    try:
        model = resolve_model(args.model, drug)
    except PKValidationError as exc:
        errors["--model"] = exc.errors["model"]
    event, detail = _event(args, dose_mg if dose_text else ESKETAMINE_MG_PER_DEVICE, errors)
    covariates = Covariates(
        args.weight_kg, args.age, Ancestry(args.ancestry) if args.ancestry else Ancestry.UNSPECIFIED
    )
    population = Population(args.population, args.seed) if args.population and args.population > 0 else None
    if model is not None:  # route/model/weight problems, reported together with the argument problems
        stand_in = event if event is not None else _stand_in(Route(args.route))
        problems = validate_inputs(Regimen(drug, (stand_in,)), model, covariates, population, args.threshold)
        for key, reason in problems.items():
            errors.setdefault(_cli_field(key), reason)
    if errors or event is None or model is None or not dose_text:
        _fail(errors or {"--dose": "no dose could be built"})
        return 2
    try:
        result = simulate(
            Regimen(drug, (event,)),
            model,
            covariates=covariates,
            population=population,
            threshold_ng_ml=args.threshold,
            at_min=at,
            horizon_min=args.hours * 60 if args.hours else None,
        )
    except PKValidationError as exc:
        _fail({_cli_field(k): v for k, v in exc.errors.items()})
        return 2
    except PKError as exc:
        print(f"ketaclinic pk simulate: {exc.message}", file=sys.stderr)
        return 2
    dose_label = f"{dose_text} {detail}".strip()
    if isinstance(model, MammillaryModel) and (args.age is not None or args.ancestry):
        result = _with_note(
            result, f"{model.name} has no age or ancestry effect; --age/--ancestry were ignored"
        )
    if args.plot:
        from .plot import simulation_chart

        chart = simulation_chart(result, dose_label)
        path = Path(args.plot)
        if path.suffix.lower() == ".png":
            _write_png(chart, path)
        else:
            path.write_text(render_svg(chart), encoding="utf-8")
    if args.json:
        print(json.dumps(result_json(result, at, dose_mg), indent=2, ensure_ascii=False))
    else:
        weight = f", {args.weight_kg:g} kg" if args.weight_kg else ""
        print(_text(result, at, f"{drug.value.capitalize()} {Route(args.route).label} {dose_label}{weight}"))
        if args.plot:
            print(f"Chart written to {args.plot}")
    return 0


def _stand_in(route: Route) -> Event:
    """A valid event on the same route, used to check model/route/weight when the dose itself is bad."""
    if route is Route.INTRANASAL:
        return NasalSession((0.0,), ESKETAMINE_MG_PER_DEVICE)
    return Dose(0.0, ESKETAMINE_MG_PER_DEVICE, route)


def _with_note(result: SimulationResult, note: str) -> SimulationResult:
    from dataclasses import replace

    return replace(result, notes=(*result.notes, note))


def _cli_field(name: str) -> str:
    mapping = {
        "weight_kg": "--weight-kg",
        "age_years": "--age",
        "population": "--population",
        "model": "--model",
        "route": "--route",
        "threshold": "--threshold",
        "at": "--at",
        "horizon_min": "--hours",
    }
    if name.startswith("events[0]."):
        return "--dose" if "mg" in name or "rate" in name else "--device-times"
    return mapping.get(name, name)


def _fail(errors: dict[str, str]) -> None:
    print("ketaclinic pk simulate: cannot simulate:", file=sys.stderr)
    for field, reason in errors.items():
        print(f"  {field}: {reason}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; argv excludes the program name, e.g. ["simulate", "--drug", "ketamine", …]."""
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except _ArgError as exc:
        print(f"ketaclinic pk: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command == "models":
        print(_models_text())
        return 0
    return _simulate(args)


if __name__ == "__main__":
    raise SystemExit(main())
