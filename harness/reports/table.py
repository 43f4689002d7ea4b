"""The terminal's summary table: one line per scenario, then the overall verdict and where the reports are.

It is what a person sees at the end of `harness run` and what a CI log keeps, so it names the checks that
failed or could not decide rather than only counting them.
"""

from __future__ import annotations

from pathlib import Path

from harness.model import RunSummary, Verdict
from harness.reports.outcome import case_classname, failed_and_unknown, repeated_names

ANSI = {Verdict.VALID: "\033[32m", Verdict.INVALID: "\033[31m", Verdict.UNKNOWN: "\033[33m"}
RESET = "\033[0m"


def _paint(text: str, verdict: Verdict, colour: bool) -> str:
    return f"{ANSI[verdict]}{text}{RESET}" if colour else text


def run_folder(summary: RunSummary) -> Path | None:
    """The run folder, as the common parent of the scenario folders (when the caller does not say)."""
    parents = {result.folder.parent for result in summary.scenarios if result.folder is not None}
    return parents.pop() if len(parents) == 1 else None


def summary_table(summary: RunSummary, folder: Path | None = None, colour: bool = False) -> str:
    """The table as text, columns padded to fit; `colour` adds ANSI colours to the verdicts."""
    repeated = repeated_names(summary.scenarios)
    header = ("scenario", "verdict", "duration", "failed", "unknown")
    rows = []
    for result in summary.scenarios:
        failed, unknown = failed_and_unknown(result)
        rows.append(
            (
                case_classname(result, result.name in repeated),
                str(result.verdict),
                f"{result.duration_s:.1f}s",
                ", ".join(failed) or "-",
                ", ".join(unknown) or "-",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...], verdict: Verdict | None = None) -> str:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].ljust(widths[3]),
            row[4],
        ]
        if verdict is not None:
            cells[1] = _paint(cells[1], verdict, colour)
        return "  ".join(cells).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(row, result.verdict) for row, result in zip(rows, summary.scenarios, strict=True)]
    tally = {v: sum(r.verdict is v for r in summary.scenarios) for v in Verdict}
    counts = ", ".join(f"{n} {v}" for v, n in tally.items() if n)
    where = folder if folder is not None else run_folder(summary)
    last = f"verdict: {_paint(str(summary.verdict).upper(), summary.verdict, colour)} ({counts or 'no scenarios'})"
    if summary.interrupted:
        last += " - interrupted"
    if where is not None:
        last += f" - reports in {where}"
    return "\n".join([*lines, "", last]) + "\n"
