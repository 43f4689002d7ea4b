"""The terminal's summary table: one line per scenario, then the overall verdict and where the reports are.

It is what a person sees at the end of `harness run` and what a CI log keeps, so it names the checks that
failed or could not decide rather than only counting them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.records import RunSummary, Verdict
from harness.reports.outcome import case_classname, failed_and_unknown, repeated_names

ANSI = {
    Verdict.VALID: "\033[32m",
    Verdict.INVALID: "\033[31m",
    Verdict.UNKNOWN: "\033[33m",
    Verdict.NOT_APPLICABLE: "\033[36m",
}
RESET = "\033[0m"


def _paint(text: str, verdict: Verdict, colour: bool) -> str:
    return f"{ANSI[verdict]}{text}{RESET}" if colour else text


def run_folder(summary: RunSummary) -> Path | None:
    """The run folder, as the common parent of the scenario folders (when the caller does not say)."""
    parents = {result.folder.parent for result in summary.scenarios if result.folder is not None}
    return parents.pop() if len(parents) == 1 else None


Row = tuple[str, str, str, str, str]  # scenario, verdict, duration, failed, unknown
HEADER: Row = ("scenario", "verdict", "duration", "failed", "unknown")


def summary_table(summary: RunSummary, folder: Path | None = None, colour: bool = False) -> str:
    """The table as text, columns padded to fit; `colour` adds ANSI colours to the verdicts."""
    repeated = repeated_names(summary.scenarios)
    rows = []
    skipped: list[str] = []
    for result in summary.scenarios:
        failed, unknown = failed_and_unknown(result)
        name = case_classname(result, result.name in repeated)
        rows.append(_row(name, str(result.verdict), result.duration_s, failed, unknown))
        if result.verdict is Verdict.NOT_APPLICABLE:
            skipped.append(
                f"not applicable: {name}: "
                + ("; ".join(result.not_applicable) or "its planted bug cannot show here")
            )
    where = folder if folder is not None else run_folder(summary)
    if summary.not_run:
        skipped.append(f"not run (stopped early by --maxfail): {', '.join(summary.not_run)}")
    return _render(rows, summary.verdict, summary.interrupted, where, colour, skipped)


def report_table(document: Mapping[str, Any], folder: Path | None = None, colour: bool = False) -> str:
    """The same table from a stored `report.json` (see `load_report`), to show a finished run again."""
    scenarios = document["scenarios"]
    names = [s["name"] for s in scenarios]
    rows = []
    for s in scenarios:
        repeated = names.count(s["name"]) > 1 or s.get("repeat", 0)
        name = f"{s['name']}#{s.get('repeat', 0) + 1}" if repeated else s["name"]
        rows.append(_row(name, s["verdict"], s["duration_s"], s.get("failed", []), s.get("undecided", [])))
    skipped = [
        f"not applicable: {s['name']}: "
        + ("; ".join(s.get("not_applicable") or []) or "its planted bug cannot show here")
        for s in scenarios
        if s["verdict"] == Verdict.NOT_APPLICABLE
    ]
    if document.get("not_run"):
        skipped.append(f"not run (stopped early by --maxfail): {', '.join(document['not_run'])}")
    return _render(
        rows, Verdict(document["verdict"]), bool(document.get("interrupted")), folder, colour, skipped
    )


def _row(name: str, verdict: str, duration_s: float, failed: list[str], unknown: list[str]) -> Row:
    return (name, verdict, f"{duration_s:.1f}s", ", ".join(failed) or "-", ", ".join(unknown) or "-")


def _render(
    rows: list[Row],
    verdict: Verdict,
    interrupted: bool,
    where: Path | None,
    colour: bool,
    skipped: list[str] | None = None,
) -> str:
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(row: Row, painted: bool = False) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                 row[3].ljust(widths[3]), row[4]]  # fmt: skip
        if painted:
            cells[1] = _paint(cells[1], Verdict(row[1]), colour)
        return "  ".join(cells).rstrip()

    lines = [line(HEADER), "  ".join("-" * w for w in widths), *(line(row, True) for row in rows)]
    tally = {v: sum(row[1] == v for row in rows) for v in Verdict}
    counts = ", ".join(f"{n} {v}" for v, n in tally.items() if n)
    last = f"verdict: {_paint(str(verdict).upper(), verdict, colour)} ({counts or 'no scenarios'})"
    if interrupted:
        last += " - interrupted"
    if where is not None:
        last += f" - reports in {where}"
    notes = list(skipped or [])
    return "\n".join([*lines, *(["", *notes] if notes else []), "", last]) + "\n"
