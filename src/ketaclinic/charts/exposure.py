"""The concentration–time chart of a PK simulation, shared by the plan page and the session page."""

from __future__ import annotations

from ketaclinic.charts.svg import Band, HLine, LineChart, Series, VMarker, render_svg
from ketaclinic.pk import SimulationResult


def concentration_chart(
    result: SimulationResult, *, title: str, horizon_min: float, markers: tuple[VMarker, ...] = ()
) -> str:
    """Typical curve, the 5–95 % band and median of virtual patients when simulated, the threshold line
    (marked unconfirmed when it is), and optional vertical markers (e.g. CADSS readings)."""
    x = [float(t) for t in result.times_min]
    typical = [float(c) for c in result.concentration_ng_ml]
    bands: tuple[Band, ...] = ()
    series: tuple[Series, ...] = (Series(label="typical patient", x=x, y=typical, color="#0f2f52"),)
    if result.bands is not None:
        bands = (
            Band(
                label="5–95 % of virtual patients",
                x=x,
                lower=[float(v) for v in result.bands.p5_ng_ml],
                upper=[float(v) for v in result.bands.p95_ng_ml],
            ),
        )
        series = (
            Series(label="median", x=x, y=[float(v) for v in result.bands.p50_ng_ml], color="#0f2f52"),
            Series(label="typical patient", x=x, y=typical, color="#566573", dash="6 4"),
        )
    threshold = result.threshold
    label = f"{threshold.value_ng_ml:g} ng/mL dissociative range starts"
    if not threshold.confirmed:
        label += " (default, unconfirmed)"
    chart = LineChart(
        title=title,
        subtitle=f"{result.model.name} · {result.model.sample_site} concentrations",
        x_label="minutes from first dose",
        y_label="ng/mL",
        series=series,
        bands=bands,
        hlines=(HLine(y=threshold.value_ng_ml, label=label),),
        vmarkers=markers,
        x_range=(0.0, horizon_min),
        width=720,
        height=300,
    )
    return render_svg(chart)
