"""A scenario's timeline as inline SVG: what the faults did to the pipeline, on one time axis.

x is seconds since the workload started. Fault windows are shaded across every lane, so a person sees at a
glance whether the backlog grew, the gap widened and the alert fired inside the window and came back after
the heal. Everything is drawn from the recorded run only (ops, fault windows, samples, the final read of the
alert history), with `<title>` tooltips instead of scripts, so the page works offline and from a CI artefact.
"""

from __future__ import annotations

from html import escape

from harness.records import RunRecord
from harness.reports.chart import Line, Panel, line_panel
from harness.reports.series import Series, series_of

WIDTH = 1100
LEFT_MIN, LEFT_MAX = 130, 300  # room for lane labels, as wide as the longest needs within these bounds
RIGHT = 24
CHAR_W = 6.6  # rough width of one 11px character (the page.STYLE font), to keep fault labels apart
BOLD_W = 7.2  # the same for the bold lane labels, a little generously
LANE_PAD = 8
STATE_COLOUR = {"pending": "#e0a800", "firing": "#c62828", "resolved": "#2e7d32", "inactive": "#78909c"}
BACKLOG, OPEN, GAP = "#1565c0", "#00897b", "#6a1b9a"
REQUEST_COLOUR = {"ok": "#607d8b", "fail": "#c62828", "info": "#ef6c00", "open": "#ef6c00"}


