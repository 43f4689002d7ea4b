"""`report.html`: the run for people, one self-contained page (no scripts, no fonts, no network).

First the verdict and how to re-run; then a table of scenarios; then, per scenario, its timeline, its fault
windows with the evidence that they took effect, its checks, and every anomaly in its own sentence with the
entities and rows that prove it. Every string from the run is escaped: explanations and witness rows come
from the database under test and may hold anything.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from harness.records import CheckResult, RunSummary, ScenarioResult, Verdict
from harness.reports.document import iso, jsonable, relative
from harness.reports.outcome import RUN_CASE, Case, Outcome, case_classname, cases, repeated_names
from harness.reports.timeline import timeline_svg

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c2430;margin:0;background:#f4f6f8}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 6px} h2{font-size:18px;margin:0 0 8px} h3{font-size:15px;margin:18px 0 6px}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:18px 20px;margin:18px 0}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e6eaef;
vertical-align:top} th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6776}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid #e1e6eb;border-radius:6px;padding:10px;overflow-x:auto;white-space:pre-wrap}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}
.valid,.passed{background:#2e7d32}.invalid,.failed{background:#c62828}.unknown,.error{background:#8d6e00}
.not-applicable,.skipped{background:#546e7a}
.big{font-size:15px;padding:3px 14px}
.meta{color:#5b6776} .meta b{color:#1c2430;font-weight:600}
.anomaly{border-left:4px solid #c62828;background:#fdf3f3;padding:8px 12px;margin:8px 0;border-radius:0 6px 6px 0}
.anomaly.expected{border-color:#2e7d32;background:#f1f8f1}
.kind{font:600 12px ui-monospace,monospace;color:#8e1b1b}.anomaly.expected .kind{color:#1b5e20}
.entities{color:#37474f;font-size:13px} .muted{color:#78909c}
.banner{background:#fff4e5;border:1px solid #ffb74d;padding:10px 14px;border-radius:6px;margin:12px 0}
svg.timeline{width:100%;height:auto;background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#37474f} svg text.tick{fill:#78909c}
svg text.lane{font-weight:600} svg text.muted{fill:#90a4ae;font-style:italic}
svg text.fault-label{font-weight:600;fill:#8a4b00} svg text.mark-text{fill:#78909c}
svg text.limit-text{fill:#b71c1c} svg text.legend{fill:#5b6776}
svg rect.fault{fill:#ff9800;fill-opacity:.14;stroke:#ff9800;stroke-opacity:.55}
svg rect.no-effect{fill:#9e9e9e;stroke:#9e9e9e;stroke-dasharray:4 3}
svg rect.panel{fill:none;stroke:#e3e8ee} svg line.grid{stroke:#eceff1}
svg line.axis{stroke:#90a4ae} svg line.mark{stroke:#90a4ae;stroke-dasharray:3 3}
svg line.limit{stroke:#c62828;stroke-dasharray:6 4;stroke-width:1.2} svg circle.marker{stroke:#fff;stroke-width:1.2}
details summary{cursor:pointer;color:#455a64}
"""


def badge(verdict: str, big: bool = False) -> str:
    """A coloured verdict or outcome, with the word itself so it reads in print and for colour-blind eyes."""
    size = " big" if big else ""
    return f'<span class="badge {escape(verdict)}{size}">{escape(verdict)}</span>'


def _anchor(classname: str) -> str:
    return "s-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in classname)


def _header(summary: RunSummary) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in summary.versions.items())
    dirty = " (dirty tree)" if summary.git_dirty else ""
    seed = str(summary.seed) if summary.seed is not None else "per scenario"
    rows = [
        f"<h1>harness run {escape(summary.run_id)} {badge(str(summary.verdict), big=True)}</h1>",
        f'<div class="meta">started <b>{escape(iso(summary.started_wall) or "?")}</b> · '
        f"took <b>{summary.duration_s:.1f}s</b> · seed <b>{escape(seed)}</b> · "
        f"git <b>{escape(summary.git_sha[:12])}{escape(dirty)}</b> · {escape(versions)}</div>",
        f"<h3>Re-run</h3><pre>{escape(summary.command)}</pre>",
    ]
    if summary.interrupted:
        rows.append(
            '<div class="banner">This run was interrupted: scenarios after the last one listed did not '
            "run, and the verdict covers only those that did.</div>"
        )
    return "<section>" + "\n".join(rows) + "</section>"


def _summary_table(summary: RunSummary, repeated: frozenset[str]) -> str:
    rows = []
    for result in summary.scenarios:
        classname = case_classname(result, result.name in repeated)
        bad = [c for c in cases(result) if c.outcome is not Outcome.PASSED]
        listed = (
            ", ".join(f"{escape(c.name)} ({escape(str(c.outcome))})" for c in bad)
            or '<span class="muted">none</span>'
        )
        faults = len(result.record.faults) if result.record else 0
        rows.append(
            f'<tr><td><a href="#{_anchor(classname)}">{escape(classname)}</a></td><td>{badge(str(result.verdict))}</td>'
            f'<td class="num">{result.duration_s:.1f}s</td><td class="num">{len(result.checks)}</td>'
            f'<td class="num">{faults}</td><td>{listed}</td></tr>'
        )
    head = "<tr><th>scenario</th><th>verdict</th><th>duration</th><th>checks</th><th>faults</th><th>not passed</th></tr>"
    return f"<section><h2>Scenarios</h2><table>{head}{''.join(rows)}</table></section>"


