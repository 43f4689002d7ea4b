"""The dashboard as HTML: one page of panels, an inline-SVG chart of the gap KPI, no external asset.

The machine serving it may have no internet, so there is no CDN, no font and no script library: plain HTML,
a little CSS, and a dozen lines of script that refresh the panels every few seconds from `/panels`.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import Any

from harness.checkers.trace import Trace, render
from harness.ops.dashboard.data import GapPoint, Overview, Snapshot, Table
from harness.reports.chart import Line, Panel, line_panel, title

TITLES = {
    "alerts": "Alerts",
    "alert_history": "Alert history",
    "gap": "KPI event_to_job_gap",
    "backlog": "Backlog",
    "recent_events": "Recent events",
    "jobs_per_entity": "Jobs per entity",
    "job_runs": "Runs per job",
    "runs_with_errors": "Runs with errors",
    "workers": "Workers",
}
ENTITY_COLUMNS = {"entity_id"}

STYLE = """
body{font:13px/1.35 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 16px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0}header .pill{padding:2px 8px;border-radius:10px;background:#39414f}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px;padding:12px}
section{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;padding:8px 12px;overflow:auto;max-height:420px}
section.wide{grid-column:1/-1}h2{font-size:14px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eee;
white-space:nowrap;max-width:320px;overflow:hidden;text-overflow:ellipsis}th{background:#fafbfc;position:sticky;top:0}
tr.firing td{background:#ffebe9}tr.pending td{background:#fff8c5}.empty{color:#777;font-style:italic}
form{display:flex;gap:6px}input[name=entity]{flex:1;font:inherit;padding:4px}pre{font-size:12px;overflow:auto}
a{color:#0969da;text-decoration:none}
"""

SCRIPT = """
async function refresh(){try{const r=await fetch('/panels'+location.search);if(!r.ok)return;
const panels=await r.json();for(const [id,html] of Object.entries(panels)){const el=document.getElementById(id);
if(el)el.innerHTML=html;}document.body.dataset.refreshed=Date.now();}catch(e){}}
setInterval(refresh,3000);
"""


def page(snap: Snapshot, entity: str | None, trace: Trace | str | None) -> str:
    panels = render_panels(snap)
    sections = [
        f'<section id="panel-{name}" class="{"wide" if name in ("alerts", "gap", "recent_events") else ""}">'
        f"{html}</section>"
        for name, html in panels.items()
        if name != "header"
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>pipeline dashboard</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<header id="panel-header">{panels["header"]}</header><main>'
        f'<section class="wide" id="trace">{trace_panel(entity, trace)}</section>'
        + "".join(sections)
        + f"</main><script>{SCRIPT}</script></body></html>"
    )


def render_panels(snap: Snapshot) -> dict[str, str]:
    """Every refreshable panel's inner HTML, keyed by panel name."""
    out = {"header": header(snap.overview)}
    out["alerts"] = _titled("alerts", alerts_table(snap.tables["alerts"]))
    out["gap"] = _titled("gap", gap_panel(snap.overview, snap.series, snap.tables["gap_breaches"]))
    for name in (
        "backlog",
        "recent_events",
        "jobs_per_entity",
        "job_runs",
        "runs_with_errors",
        "alert_history",
        "workers",
    ):
        out[name] = _titled(name, table(snap.tables[name]))
    return out


def _titled(name: str, body: str) -> str:
    return f"<h2>{escape(TITLES[name])}</h2>{body}"


def header(ov: Overview) -> str:
    trigger = (
        '<span class="ok">enabled</span>' if ov.core_trigger_enabled else '<span class="bad">DISABLED</span>'
    )
    return (
        "<h1>pipeline dashboard</h1>"
        f'<span class="pill">alert profile {escape(str(ov.profile))}</span>'
        f'<span class="pill">core trigger {trigger}</span>'
        f'<span class="pill">gateway {escape(str(ov.gateway_mode))}</span>'
        f'<span class="pill">Delta {ov.delta_s:g} s, evaluation every {ov.interval_s:g} s</span>'
        f'<span class="pill">at {escape(_fmt(ov.now))}</span>'
    )


def alerts_table(data: Table) -> str:
    if not data.rows:
        return '<p class="empty">no evaluation yet (is the monitor running?)</p>'
    cols = ("rule", "labels", "state", "value", "condition", "for", "since", "severity", "runbook")
    body = []
    for r in data.rows:
        rule, labels, state, value, op, threshold, for_s, since, _fired, severity, runbook = r
        label_text = ", ".join(f"{k}={v}" for k, v in (labels or {}).items())
        cells = (
            rule,
            label_text,
            state.upper() if state != "inactive" else state,
            _fmt(value),
            f"{op} {_fmt(threshold)}",
            f"{_fmt(for_s)} s",
            _fmt(since),
            severity,
            runbook,
        )
        body.append(
            f'<tr class="{escape(state)}">' + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"
        )
    head = "".join(f"<th>{c}</th>" for c in cols)
    return f'<table class="alerts"><tr>{head}</tr>{"".join(body)}</table>'


def table(data: Table) -> str:
    if not data.rows:
        return '<p class="empty">no rows</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in data.columns)
    rows = []
    for row in data.rows:
        cells = []
        for column, value in zip(data.columns, row, strict=True):
            text = escape(_fmt(value))
            if column in ENTITY_COLUMNS and value is not None:
                text = f'<a href="/?entity={escape(str(value))}">{text}</a>'
            cells.append(f'<td title="{escape(_fmt(value))}">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def gap_panel(ov: Overview, series: tuple[GapPoint, ...], breaches: Table) -> str:
    g = ov.gap
    stats = (
        f"<p>last {ov.window_s:g} s: {g.get('events', 0)} job.*.required events; "
        f"p50 {_ms(g.get('p50_s'))}, p95 {_ms(g.get('p95_s'))}, p99 {_ms(g.get('p99_s'))}, "
        f"max {_ms(g.get('max_s'))}; late {g.get('late', 0)}, pending {g.get('pending', 0)}, "
        f'<span class="{"bad" if g.get("breached") else "ok"}">breached {g.get("breached", 0)}</span></p>'
    )
    return stats + chart(series, ov.delta_s) + "<h2>Current breaches</h2>" + table(breaches)


def chart(series: tuple[GapPoint, ...], delta_s: float, width: int = 900, height: int = 180) -> str:
    """p50 / p95 / max of the gap per bucket on a log scale (0.1 ms .. above Delta), Delta as a dashed line,
    events per bucket as grey bars and breaches as red bars."""
    if not series:
        return '<p class="empty">no data</p>'
    left, right, top, bottom = 50, 10, 10, 22
    highest = max([delta_s] + [p.max_s or 0 for p in series])
    panel = Panel(
        left,
        top,
        width - left - right,
        height - top - bottom,
        0,
        len(series),
        1e-4,
        max(highest * 2, 1e-3),
        True,
    )
    parts = [
        f'<svg id="gap-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="event_to_job_gap over time">',
    ]
    lines = [
        Line(
            name,
            [(i + 0.5, v) for i, p in enumerate(series) if (v := getattr(p, attr)) is not None],
            colour,
            css=attr,
        )
        for name, attr, colour in (
            ("p50", "p50_s", "#0969da"),
            ("p95", "p95_s", "#8250df"),
            ("max", "max_s", "#bf8700"),
        )
    ]
    bars = []
    most = max(p.events for p in series) or 1
    for i, p in enumerate(series):  # events per bucket as grey bars, buckets with breaches shaded red
        x, w = panel.x(i) + 1, max(panel.x(1) - panel.x(0) - 2, 1)
        bar = panel.height * 0.3 * p.events / most
        bars.append(
            f'<rect x="{x:.1f}" y="{panel.top + panel.height - bar:.1f}" width="{w:.1f}" height="{bar:.1f}" '
            f'fill="#d0d7de">{title(f"{p.events} events")}</rect>'
        )
        if p.breached:
            bars.append(
                f'<rect class="breach" x="{x:.1f}" y="{panel.top}" width="{w:.1f}" height="{panel.height}" '
                f'fill="#cf222e" opacity="0.25">{title(f"{p.breached} breached")}</rect>'
            )
    decades = range(-4, int(math.log10(panel.y_hi)) + 1)
    parts += line_panel(
        panel,
        lines,
        y_ticks=[(10.0**exp, _ms(10.0**exp)) for exp in decades],
        limit=(delta_s, f"Delta {delta_s:g} s"),
        tip=lambda line, i, v: f"{line.name} {_ms(v)} at {_fmt(series[int(i)].start)}",
        underlay=bars,
    )
    first, last = series[0].start, series[-1].start
    parts.append(
        f'<text x="{left}" y="{height - 6}" font-size="10">{escape(_fmt(first))}</text>'
        f'<text x="{left + panel.width}" y="{height - 6}" font-size="10" text-anchor="end">{escape(_fmt(last))}'
        "</text>"
    )
    legend = [("p50", "#0969da"), ("p95", "#8250df"), ("max", "#bf8700")]
    for i, (name, colour) in enumerate(legend):
        parts.append(
            f'<text x="{left + 8 + i * 50}" y="{top + 12}" font-size="11" fill="{colour}">{name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def trace_panel(entity: str | None, trace: Trace | str | None) -> str:
    form = (
        '<h2>Trace an entity</h2><form method="get" action="/">'
        f'<input name="entity" placeholder="entity id (uuid)" value="{escape(entity or "")}">'
        '<button type="submit">trace</button></form>'
    )
    if entity is None:
        return form
    if isinstance(trace, str) or trace is None:
        return form + f'<p class="bad">{escape(str(trace))}</p>'
    verdict = '<span class="ok">complete</span>' if trace.complete else '<span class="bad">INCOMPLETE</span>'
    return (
        form + f'<p id="trace-verdict">trace {verdict}</p><pre id="trace-text">{escape(render(trace))}</pre>'
    )


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone().strftime("%H:%M:%S.%f")[:-3]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    seconds = float(value)
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
