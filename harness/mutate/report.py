"""The mutation report: text for a person, JSON for a program (`--json`), HTML for a CI artefact (`--html`).

All three say the same: the kill rate (killed / (killed + survived); equivalent mutants and those that broke
the schema are counted apart), mutants per hour, and every mutant that did not die with why: survivors with
their diff and what the suite would need to kill them, equivalent ones with the rule that judged them,
schema-breakers and unknowns with the reason, and how many the budget left untried.
"""

from __future__ import annotations

import html
from typing import Any

from harness.mutate.operators import OPERATORS
from harness.mutate.runner import BROKE, EQUIVALENT, KILLED, SURVIVED, UNKNOWN, UNTRIED, Outcome
from harness.mutate.session import MutateResult

STATUSES = (KILLED, SURVIVED, EQUIVALENT, BROKE, UNKNOWN, UNTRIED)
ORDER_NOTE = (
    "each mutant ran only the scenarios that executed its statement in the coverage run (and those whose "
    "coverage is unknown), smoke scenarios first, then the ones that killed most so far, then the quickest; "
    "harness run --fail-fast stops at the first invalid one"
)


def _outcome(o: Outcome) -> dict[str, Any]:
    m = o.mutant
    return {
        "id": m.id,
        "status": o.status,
        "target": m.target,
        "kind": m.kind,
        "operator": m.operator,
        "change": m.change,
        "line": m.line,
        "diff": m.diff,
        "needs": OPERATORS[m.operator].needs if o.status == SURVIVED else None,
        "reason": o.reason or None,
        "killed_by": {"scenario": o.scenario, "checks": list(o.checks), "evidence": o.evidence}
        if o.status == KILLED
        else None,
        "scenarios": list(o.scenarios),
        "not_applicable_on_mutant": list(o.lost),
        "seconds": round(o.seconds, 1),
    }


