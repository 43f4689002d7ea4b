"""The one chart renderer: a panel of lines over time as SVG elements, shared by the report timeline and the
live dashboard so both draw scales, limits and tooltips the same way (and a fix to one is a fix to both).

A panel is a rectangle with an x scale (linear) and a y scale (linear from a floor, or log10 for latencies
that span decades). Elements carry a class and presentation attributes together: a page with a stylesheet
(the report) restyles them by class, a page without one (the dashboard) still shows them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Line:
    """One series: (x, y) points in data units, its colour, dashed or not, and a class a page can select."""

    name: str
    points: Sequence[tuple[float, float]]
    colour: str
    dashed: bool = False
    css: str = ""


@dataclass(frozen=True)
class Panel:
    """A plot rectangle and its scales."""

    left: float
    top: float
    width: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    log_y: bool = False

    def x(self, value: float) -> float:
        return self.left + (value - self.x_lo) / ((self.x_hi - self.x_lo) or 1.0) * self.width

    def y(self, value: float) -> float:
        if self.log_y:
            lo, hi = math.log10(self.y_lo), math.log10(self.y_hi)
            share = (math.log10(max(value, self.y_lo)) - lo) / ((hi - lo) or 1.0)
        else:
            share = (value - self.y_lo) / ((self.y_hi - self.y_lo) or 1.0)
        return self.top + self.height * (1 - share)


def title(text: str) -> str:
    """A tooltip child element: hover text without a script, so pages work offline and from CI artefacts."""
    return f"<title>{escape(text)}</title>"


def text(x: float, y: float, content: str, cls: str = "", anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'
    )


def line_panel(
    panel: Panel,
    lines: Sequence[Line],
    *,
    y_ticks: Sequence[tuple[float, str]] = (),
    limit: tuple[float, str] | None = None,
    tip: Callable[[Line, float, float], str] | None = None,
    max_markers: int = 120,
    underlay: Sequence[str] = (),
) -> list[str]:
    """The panel's frame, what the caller lays under the lines (`underlay`: bars, shaded windows), its y
    ticks with grid lines, a dashed limit line with its label, and each line as a polyline with a marker per
    point (markers carry the tooltips, and make a one-point series visible; past `max_markers` points a line
    is drawn without them)."""
    right = panel.left + panel.width
    parts = [
        f'<rect x="{panel.left:.1f}" y="{panel.top:.1f}" width="{panel.width:.1f}" height="{panel.height:.1f}" '
        'class="panel" fill="#fafbfc" stroke="#ddd"/>',
        *underlay,
    ]
    for value, label in y_ticks:
        y = panel.y(value)
        parts.append(
            f'<line x1="{panel.left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" class="grid" stroke="#eee"/>'
        )
        parts.append(text(panel.left - 4, y + 4, label, "tick", "end", ' font-size="10"'))
    if limit is not None:
        value, label = limit
        y = panel.y(value)
        parts.append(
            f'<line x1="{panel.left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" class="limit" '
            f'stroke="#cf222e" stroke-dasharray="6 4">{title(label)}</line>'
        )
        parts.append(text(right - 4, y - 4, label, "limit-text", "end", ' font-size="10" fill="#cf222e"'))
    for line in lines:
        if not line.points:
            continue
        coords = [(panel.x(px), panel.y(py)) for px, py in line.points]
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        parts.append(
            f'<polyline class="{line.css}" points="{path}" fill="none" stroke="{line.colour}" '
            f'stroke-width="1.8"{dash}/>'
        )
        if len(coords) > max_markers:
            continue
        for (cx, cy), (px, py) in zip(coords, line.points, strict=True):
            hover = title(tip(line, px, py)) if tip else ""
            parts.append(
                f'<circle class="{line.css}" cx="{cx:.1f}" cy="{cy:.1f}" r="2.2" fill="{line.colour}">'
                f"{hover}</circle>"
            )
    return parts
