"""Server-rendered SVG trajectory of one instrument (no scripts; safe inside the page under our CSP)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ketaclinic.charts.svg import HLine, LineChart, Series, VMarker, render_svg
from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.core.access import signed_in_user
from ketaclinic.measures import services
from ketaclinic.measures.models import ScaleAdministration
from ketaclinic.measures.services import Trajectory


def trajectory_svg(data: Trajectory, *, session_days: list[tuple[float, str]] | None = None) -> str:
    rows = data.rows
    start = rows[0].administration.administered_at
    days = [(r.administration.administered_at - start).total_seconds() / 86400 for r in rows]
    totals = [float(r.administration.total or 0) for r in rows]
    hlines: list[HLine] = []
    if data.baseline is not None:
        hlines.append(HLine(y=data.baseline, label=f"baseline {data.baseline:g}", color="#566573"))
    if data.response_line is not None and data.response_threshold_pct is not None:
        hlines.append(
            HLine(
                y=data.response_line,
                label=f"response (≥{data.response_threshold_pct:g}% below baseline)",
                color="#1f6f8b",
            )
        )
    if data.remission_threshold is not None:
        hlines.append(
            HLine(y=data.remission_threshold, label=data.remission_label or "remission", color="#1e8449")
        )
    markers = [VMarker(x=x, label=label) for x, label in (session_days or [])]
    score_range = INSTRUMENTS[data.instrument].score_range
    y_range = (float(score_range.low), float(score_range.high)) if score_range else None
    span = max(days[-1], 7.0) if days else 7.0
    chart = LineChart(
        title=f"{data.name}",
        x_label="days since baseline",
        y_label="total score",
        series=(Series(label="total", x=days, y=totals, color="#0f2f52", width=2.5),),
        hlines=tuple(hlines),
        vmarkers=tuple(markers),
        x_range=(0.0, span),
        y_range=y_range,
        width=720,
        height=320,
    )
    return render_svg(chart)


def trajectories_for(request: HttpRequest, patient: Any) -> list[dict[str, object]]:
    """Per instrument: the SVG plot and the table rows (used by the chart and the scales page)."""
    items = services.administrations(
        user=signed_in_user(request),
        patient=patient,
        request=request,
    )
    by_instrument: dict[str, list[ScaleAdministration]] = {}
    for a in items:
        by_instrument.setdefault(a.instrument, []).append(a)
    from ketaclinic.chairside.models import TreatmentSession

    dosed = [
        when
        for when in TreatmentSession.objects.filter(patient=patient, dose_started_at__isnull=False)
        .order_by("dose_started_at")
        .values_list("dose_started_at", flat=True)
        if when is not None  # excluded by the query already; narrows the type
    ]
    result = []
    for code, rows in by_instrument.items():
        data = services.trajectory(code, rows)
        if not data.rows:
            continue
        start = data.rows[0].administration.administered_at
        marks = [((when - start).total_seconds() / 86400, f"session {n}") for n, when in enumerate(dosed, 1)]
        result.append({"code": code, "data": data, "svg": trajectory_svg(data, session_days=marks)})
    return result