def as_dict(result: MutateResult) -> dict[str, Any]:
    options = result.options
    coverage = result.coverage
    rate = result.kill_rate
    return {
        "sut": options.sut.name,
        "suite": options.targets,
        "seed": options.seed,
        "operators": [op.name for op in options.operators],
        "budget_min": options.budget_min,
        "functions": result.functions,
        "triggers": result.triggers,
        "generated": len(result.generated.mutants),
        "chosen": len(result.order),
        "skipped_rewrites": dict(result.generated.skipped),
        "scenarios": [s.name for s in result.scenarios],
        "left_out": result.left_out,
        "order": ORDER_NOTE
        if coverage and not options.all_scenarios
        else "every scenario for every mutant: smoke ones first, then those that killed most so far; fail-fast",
        "coverage": None
        if coverage is None
        else {
            "seconds": round(coverage.seconds, 1),
            "statements_probed": len(coverage.placed),
            "statements_reached": len(coverage.reached),
            "verdicts": coverage.verdicts,
            "unobserved": sorted(coverage.unobserved),
        },
        "counts": {status: result.count(status) for status in STATUSES},
        "kill_rate": None if rate is None else round(rate, 4),
        "seconds": round(result.seconds, 1),
        "mutant_seconds": round(result.mutant_seconds, 1),
        "mutants_per_hour": _round(result.per_hour(result.seconds)),
        "mutants_per_hour_running": _round(result.per_hour(result.mutant_seconds)),
        "notes": result.notes + result.generated.notes,
        "mutants": [_outcome(o) for o in result.outcomes],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _pct(value: float | None) -> str:
    return "n/a (nothing killed or survived)" if value is None else f"{value:.0%}"


def _summary(doc: dict[str, Any]) -> list[str]:
    counts = doc["counts"]
    lines = [
        f"harness mutate: {doc['sut']}, suite {' '.join(doc['suite'])}, seed {doc['seed']}",
        f"mutants: {doc['generated']} from {doc['functions']} functions and {doc['triggers']} triggers "
        f"({len(doc['operators'])} operators); {doc['chosen']} chosen",
        f"scenarios against mutants: {len(doc['scenarios'])} ({', '.join(doc['scenarios'])})",
    ]
    lines += [f"  left out: {name}: {why}" for name, why in doc["left_out"].items()]
    coverage = doc["coverage"]
    if coverage:
        lines.append(
            f"coverage run: {coverage['statements_reached']}/{coverage['statements_probed']} statements reached in "
            f"{coverage['seconds']:.0f} s"
            + (
                f"; coverage unknown for {', '.join(coverage['unobserved'])}"
                if coverage["unobserved"]
                else ""
            )
        )
    lines.append(f"order: {doc['order']}")
    killed, survived = counts[KILLED], counts[SURVIVED]
    lines.append(
        f"KILL RATE: {_pct(doc['kill_rate'])} ({killed} killed / {killed + survived} killed or survived; "
        f"equivalent, schema-breaking and unknown mutants counted apart)"
    )
    lines.append("  ".join(f"{status} {counts[status]}" for status in STATUSES))
    per_hour, running = doc["mutants_per_hour"], doc["mutants_per_hour_running"]
    lines.append(
        f"time: {doc['seconds'] / 60:.1f} min; {per_hour or 0:.0f} mutants/hour overall, "
        f"{running or 0:.0f}/hour once the coverage run was done"
        + (f"; budget {doc['budget_min']:g} min left {counts[UNTRIED]} untried" if doc["budget_min"] else "")
    )
    return lines


def render_text(result: MutateResult) -> str:
    doc = as_dict(result)
    lines = _summary(doc)
    sections = (
        (SURVIVED, "survivors (what the suite would need to kill each)"),
        (EQUIVALENT, "judged equivalent"),
        (BROKE, "broke the schema or the pipeline at once (not kills)"),
        (UNKNOWN, "unknown"),
        (KILLED, "killed"),
    )
    for status, title in sections:
        chosen = [m for m in doc["mutants"] if m["status"] == status]
        if not chosen:
            continue
        lines += ["", f"{title}: {len(chosen)}"]
        if status == EQUIVALENT:
            lines += _equivalents(chosen)
            continue
        for m in chosen:
            head = f"  {m['id']} {m['operator']} in {m['target']} (line {m['line']}): {m['change']}"
            if status == KILLED:
                k = m["killed_by"]
                lines.append(
                    f"{head}\n      killed by {k['scenario']} ({', '.join(k['checks'])}) in {m['seconds']:.0f} s"
                )
                continue
            lines.append(head)
            if status == SURVIVED:
                lines.append(f"      needs: {m['needs']}")
                lines.append(f"      ran: {', '.join(m['scenarios'])}")
                lines += [
                    f"      not applicable on the mutant: {lost}" for lost in m["not_applicable_on_mutant"]
                ]
            if m["reason"]:
                lines.append(f"      why: {m['reason']}")
            if status == SURVIVED:
                lines += ["      " + line for line in m["diff"].splitlines()]
    if doc["counts"][UNTRIED]:
        lines += ["", f"untried: {doc['counts'][UNTRIED]} (the budget was spent)"]
    lines += [f"note: {note}" for note in doc["notes"]]
    return "\n".join(lines)


def _equivalents(chosen: list[dict[str, Any]]) -> list[str]:
    """Equivalent mutants grouped by the reason that judged them (one rule, many mutants); the diff of those
    that ran anyway (`--run-unreached`)."""
    lines: list[str] = []
    reasons: dict[str, list[dict[str, Any]]] = {}
    for m in chosen:
        reasons.setdefault(m["reason"] or "", []).append(m)
    for reason, group in reasons.items():
        lines.append(f"  why ({len(group)}): {reason}")
        for m in group:
            lines.append(f"    {m['id']} {m['operator']} in {m['target']} (line {m['line']}): {m['change']}")
            if m["scenarios"]:
                lines += ["      " + line for line in m["diff"].splitlines()]
    return lines


def render_html(result: MutateResult) -> str:
    doc = as_dict(result)
    e = html.escape
    rows = []
    for m in doc["mutants"]:
        if m["status"] == UNTRIED:
            continue
        if m["status"] == KILLED:
            k = m["killed_by"]
            detail = f"killed by <b>{e(k['scenario'] or '')}</b> ({e(', '.join(k['checks']))})<br>{e(k['evidence'])}"
        elif m["status"] == SURVIVED:
            detail = f"<b>needs:</b> {e(m['needs'])}<br>ran: {e(', '.join(m['scenarios']))}"
        else:
            detail = e(m["reason"] or "")
        rows.append(
            f"<tr class='{m['status']}'><td>{m['id']}</td><td>{m['status']}</td><td>{e(m['operator'])}</td>"
            f"<td><code>{e(m['target'])}</code> line {m['line']}<br>{e(m['change'])}</td><td>{detail}"
            f"<details><summary>diff</summary><pre>{e(m['diff'])}</pre></details></td></tr>"
        )
    summary = "".join(f"<p>{e(line)}</p>" for line in _summary(doc))
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px;vertical-align:top}tr.killed td:nth-child(2){color:#060}tr.survived td:nth-child(2)"
        "{color:#a00;font-weight:bold}pre{font-size:12px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>harness mutate: {e(doc['sut'])}</title>"
        f"<style>{style}</style></head><body><h1>harness mutate: {e(doc['sut'])}</h1>{summary}"
        "<table><tr><th>mutant</th><th>status</th><th>operator</th><th>where</th><th>what</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
