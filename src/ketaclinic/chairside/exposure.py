"""Predicted exposure for a session from its actual administration record (issue: PK simulator, item 6).

Builds a ``ketaclinic.pk`` regimen from the doses as given (each nasal device at its time, infusion rate
segments, IM/sublingual doses), simulates the typical curve with a 5–95 % population band, and draws it with
the session's observed readings beside it on the same time axis (minutes from the first dose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ketaclinic import pk
from ketaclinic.chairside.models import Administration, TreatmentSession
from ketaclinic.charts.exposure import concentration_chart
from ketaclinic.charts.svg import LineChart, Series, VMarker, render_svg
from ketaclinic.clinical.dose_types import ESKETAMINE_DEVICE_MG

POPULATION = pk.Population(n=300, seed=7)


@dataclass(frozen=True)
class Exposure:
    result: pk.SimulationResult
    concentration_svg: str
    vitals_svg: str | None
    weight_note: str


def _minutes(at: datetime, start: datetime) -> float:
    return (at - start).total_seconds() / 60.0


def _infusion_minutes(session: TreatmentSession) -> float:
    from ketaclinic.chairside.services import protocol_of
    from ketaclinic.clinical.protocols import UnknownProtocol

    try:
        protocol = protocol_of(session)
    except UnknownProtocol:
        return 40.0
    durations = [p.dose.duration_min for p in protocol.phases if p.dose.duration_min]
    # 40 min is the standard IV regimen (clinical.md §1.1) when the protocol gives no duration.
    return float(durations[0]) if durations else 40.0


def regimen_for(session: TreatmentSession, administrations: list[Administration]) -> pk.Regimen | None:
    """The doses as given, as a PK regimen (minutes from the first dose).

    IV: the pump rate was set so the bag runs over the protocol's infusion time (the dose calculator's
    mL/h = bag volume / duration), so mg/min = dose / duration at the starting rate, and a rate change scales
    it in proportion. A recorded mg/h rate is used as given.
    """
    start = session.dose_started_at
    if start is None or not administrations:
        return None
    if session.drug == "esketamine":
        times = tuple(_minutes(a.at, start) for a in administrations if a.kind == "nasal_device")
        return (
            pk.Regimen(pk.Drug.ESKETAMINE, (pk.NasalSession(times, ESKETAMINE_DEVICE_MG),)) if times else None
        )
    if session.route == "iv":
        first = next((a for a in administrations if a.kind == "infusion_start"), None)
        if first is None or not first.rate_ml_per_h or not first.dose_mg:
            return None
        dose_mg = float(first.dose_mg)
        base_mg_per_min = dose_mg / _infusion_minutes(session)
        segments: list[pk.RateSegment] = []
        stop = None
        for a in administrations:
            t = _minutes(a.at, start)
            if a.kind in ("infusion_start", "rate_change"):
                if a.rate_mg_per_h is not None:
                    rate = float(a.rate_mg_per_h) / 60.0
                else:
                    rate = base_mg_per_min * float(a.rate_ml_per_h or 0) / float(first.rate_ml_per_h)
                segments.append(pk.RateSegment(t, rate))
            if a.kind == "infusion_stop":
                stop = t
        if stop is None:  # still running: until the whole dose is in at the current rates
            stop = _planned_stop(segments, dose_mg)
        return pk.Regimen(pk.Drug.KETAMINE, (pk.Infusion(tuple(segments), stop),))
    route = pk.Route.IM if session.route == "im" else pk.Route.SUBLINGUAL
    doses = tuple(
        pk.Dose(_minutes(a.at, start), float(a.dose_mg), route) for a in administrations if a.dose_mg
    )
    return pk.Regimen(pk.Drug.KETAMINE, doses) if doses else None


def _planned_stop(segments: list[pk.RateSegment], dose_mg: float) -> float:
    given = 0.0
    for i, seg in enumerate(segments):
        end = segments[i + 1].start_min if i + 1 < len(segments) else None
        if seg.rate_mg_per_min <= 0:
            continue
        span = (dose_mg - given) / seg.rate_mg_per_min
        if end is None or seg.start_min + span <= end:
            return seg.start_min + span
        given += (end - seg.start_min) * seg.rate_mg_per_min
    return segments[-1].start_min + 1.0


#: The longest span of doses in one session the prediction draws (a session is hours, never days).
MAX_DOSING_MIN = 24 * 60.0


def session_exposure(session: TreatmentSession) -> Exposure | None:
    administrations = list(session.administrations.order_by("at", "pk"))
    regimen = regimen_for(session, administrations)
    if regimen is None or session.dose_started_at is None:
        return None
    weight = float(session.patient.weight_kg) if session.patient.weight_kg else None
    age = None
    if session.patient.date_of_birth:
        age = (session.site.today(session.dose_started_at) - session.patient.date_of_birth).days / 365.25
    covariates = pk.Covariates(weight_kg=weight or 70.0, age_years=age)
    weight_note = "" if weight else "No weight on record: a 70 kg adult was assumed."
    last_event = max(_minutes(a.at, session.dose_started_at) for a in administrations)
    if not 0 <= last_event <= MAX_DOSING_MIN:
        # Doses spread over more than a day (a time stored before core/moments.py refused implausible
        # ones, issue 15 H2): no prediction, rather than a grid of millions of minutes.
        return None
    horizon = max(240.0, last_event + 180.0)
    grid = [i * 1.0 for i in range(int(horizon) + 1)]
    try:
        result = pk.simulate(regimen, None, grid, covariates=covariates, population=POPULATION)
    except pk.PKError:
        return None
    observations = list(session.observations.order_by("observed_at"))
    markers = tuple(
        VMarker(x=_minutes(o.observed_at, session.dose_started_at), label=f"CADSS {o.cadss_total}")
        for o in observations
        if o.cadss_total is not None and 0 <= _minutes(o.observed_at, session.dose_started_at) <= horizon
    )
    concentration_svg = concentration_chart(
        result,
        title=f"Predicted {session.get_drug_display().split(' (')[0].lower()} concentration from the doses given",
        horizon_min=horizon,
        markers=markers,
    )
    vitals_svg = None
    points = [(_minutes(o.observed_at, session.dose_started_at), o) for o in observations]
    points = [(t, o) for t, o in points if -30 <= t <= horizon]
    if points:
        series = []
        for label, attr, color in (
            ("SBP", "sbp_mmhg", "#c0392b"),
            ("DBP", "dbp_mmhg", "#e67e22"),
            ("HR", "hr_bpm", "#1e8449"),
            ("CADSS", "cadss_total", "#7d3c98"),
        ):
            pts = [(t, getattr(o, attr)) for t, o in points if getattr(o, attr) is not None]
            if pts:
                series.append(
                    Series(label=label, x=[p[0] for p in pts], y=[float(p[1]) for p in pts], color=color)
                )
        if series:
            vitals_svg = render_svg(
                LineChart(
                    title="Observed readings",
                    x_label="minutes from first dose",
                    y_label="mmHg · /min · CADSS",
                    series=tuple(series),
                    x_range=(min(0.0, points[0][0]), horizon),
                    width=720,
                    height=260,
                )
            )
    return Exposure(
        result=result, concentration_svg=concentration_svg, vitals_svg=vitals_svg, weight_note=weight_note
    )