def _anomalies(check: CheckResult, case: Case) -> str:
    if not check.anomalies:
        return ""
    cls = "anomaly expected" if case.expected_invalid else "anomaly"
    items = []
    for anomaly in check.anomalies:
        entities = (
            f'<div class="entities">entities: {escape(", ".join(anomaly.entities))}</div>'
            if anomaly.entities
            else ""
        )
        rows = ""
        if anomaly.witnesses:
            text = "\n".join(json.dumps(jsonable(w), ensure_ascii=False) for w in anomaly.witnesses)
            rows = f"<details><summary>{len(anomaly.witnesses)} witness row(s)</summary><pre>{escape(text)}</pre></details>"
        items.append(
            f'<div class="{cls}"><span class="kind">{escape(anomaly.kind)}</span> '
            f"{escape(anomaly.explanation)}{entities}{rows}</div>"
        )
    note = " (the planted bug this scenario exists to catch)" if case.expected_invalid else ""
    return (
        f"<h3>{escape(check.name)}: {len(check.anomalies)} anomal{'y' if len(check.anomalies) == 1 else 'ies'}{escape(note)}</h3>"
        + "".join(items)
    )


def _checks(result: ScenarioResult) -> str:
    all_cases = cases(result)
    rows, details = [], []
    for case in all_cases:
        check = case.check
        counts = ", ".join(f"{k} {v}" for k, v in (check.counts.items() if check else ()))
        verdict = badge(str(check.verdict)) if check else ""
        expected = "invalid" if case.expected_invalid else ("valid" if check else "")
        rows.append(
            f"<tr><td>{escape(case.name)}</td><td>{verdict}</td><td>{escape(expected)}</td>"
            f"<td>{badge(str(case.outcome))}</td><td>{escape(counts)}</td><td>{escape(case.message)}</td></tr>"
        )
        if check is not None:
            details.append(_anomalies(check, case))
            if check.error:
                details.append(
                    f"<h3>{escape(check.name)} could not decide</h3><pre>{escape(check.error)}</pre>"
                )
        elif case.name != RUN_CASE and case.outcome is not Outcome.PASSED and case.detail != case.message:
            details.append(f"<h3>{escape(case.name)}</h3><pre>{escape(case.detail)}</pre>")
    head = (
        "<tr><th>check</th><th>verdict</th><th>expected</th><th>outcome</th><th>counts</th>"
        "<th>first finding</th></tr>"
    )
    return f"<h3>Checks</h3><table>{head}{''.join(rows)}</table>" + "".join(details)


def _faults(result: ScenarioResult) -> str:
    if result.record is None or not result.record.faults:
        return ""
    t0 = result.record.workload_start_wall
    rows = []
    for w in result.record.faults:
        end = f"+{w.end_wall - t0:.1f}s" if w.end_wall is not None else "never healed"
        took = {True: "yes", False: "no", None: "could not tell"}[w.took_effect]
        rows.append(
            f"<tr><td>{escape(w.label)}</td><td class='num'>+{w.start_wall - t0:.1f}s</td>"
            f"<td class='num'>{escape(end)}</td><td>{escape(took)}</td><td>{escape(w.evidence)}</td></tr>"
        )
    head = "<tr><th>fault</th><th>start</th><th>healed</th><th>took effect</th><th>evidence</th></tr>"
    return f"<h3>Fault windows</h3><table>{head}{''.join(rows)}</table>"


def _scenario(result: ScenarioResult, classname: str, folder: Path | None) -> str:
    record = result.record
    parts = [f'<section id="{_anchor(classname)}"><h2>{escape(classname)} {badge(str(result.verdict))}</h2>']
    if record is not None and record.scenario.description:
        parts.append(f"<p>{escape(record.scenario.description)}</p>")
    where = relative(result.folder, folder)
    drained = "" if record is None else (" · drained" if record.drained else " · <b>did not drain</b>")
    parts.append(
        f'<div class="meta">seed <b>{result.seed}</b> · repeat <b>{result.repeat}</b> · '
        f"took <b>{result.duration_s:.1f}s</b>{drained}"
        + (f" · artefacts <code>{escape(where)}</code>" if where else "")
        + "</div>"
    )
    if record is not None and where:
        parts.append(
            '<div class="meta">run it again, same seed, workload and faults: '
            f"<code>harness replay {escape(str(Path(folder or '.').name))}/{escape(where)}</code> "
            f"(from the folder holding the run folder) · judge it again: <code>harness check "
            f"{escape(str(Path(folder or '.').name))}</code></div>"
        )
    if result.not_applicable:
        parts.append(
            "<h3>Not applicable to this pipeline</h3><ul>"
            + "".join(f"<li>{escape(reason)}</li>" for reason in result.not_applicable)
            + "</ul>"
        )
    if result.error:
        parts.append(f"<h3>The scenario could not run</h3><pre>{escape(result.error)}</pre>")
    if record is not None:
        parts.append("<h3>Timeline</h3>" + timeline_svg(record))
    else:
        parts.append('<p class="muted">No recorded run: nothing to draw.</p>')
    parts.append(_faults(result))
    parts.append(_checks(result))
    parts.append("</section>")
    return "\n".join(parts)


def report_html(summary: RunSummary, folder: Path | None = None) -> str:
    """The whole page as text; `folder` is the run folder, to show artefact paths relative to it."""
    repeated = repeated_names(summary.scenarios)
    verdict = summary.verdict
    body = [_header(summary), _summary_table(summary, repeated)]
    body += [_scenario(r, case_classname(r, r.name in repeated), folder) for r in summary.scenarios]
    title = escape(
        f"{verdict.upper() if verdict is not Verdict.VALID else 'valid'} · harness run {summary.run_id}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )
