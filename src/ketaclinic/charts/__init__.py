"""Pure chart renderers (no I/O): SVG line charts for PK curves, score trajectories and sessions."""

from .svg import Band, ChartError, HLine, LineChart, Series, VMarker, nice_ticks, render_svg

__all__ = ["Band", "ChartError", "HLine", "LineChart", "Series", "VMarker", "nice_ticks", "render_svg"]
