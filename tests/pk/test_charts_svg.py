"""The generic SVG line-chart renderer (src/ketaclinic/charts/svg.py)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from ketaclinic.charts import Band, ChartError, HLine, LineChart, Series, VMarker, nice_ticks, render_svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """Parse SVG we generated ourselves (trusted input, so the stdlib parser is fine)."""
    return ET.fromstring(svg)  # noqa: S314


def chart(**kw: object) -> LineChart:
    base: dict[str, object] = {
        "title": "PHQ-9 <trajectory> & more",
        "x_label": "Week",
        "y_label": "Score",
        "series": (Series("patient", [0, 1, 2, 3], [20, 15, math.nan, 8]),),
    }
    base.update(kw)
    return LineChart(**base)  # type: ignore[arg-type]


def test_output_is_well_formed_svg_with_escaped_text_and_no_script() -> None:
    svg = render_svg(chart(hlines=(HLine(10, "response <50%>"),), vmarkers=(VMarker(1.5, 'dose "2"'),)))
    root = parse(svg)  # parses: well-formed XML
    assert root.tag == f"{NS}svg"
    assert "&lt;trajectory&gt; &amp; more" in svg and "<trajectory>" not in svg
    assert "response &lt;50%&gt;" in svg
    assert "<script" not in svg and "href" not in svg and "on" + "load" not in svg


def test_nan_breaks_a_series_into_two_polylines() -> None:
    root = parse(render_svg(chart()))
    lines = root.findall(f"{NS}polyline")
    assert [len(pl.get("points", "").split()) for pl in lines] == [2, 1]


def test_band_is_a_polygon_between_the_two_curves() -> None:
    band = Band("5–95 %", [0, 1, 2], [1, 2, 3], [4, 5, 6])
    root = parse(render_svg(chart(bands=(band,), y_range=(0.0, 10.0), x_range=(0.0, 2.0))))
    poly = root.find(f"{NS}polygon")
    assert poly is not None
    pts = poly.get("points", "").split()
    assert len(pts) == 6  # 3 upper points forward + 3 lower points back
    # 760×440, margins left 72, right 24, top 42, bottom 56 + 20 per legend row (one row here):
    # plot height 440 − 42 − 76 = 322; upper at x=0 is 4 of 0–10 → (72, 42 + 322·0.6 = 235.2)
    assert pts[0] == "72.0,235.2"


def test_reference_line_and_marker_positions() -> None:
    c = chart(
        hlines=(HLine(5.0, "limit"),),
        vmarkers=(VMarker(2.0, "session"),),
        x_range=(0.0, 4.0),
        y_range=(0.0, 20.0),
    )
    root = parse(render_svg(c))
    lines = [(ln.get("x1"), ln.get("y1"), ln.get("x2"), ln.get("y2")) for ln in root.findall(f"{NS}line")]
    # plot 664 × 322 (one legend row): y = 5 of 0–20 → 42 + 322·0.75 = 283.5; x = 2 of 0–4 → 72 + 332 = 404
    assert ("72.0", "283.5", "736.0", "283.5") in lines
    assert ("404.0", "42.0", "404.0", "364.0") in lines


def test_unsafe_colour_or_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ChartError):
        render_svg(chart(series=(Series("x", [0, 1], [1, 2], color='red" onload="alert(1)'),)))
    with pytest.raises(ChartError):
        render_svg(chart(series=(Series("x", [0, 1], [1]),)))
    with pytest.raises(ChartError):
        render_svg(chart(series=(Series("x", [0, 1], [1, 2], dash="1;x"),)))


def test_nice_ticks() -> None:
    assert nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0, 1440, 9) == [0, 200, 400, 600, 800, 1000, 1200, 1400]
    assert nice_ticks(0, 0.9) == [0, 0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(5, 5) == [5]


def test_legend_sits_below_the_plot_and_wraps() -> None:
    many = tuple(Series(f"a fairly long series label {i}", [0, 1], [i, i + 1]) for i in range(6))
    root = parse(render_svg(chart(series=many)))
    texts = [t for t in root.findall(f"{NS}text") if (t.text or "").startswith("a fairly long")]
    rows = sorted({float(t.get("y", "0")) for t in texts})
    assert len(texts) == 6 and len(rows) >= 2
    frame = root.findall(f"{NS}rect")[1]  # [0] is the white background, [1] the plot frame
    assert min(rows) > float(frame.get("y", "0")) + float(frame.get("height", "0"))


def test_empty_chart_still_renders() -> None:
    root = parse(render_svg(LineChart(title="empty", x_label="x", y_label="y")))
    assert root.find(f"{NS}title") is not None
