"""A small, pure SVG renderer for time-series line charts.

Used for PK curves, score trajectories and session curves. It draws several series, shaded bands
between two curves, horizontal reference lines with labels, vertical markers, axis ticks and labels,
a legend and a title. The output is a standalone SVG string with no scripts, no external references
and every piece of text escaped; colours are checked against a strict pattern so that data cannot
inject markup.

    svg = render_svg(LineChart(title="…", x_label="Time (min)", y_label="ng/mL",
                               series=(Series("median", xs, ys),), hlines=(HLine(100, "threshold"),)))
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

PALETTE: Final = ("#1f4e8c", "#c0392b", "#2e8b57", "#8e44ad", "#d68910", "#566573")
_COLOR: Final = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$")
_DASH: Final = re.compile(r"^[0-9., ]{1,40}$")


class ChartError(ValueError):
    """The chart description cannot be drawn (e.g. mismatched lengths, unsafe colour)."""


@dataclass(frozen=True)
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str | None = None  # None: next palette colour
    width: float = 2.0
    dash: str | None = None  # SVG stroke-dasharray, e.g. "6 4"


@dataclass(frozen=True)
class Band:
    """A shaded area between lower and upper (same x)."""

    label: str
    x: Sequence[float]
    lower: Sequence[float]
    upper: Sequence[float]
    color: str = "#1f4e8c"
    opacity: float = 0.18


@dataclass(frozen=True)
class HLine:
    y: float
    label: str
    color: str = "#c0392b"
    dash: str | None = "6 4"


@dataclass(frozen=True)
class VMarker:
    x: float
    label: str
    color: str = "#566573"
    dash: str | None = "2 3"


@dataclass(frozen=True)
class LineChart:
    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...] = ()
    bands: tuple[Band, ...] = ()
    hlines: tuple[HLine, ...] = ()
    vmarkers: tuple[VMarker, ...] = ()
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    width: int = 760
    height: int = 440
    subtitle: str | None = None


def nice_ticks(lo: float, hi: float, max_ticks: int = 7) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10ⁿ steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2g}"
    return f"{v:.6g}"


def _safe_color(c: str) -> str:
    if not _COLOR.match(c):
        raise ChartError(f"unsafe colour value: {c!r}")
    return c


def _dash_attr(dash: str | None) -> str:
    if dash is None:
        return ""
    if not _DASH.match(dash):
        raise ChartError(f"unsafe dash pattern: {dash!r}")
    return f' stroke-dasharray="{dash}"'


def _finite_pairs(x: Sequence[float], y: Sequence[float]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive finite points (a NaN breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for a, b in zip(x, y, strict=True):
        if math.isfinite(a) and math.isfinite(b):
            runs[-1].append((float(a), float(b)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _extent(chart: LineChart) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for s in chart.series:
        for run in _finite_pairs(s.x, s.y):
            xs += [p[0] for p in run]
            ys += [p[1] for p in run]
    for b in chart.bands:
        for run in (*_finite_pairs(b.x, b.lower), *_finite_pairs(b.x, b.upper)):
            xs += [p[0] for p in run]
            ys += [p[1] for p in run]
    ys += [h.y for h in chart.hlines if math.isfinite(h.y)]
    xs += [v.x for v in chart.vmarkers if math.isfinite(v.x)]
    x0, x1 = chart.x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    if chart.y_range is not None:
        y0, y1 = chart.y_range
    else:
        y0 = min(0.0, min(ys)) if ys else 0.0
        y1 = max(ys) * 1.08 if ys and max(ys) > 0 else 1.0
    if x1 <= x0:
        x1 = x0 + 1.0
    if y1 <= y0:
        y1 = y0 + 1.0
    return x0, x1, y0, y1


_LEFT: Final = 72.0  # left margin (room for y tick labels)
_Entry = tuple[str, str, str, bool]  # label, colour, dash attribute, is a band


def _legend_rows(chart: LineChart, width: float) -> list[list[tuple[float, _Entry]]]:
    """Legend entries (bands first, then series) laid out left to right, wrapping at the plot width."""
    entries: list[_Entry] = [(b.label, _safe_color(b.color), "", True) for b in chart.bands]
    entries += [
        (s.label, _safe_color(s.color or PALETTE[i % len(PALETTE)]), _dash_attr(s.dash), False)
        for i, s in enumerate(chart.series)
    ]
    rows: list[list[tuple[float, _Entry]]] = []
    x = width + 1.0
    for entry in entries:
        size = 46.0 + 6.5 * len(entry[0])
        if x + size > width and (not rows or rows[-1]):
            rows.append([])
            x = 0.0
        rows[-1].append((_LEFT + x, entry))
        x += size
    return rows


def render_svg(chart: LineChart) -> str:
    """The chart as a standalone SVG document (a string)."""
    for s in chart.series:
        if len(s.x) != len(s.y):
            raise ChartError(f"series {s.label!r}: x and y differ in length")
    for b in chart.bands:
        if not (len(b.x) == len(b.lower) == len(b.upper)):
            raise ChartError(f"band {b.label!r}: x, lower and upper differ in length")
    w, h = chart.width, chart.height
    left, right, top = _LEFT, 24.0, 58.0 if chart.subtitle else 42.0
    pw = w - left - right
    rows = _legend_rows(chart, pw)
    bottom = 56.0 + 20.0 * len(rows)
    ph = h - top - bottom
    x0, x1, y0, y1 = _extent(chart)

    def px(v: float) -> float:
        return left + (min(max(v, x0), x1) - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + ph - (min(max(v, y0), y1) - y0) / (y1 - y0) * ph

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{escape(chart.title)}</title>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text x="{w / 2:.1f}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        f"{escape(chart.title)}</text>",
    ]
    if chart.subtitle:
        out.append(
            f'<text x="{w / 2:.1f}" y="40" text-anchor="middle" fill="#444">{escape(chart.subtitle)}</text>'
        )
    # grid, ticks and axes
    for t in nice_ticks(y0, y1):
        y = py(t)
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + pw:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(t))}</text>')
    for t in nice_ticks(x0, x1, 9):
        x = px(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{top + ph:.1f}" x2="{x:.1f}" y2="{top + ph + 5:.1f}" stroke="#333"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{top + ph + 18:.1f}" text-anchor="middle">{escape(_fmt(t))}</text>')
    out.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{pw:.1f}" height="{ph:.1f}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{top + ph + 40:.1f}" text-anchor="middle">'
        f"{escape(chart.x_label)}</text>"
    )
    out.append(
        f'<text transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(chart.y_label)}</text>"
    )
    for b in chart.bands:
        color = _safe_color(b.color)
        pts_u = _finite_pairs(b.x, b.upper)
        pts_l = _finite_pairs(b.x, b.lower)
        if pts_u and pts_l:
            upper = " ".join(f"{px(a):.1f},{py(v):.1f}" for a, v in pts_u[0])
            lower = " ".join(f"{px(a):.1f},{py(v):.1f}" for a, v in reversed(pts_l[0]))
            opacity = min(max(b.opacity, 0.0), 1.0)
            out.append(
                f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="{opacity:.2f}"'
                ' stroke="none"/>'
            )
    for i, s in enumerate(chart.series):
        color = _safe_color(s.color or PALETTE[i % len(PALETTE)])
        dash = _dash_attr(s.dash)
        for run in _finite_pairs(s.x, s.y):
            pts = " ".join(f"{px(a):.1f},{py(v):.1f}" for a, v in run)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{s.width:.1f}"'
                f' stroke-linejoin="round"{dash}/>'
            )
    for hl in chart.hlines:
        if not (y0 <= hl.y <= y1):
            continue
        color, y = _safe_color(hl.color), py(hl.y)
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + pw:.1f}" y2="{y:.1f}" stroke="{color}"'
            f' stroke-width="1.5"{_dash_attr(hl.dash)}/>'
        )
        out.append(
            f'<text x="{left + pw - 4:.1f}" y="{y - 5:.1f}" text-anchor="end" fill="{color}">'
            f"{escape(hl.label)}</text>"
        )
    for vm in chart.vmarkers:
        if not (x0 <= vm.x <= x1):
            continue
        color, x = _safe_color(vm.color), px(vm.x)
        out.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{top + ph:.1f}" stroke="{color}"'
            f"{_dash_attr(vm.dash)}/>"
        )
        out.append(
            f'<text transform="translate({x + 4:.1f} {top + 6:.1f}) rotate(90)" fill="{color}"'
            ' font-size="11">'
            f"{escape(vm.label)}</text>"
        )
    # legend: rows of entries under the x-axis label, so it never covers the data
    for r, row in enumerate(rows):
        y = top + ph + 62 + 20 * r
        for x, (label, color, dash, is_band) in row:
            if is_band:
                out.append(
                    f'<rect x="{x:.1f}" y="{y - 6:.1f}" width="22" height="10" fill="{color}" fill-opacity="0.3"/>'
                )
            else:
                out.append(
                    f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 22:.1f}" y2="{y:.1f}" stroke="{color}"'
                    f' stroke-width="2"{dash}/>'
                )
            out.append(f'<text x="{x + 28:.1f}" y="{y + 4:.1f}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
