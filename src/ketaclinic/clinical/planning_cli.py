"""Command-line planning tools: ``ketaclinic protocols``, ``ketaclinic dose`` and ``ketaclinic schedule``.

Pure apart from printing. ``main(argv)`` takes the subcommand as its first argument, e.g.
``main(["dose", "--protocol", "iv-trd-elektd", "--weight-kg", "80", "--height-cm", "175"])``. Invalid input
prints a message on stderr and returns exit code 2; a refused dose also returns 2 with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ketaclinic.clinical.body import BodyMeasurementError, Sex
from ketaclinic.clinical.conditions import DRUG_LABELS, INDICATIONS, ROUTE_LABELS
from ketaclinic.clinical.dosing import (
    DoseCalculation,
    DoseError,
    DoseOverrideRequired,
    DoseRefused,
    WeightBasis,
    calculate_dose,
    dose_mg_for_weight,
)
from ketaclinic.clinical.protocol_library import PROTOCOLS, get_protocol
from ketaclinic.clinical.protocols import Protocol, UnknownProtocol
from ketaclinic.clinical.schedule import (
    DEFAULT_SITE_NOTE,
    CoursePlan,
    ScheduleInputError,
    default_site,
    plan_course,
)


class _UsageError(Exception):
    pass


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, tuple | list | frozenset | set):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def _protocol(protocol_id: str) -> Protocol:
    try:
        return get_protocol(protocol_id)
    except UnknownProtocol as exc:
        raise _UsageError(f"{exc.message} Run 'ketaclinic protocols' to list them.") from None


# --- protocols --------------------------------------------------------------------------------------------


def _cmd_protocols(args: argparse.Namespace, out: TextIO) -> int:
    rows = [
        {
            "id": p.id,
            "version": p.version,
            "name": p.name,
            "drug": p.drug.value,
            "route": p.route.value,
            "indications": [i.value for i in p.indications],
            "clinic_template": p.clinic_template,
        }
        for p in PROTOCOLS.values()
    ]
    if args.json:
        _print_json(rows, out)
        return 0
    for p in PROTOCOLS.values():
        indications = ", ".join(INDICATIONS[i].label for i in p.indications)
        out.write(f"{p.id:<22} {DRUG_LABELS[p.drug]} · {ROUTE_LABELS[p.route]} · {indications}\n")
        out.write(f"{'':<22} {p.name}\n")
    return 0


# --- dose -------------------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.2f} {unit}"


def _print_dose(calc: DoseCalculation, protocol: Protocol, out: TextIO) -> None:
    out.write(f"Protocol {protocol.id} v{protocol.version}: {protocol.name}\n")
    out.write(f"Session {calc.session_number} ({calc.phase_name}): {calc.amount:g} {calc.unit}\n")
    body = calc.body
    out.write(f"Weight {body.weight_kg:g} kg, height {body.height_cm:g} cm, BMI {body.bmi:.1f} kg/m²\n")
    if body.ideal_weight_kg is not None:
        out.write(
            f"Ideal weight {body.ideal_weight_kg:.1f} kg, adjusted weight {body.adjusted_weight_kg or 0:.1f} kg "
            "(formulas: default, unconfirmed)\n"
        )
    out.write("Working:\n")
    for step in calc.steps:
        out.write(f"  {step.label:<22} {step.value:>10.2f} {step.unit:<8} = {step.working}\n")
    out.write(f"Dose: {calc.dose_mg:.2f} mg\n")
    if calc.duration_min is not None:
        out.write(f"Infusion: {calc.duration_min} min, {_fmt(calc.mg_per_h, 'mg/h')}\n")
    if calc.concentration_mg_ml is not None:
        out.write(f"Draw up: {_fmt(calc.volume_to_draw_ml, 'mL')} of {calc.concentration_mg_ml:g} mg/mL\n")
    elif calc.devices is None:
        out.write("Give --concentration (10, 50 or 100 mg/mL) for the volume to draw.\n")
    if calc.container_volume_ml is not None:
        out.write(
            f"Add {_fmt(calc.diluent_ml, 'mL')} diluent to make {calc.container_volume_ml:g} mL "
            f"({_fmt(calc.final_concentration_mg_ml, 'mg/mL')})\n"
        )
    if calc.pump_rate_ml_per_h is not None:
        out.write(f"Pump rate: {calc.pump_rate_ml_per_h:.1f} mL/h\n")
    for device in calc.device_timetable:
        out.write(f"  +{device.offset_min:>2} min  {device.instruction}\n")
    if calc.second_person_check:
        out.write("SECOND-PERSON CHECK REQUIRED before giving this dose.\n")
    if calc.warnings:
        out.write("Warnings:\n")
        for w in calc.warnings:
            flag = " [default, unconfirmed]" if not w.confirmed else ""
            out.write(f"  - {w.message}{flag} (source: {w.source})\n")


def _cmd_dose(args: argparse.Namespace, out: TextIO) -> int:
    protocol = _protocol(args.protocol)
    calc = calculate_dose(
        protocol=protocol,
        weight_kg=args.weight_kg,
        height_cm=args.height_cm,
        sex=Sex(args.sex) if args.sex else None,
        basis=WeightBasis(args.basis),
        concentration_mg_ml=args.concentration,
        container_volume_ml=args.bag_ml,
        session_number=args.session,
        prescribed_amount=args.amount,
        override_reason=args.override_reason,
    )
    if args.json:
        _print_json(calc, out)
    else:
        _print_dose(calc, protocol, out)
    return 0


# --- schedule ---------------------------------------------------------------------------------------------


def _session_dose(protocol: Protocol, plan: CoursePlan, weight_kg: float | None) -> list[str]:
    texts = []
    for s in plan.sessions:
        text = s.dose_text
        if weight_kg is not None and s.dose.kind.value != "fixed_mg":
            mg = dose_mg_for_weight(s.dose, weight_kg)
            if mg is not None:
                text += f" (= {mg:.1f} mg at {weight_kg:g} kg actual weight)"
        texts.append(text)
    return texts


def _when(dt: datetime) -> str:
    return f"{dt:%a} {dt.day} {dt:%b %Y %H:%M}"


def _cmd_schedule(args: argparse.Namespace, out: TextIO) -> int:
    protocol = _protocol(args.protocol)
    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        raise _UsageError(f"--start: '{args.start}' is not a date like 2026-03-02") from None
    try:
        site = default_site(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _UsageError(f"--tz: '{args.tz}' is not a known time zone (e.g. Europe/London)") from None
    preferred = None
    if args.time:
        try:
            preferred = time.fromisoformat(args.time)
        except ValueError:
            raise _UsageError(f"--time: '{args.time}' is not a time like 09:30") from None
    if args.weight_kg is not None and not 20 <= args.weight_kg <= 350:
        raise _UsageError("--weight-kg: must be between 20 and 350 kg")
    plan = plan_course(protocol=protocol, start=start, site=site, preferred_time=preferred)
    doses = _session_dose(protocol, plan, args.weight_kg)
    if args.json:
        data = _jsonable(plan)
        data["site"] = DEFAULT_SITE_NOTE
        for row, text in zip(data["sessions"], doses, strict=True):
            row["dose_text"] = text
        _print_json(data, out)
        return 0
    out.write(f"Protocol {protocol.id} v{protocol.version}: {protocol.name}\n")
    out.write(f"Time zone {ZoneInfo(args.tz).key}. {DEFAULT_SITE_NOTE}\n")
    for s, text in zip(plan.sessions, doses, strict=True):
        out.write(f"{s.number:>3}  {_when(s.start)}  week {s.week:<2}  {s.phase_name}: {text}\n")
    for a in plan.adjuncts:
        out.write(f"     {_when(a.start)}  {a.label} {a.number}\n")
    for title, items in (
        ("Moved", plan.conflicts),
        ("Notes", plan.notes),
        ("Not scheduled", plan.unscheduled),
    ):
        if items:
            out.write(f"{title}:\n")
            for item in items:
                out.write(f"  - {item}\n")
    return 0


# --- parser -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ketaclinic", description="Ketamine clinic planning tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "protocols", help="list the built-in treatment protocols", description="List protocols."
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_protocols)

    d = sub.add_parser(
        "dose",
        help="calculate a session dose",
        description="Calculate one session's dose with every step shown. The result must be checked by a "
        "second person for IV and IM doses.",
    )
    d.add_argument("--protocol", required=True, help="protocol ID (see 'ketaclinic protocols')")
    d.add_argument("--weight-kg", type=float, required=True, help="actual body weight in kg (20–350)")
    d.add_argument("--height-cm", type=float, required=True, help="height in cm (100–250)")
    d.add_argument("--sex", choices=[s.value for s in Sex], help="needed for ideal or adjusted weight")
    d.add_argument(
        "--basis",
        choices=[b.value for b in WeightBasis],
        default=WeightBasis.ACTUAL.value,
        help="weight used for mg/kg doses (default actual)",
    )
    d.add_argument("--concentration", type=float, choices=[10.0, 50.0, 100.0], help="vial strength in mg/mL")
    d.add_argument("--bag-ml", type=float, help="final volume of the IV bag or syringe in mL")
    d.add_argument("--session", type=int, default=1, help="session number in the course (default 1)")
    d.add_argument(
        "--amount", type=float, help="prescribed amount in the protocol's unit (mg/kg, mg/kg/h or mg)"
    )
    d.add_argument("--override-reason", help="reason for a dose outside the usual range")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=_cmd_dose)

    s = sub.add_parser(
        "schedule",
        help="plan the dated sessions of a course",
        description="Plan a course from a start date. Without site settings the clinic is taken as open "
        "Mon–Fri 08:00–18:00 with unlimited capacity.",
    )
    s.add_argument("--protocol", required=True, help="protocol ID (see 'ketaclinic protocols')")
    s.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    s.add_argument("--tz", default="Europe/London", help="site time zone (default Europe/London)")
    s.add_argument("--time", help="preferred start time, HH:MM (default opening time)")
    s.add_argument("--weight-kg", type=float, help="show each dose in mg for this weight")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_schedule)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse already printed usage or help
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        result: int = args.func(args, sys.stdout)
        return result
    except _UsageError as exc:
        sys.stderr.write(f"ketaclinic {args.command}: {exc}\n")
    except DoseOverrideRequired as exc:
        sys.stderr.write(f"ketaclinic dose: {exc.message} Use --override-reason. (source: {exc.source})\n")
    except DoseRefused as exc:
        sys.stderr.write(f"ketaclinic dose: REFUSED: {exc.message} (source: {exc.source})\n")
    except (DoseError, BodyMeasurementError, ScheduleInputError) as exc:
        sys.stderr.write(f"ketaclinic {args.command}: {exc}\n")
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