def nice_step(span: float, target: int = 10) -> float:
    """A round tick step giving about `target` ticks over `span` seconds."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= target:
            return step
    return 3600.0 * max(1, round(span / 3600 / target))


def _fmt(value: float) -> str:
    """Short numbers for ticks and tips: 281, 4.8, 0.016."""
    if value == int(value) or abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2g}"


class _Canvas:
    """SVG elements on a shared x scale; every text goes through `escape`."""

    def __init__(self, lo: float, hi: float, labels: list[str]) -> None:
        self.lo, self.hi = lo, hi
        widest = max((len(label) for label in labels), default=0) * BOLD_W + 20
        self.left = min(max(widest, LEFT_MIN), LEFT_MAX)
        self.parts: list[str] = []

    def x(self, t: float) -> float:
        return self.left + (t - self.lo) / (self.hi - self.lo) * (WIDTH - self.left - RIGHT)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, content: str, cls: str = "", anchor: str = "start") -> None:
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{escape(content)}</text>'
        )

    def title(self, content: str) -> str:
        return f"<title>{escape(content)}</title>"


def _fault_text(label: str, took: bool | None, end: float | None) -> str:
    return label + (" (no effect)" if took is False else "") + (" (not healed)" if end is None else "")


def _fault_rows(canvas: _Canvas, texts: list[str], starts: list[float]) -> list[int]:
    """A label row per fault so labels of overlapping faults do not cover each other."""
    ends: list[float] = []
    rows = []
    for text, start in zip(texts, starts, strict=True):
        x0 = canvas.x(start)
        width = len(text) * CHAR_W + 14
        row = next((i for i, end in enumerate(ends) if end <= x0), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = x0 + width
        rows.append(row)
    return rows


def _line_chart(
    canvas: _Canvas, top: float, height: float, title: str, lines: list[Line], limit: float | None, unit: str
) -> None:
    """A panel of lines sharing a y scale from 0 to their peak, with the SLO limit dashed when given."""
    width = WIDTH - canvas.left - RIGHT
    canvas.text(canvas.left - 10, top + height / 2 + 4, title, "lane", "end")
    if not any(line.points for line in lines):
        canvas.add(f'<rect x="{canvas.left}" y="{top}" width="{width}" height="{height}" class="panel"/>')
        canvas.text(canvas.left + 10, top + height / 2 + 4, "no observer samples recorded", "muted")
        return
    peak = max([v for line in lines for _t, v in line.points] + [limit or 0.0, 1e-9])
    panel = Panel(canvas.left, top, width, height, canvas.lo, canvas.hi, 0.0, peak * 1.1)
    canvas.parts += line_panel(
        panel,
        lines,
        y_ticks=[(peak, f"{_fmt(peak)}{unit}"), (0.0, f"0{unit}")],
        limit=None if limit is None else (limit, f"limit {_fmt(limit)}{unit}"),
        tip=lambda line, t, v: f"{line.name} = {_fmt(v)}{unit} at +{t:.1f}s",
    )


def _span(series: Series) -> tuple[float, float]:
    times = [0.0, series.workload_end]
    times += [f[0] for f in series.faults] + [f[1] for f in series.faults if f[1] is not None]
    times += [t for rows in series.alerts.values() for t, _s, _v in rows]
    times += [t for t, _v in series.samples] + [t for t, _o, _d in series.requests]
    lo, hi = min(times), max(times)
    pad = max((hi - lo) * 0.02, 0.2)
    return min(0.0, lo - pad if lo < 0 else 0.0), hi + pad


def timeline_svg(record: RunRecord) -> str:
    """The whole timeline of one scenario as an `<svg>` element, ready to inline in the page."""
    series = series_of(record)
    lo, hi = _span(series)
    alert_names = sorted(series.alerts)
    canvas = _Canvas(lo, hi, [*alert_names, "gap: oldest waiting", f"requests ({len(series.requests)})"])
    rows = _fault_rows(
        canvas,
        [_fault_text(label, took, end) for _s, end, label, took, _e in series.faults],
        [start for start, *_rest in series.faults],
    )
    fault_lane = 18 * max(1, max(rows, default=0) + 1)
    layout = {"faults": 6.0}
    layout["alerts"] = layout["faults"] + fault_lane + LANE_PAD
    alert_h = 18 * max(1, len(alert_names))
    layout["backlog"] = layout["alerts"] + alert_h + LANE_PAD
    layout["gap"] = layout["backlog"] + 80 + LANE_PAD
    layout["requests"] = layout["gap"] + 80 + LANE_PAD
    bottom = layout["requests"] + 24

    # fault windows, shaded over every lane, labelled in their own lane
    canvas.text(canvas.left - 10, layout["faults"] + 13, "faults", "lane", "end")
    for (start, end, label, took, evidence), row in zip(series.faults, rows, strict=True):
        x0, x1 = canvas.x(start), canvas.x(end if end is not None else hi)
        cls = "fault" if took is not False else "fault no-effect"
        note = {True: "took effect", False: "never took effect", None: "effect not confirmed"}[took]
        healed = f"healed at +{end:.1f}s" if end is not None else "never healed"
        tip = f"{label}: from +{start:.1f}s, {healed}; {note}" + (f" ({evidence})" if evidence else "")
        canvas.add(
            f'<rect x="{x0:.1f}" y="{layout["faults"]}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{bottom - layout["faults"]:.1f}" class="{cls}">{canvas.title(tip)}</rect>'
        )
        canvas.text(x0 + 4, layout["faults"] + 13 + 18 * row, _fault_text(label, took, end), "fault-label")

    # alert series: pending and firing as bars, every transition as a marker
    if not alert_names:
        canvas.text(canvas.left - 10, layout["alerts"] + 13, "alerts", "lane", "end")
        canvas.text(canvas.left + 10, layout["alerts"] + 13, "no alert transitions", "muted")
    for i, name in enumerate(alert_names):
        y = layout["alerts"] + 18 * i + 9
        canvas.text(canvas.left - 10, y + 4, name, "lane alert-name", "end")
        canvas.add(f'<line x1="{canvas.left}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" class="grid"/>')
        transitions = series.alerts[name]
        for (t, state, _v), following in zip(transitions, [*transitions[1:], None], strict=True):
            if state in ("pending", "firing"):
                x1 = canvas.x(following[0] if following else hi)
                canvas.add(
                    f'<rect x="{canvas.x(t):.1f}" y="{y - 5}" width="{max(x1 - canvas.x(t), 1):.1f}" '
                    f'height="10" rx="2" fill="{STATE_COLOUR[state]}" opacity="0.55"/>'
                )
        for t, state, value in transitions:
            colour = STATE_COLOUR.get(state, "#455a64")
            tip = f"{name}: {state} at +{t:.1f}s" + (f" (value {value})" if value is not None else "")
            canvas.add(
                f'<circle cx="{canvas.x(t):.1f}" cy="{y}" r="4.5" fill="{colour}" class="marker">'
                f"{canvas.title(tip)}</circle>"
            )

    flows = [
        Line("backlog (jobs)", series.backlog, BACKLOG),
        Line("open flows", series.open_flows, OPEN, dashed=True),
    ]
    _line_chart(canvas, layout["backlog"], 80, "backlog", flows, None, "")
    gap = [Line(series.gap_name, series.gap, GAP)]
    _line_chart(canvas, layout["gap"], 80, series.gap_name, gap, series.gap_limit, "s")

    # workload requests as ticks, coloured by how they ended
    top = layout["requests"]
    canvas.text(canvas.left - 10, top + 16, f"requests ({len(series.requests)})", "lane", "end")
    for t, outcome, text in series.requests:
        x = canvas.x(t)
        colour = REQUEST_COLOUR.get(outcome, "#607d8b")
        tall = 4 if outcome == "ok" else 0
        canvas.add(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + 2 + tall}" y2="{top + 22}" stroke="{colour}" '
            f'stroke-width="1.2">{canvas.title(f"+{t:.2f}s {text}")}</line>'
        )

    # workload start and end, the x axis, the legend
    for t, label, anchor in ((0.0, "workload start", "start"), (series.workload_end, "workload end", "end")):
        x = canvas.x(t)
        canvas.add(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{layout["faults"]}" y2="{bottom}" class="mark"/>')
        canvas.text(x + (3 if anchor == "start" else -3), bottom + 28, label, "mark-text", anchor)
    canvas.add(f'<line x1="{canvas.left}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" class="axis"/>')
    step = nice_step(hi - lo)
    tick = step * int(lo / step)
    while tick <= hi:
        if tick >= lo:
            x = canvas.x(tick)
            canvas.add(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" class="axis"/>')
            canvas.text(x, bottom + 15, f"{_fmt(tick)}s", "tick", "middle")
        tick = round(tick + step, 6)
    height = _legend(canvas, bottom + 48, series.gap_name) + 8
    body = "\n".join(canvas.parts)
    label = escape(f"timeline of {record.scenario.name}")
    return (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg">\n{body}\n</svg>'
    )


def _legend(canvas: _Canvas, y: float, gap_name: str) -> float:
    """The key to the marks, wrapped onto as many rows as the width needs; returns its last baseline."""
    x = float(canvas.left)
    items = [
        ("rect", "fault", "fault window"),
        ("circle", STATE_COLOUR["pending"], "alert pending"),
        ("circle", STATE_COLOUR["firing"], "alert firing"),
        ("circle", STATE_COLOUR["resolved"], "resolved"),
        ("line", BACKLOG, "backlog"),
        ("dash", OPEN, "open flows"),
        ("line", GAP, gap_name),
        ("tick", REQUEST_COLOUR["ok"], "request ok"),
        ("tick", REQUEST_COLOUR["fail"], "failed"),
        ("tick", REQUEST_COLOUR["info"], "unknown (info)"),
    ]
    for shape, colour, label in items:
        if x + 19 + len(label) * CHAR_W > WIDTH - RIGHT:
            x, y = float(canvas.left), y + 18
        if shape == "rect":
            canvas.add(f'<rect x="{x}" y="{y - 9}" width="14" height="10" class="fault"/>')
        elif shape == "circle":
            canvas.add(f'<circle cx="{x + 6}" cy="{y - 4}" r="4.5" fill="{colour}"/>')
        elif shape in ("line", "dash"):
            dash = ' stroke-dasharray="5 3"' if shape == "dash" else ""
            canvas.add(
                f'<line x1="{x}" x2="{x + 16}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
        else:
            canvas.add(
                f'<line x1="{x + 6}" x2="{x + 6}" y1="{y - 10}" y2="{y + 1}" stroke="{colour}" '
                'stroke-width="1.5"/>'
            )
        canvas.text(x + 19, y, label, "legend")
        x += 19 + len(label) * CHAR_W + 16
    return y
