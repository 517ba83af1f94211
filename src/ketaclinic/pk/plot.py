"""Chart description of a simulation (pure; render with ketaclinic.charts.render_svg)."""

from __future__ import annotations

import numpy as np

from ..charts.svg import Band, HLine, LineChart, Series, VMarker
from .regimen import Infusion
from .solve import SimulationResult

_MIN_WINDOW_MIN = 120.0
_MINUTES_AXIS_UP_TO = 360.0


def plot_window_min(result: SimulationResult) -> float:
    """End of the plotted time: until the curve (95th percentile if any) falls below 10 % of its peak
    after the last dose, at least 2 h after the last input, within the simulated time."""
    t = result.times_min
    curve = result.bands.p95_ng_ml if result.bands is not None else result.concentration_ng_ml
    last = result.regimen.last_event_min
    peak = float(np.max(curve))
    after = (t > last) & (curve < 0.1 * peak) & (t > result.tmax_min)
    end = float(t[np.argmax(after)]) if np.any(after) else float(t[-1])
    end = max(end * 1.15, last + _MIN_WINDOW_MIN)
    return min(end, float(t[-1]))


def simulation_chart(result: SimulationResult, dose_text: str) -> LineChart:
    """Title names drug, route, dose and model; axes carry units; median, 5–95 % band, threshold."""
    end = plot_window_min(result)
    hours = end > _MINUTES_AXIS_UP_TO
    scale = 60.0 if hours else 1.0
    keep = result.times_min <= end
    x = (result.times_min[keep] / scale).tolist()
    routes = "/".join(sorted(r.label for r in result.regimen.routes))
    drug = result.model.drug.value.capitalize()
    title = f"{drug} {routes} {dose_text} — {result.model.name}"
    site = result.model.sample_site.value
    series: list[Series] = []
    bands: list[Band] = []
    if result.bands is not None:
        b = result.bands
        bands.append(
            Band("5–95 % of virtual patients", x, b.p5_ng_ml[keep].tolist(), b.p95_ng_ml[keep].tolist())
        )
        series.append(Series("median", x, b.p50_ng_ml[keep].tolist(), color="#1f4e8c", width=2.5))
        series.append(
            Series(
                "typical patient",
                x,
                result.concentration_ng_ml[keep].tolist(),
                color="#566573",
                width=1.2,
                dash="5 4",
            )
        )
        subtitle = f"{site} concentrations; {b.n} virtual patients (seed {b.seed})"
    else:
        series.append(
            Series(
                "typical patient", x, result.concentration_ng_ml[keep].tolist(), color="#1f4e8c", width=2.5
            )
        )
        subtitle = f"{site} concentrations; typical patient"
    thr = result.threshold.value_ng_ml
    hlines = (HLine(thr, f"threshold {thr:g} ng/mL"),)
    markers: list[VMarker] = []
    for ev in result.regimen.events:
        if isinstance(ev, Infusion):
            markers.append(VMarker(ev.stop_min / scale, "infusion stops"))
    if result.falls_below_threshold_min is not None:
        markers.append(
            VMarker(
                result.falls_below_threshold_min / scale, "typical falls below threshold", color="#c0392b"
            )
        )
    return LineChart(
        title=title,
        subtitle=subtitle,
        x_label="Time (h)" if hours else "Time (min)",
        y_label=f"{result.model.drug.value} concentration (ng/mL)",
        series=tuple(series),
        bands=tuple(bands),
        hlines=hlines,
        vmarkers=tuple(markers),
        x_range=(float(x[0]), end / scale),
    )
