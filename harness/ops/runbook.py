"""Runbooks as data: Markdown files whose numbered steps carry executable diagnostic queries.

A step is a heading `### N. Title` followed by prose and one fenced block whose info string starts with
`sql`. The info string may declare what a result means: ```` ```sql finding=core-trigger-disabled ````
says "rows returned here identify the cause `core-trigger-disabled`"; a block without `finding=` only shows
context. Blocks marked ```` ```sql fix ```` are remedies for a person and are never run by a diagnosis.
The alerts a runbook answers are listed on a line `Alerts: `a`, `b``, in the harness's names (the ones
scenarios use), which every pipeline maps to its own rules: one runbook serves any pipeline.

`diagnose` runs every step's query in a read-only transaction (as `pipeline_reader` where that role exists),
so walking a runbook against production can never change it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import BadInput
from harness.sut.config import ALERTS

_STEP = re.compile(r"^###\s+(\d+)\.\s+(.+?)\s*$", re.MULTILINE)
_FENCE = re.compile(r"^```sql([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Undefined table, function, column, object, schema: the runbook reads something this pipeline does not have
# (its queries are written against the reference's objects), which says nothing about the pipeline's health.
MISSING_OBJECT = frozenset({"42P01", "42883", "42703", "42704", "3F000"})
_ALERTS = re.compile(r"^Alerts:\s*(.+)$", re.MULTILINE)
_TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)
MAX_ROWS = 20


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    sql: str
    finding: str | None  # the cause this step identifies when its query returns rows
    text: str


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    path: Path
    # in the harness's names, as every alert source gives them (a pipeline's own rules through its SUT
    # file's [alerts.rules], or the harness's pack): one runbook serves any pipeline
    alerts: tuple[str, ...]
    steps: tuple[Step, ...]

    @property
    def causes(self) -> tuple[str, ...]:
        return tuple(s.finding for s in self.steps if s.finding)


@dataclass(frozen=True)
class StepResult:
    step: Step
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    row_count: int = 0
    error: str | None = None
    seconds: float = 0.0
    lacking: bool = False  # the query names an object this pipeline does not have (not a failure of it)

    @property
    def found(self) -> bool:
        """True when the step declares a cause and its query returned rows."""
        return self.step.finding is not None and self.row_count > 0 and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step.number,
            "title": self.step.title,
            "finding": self.step.finding,
            "found": self.found,
            "row_count": self.row_count,
            "columns": list(self.columns),
            "rows": [[_plain(v) for v in row] for row in self.rows],
            "error": self.error,
            "lacking": self.lacking,
            "seconds": round(self.seconds, 4),
            "sql": self.step.sql,
        }


@dataclass(frozen=True)
class Diagnosis:
    runbook: Runbook
    results: tuple[StepResult, ...] = field(default=())

    @property
    def findings(self) -> tuple[str, ...]:
        return tuple(r.step.finding for r in self.results if r.found and r.step.finding)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"step {r.step.number}: {r.error}" for r in self.results if r.error)

    def unavailable(self, cause: str) -> list[str]:
        """Why this pipeline cannot show `cause` at all: every step that would find it reads an object the
        pipeline lacks (one reason per step); empty when some such step can run."""
        finders = [r for r in self.results if r.step.finding == cause]
        if not finders or not all(r.lacking for r in finders):
            return []
        return [f"step {r.step.number} ({r.step.title}): {r.error}" for r in finders]


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def runbooks_dir() -> Path:
    """The repository's runbooks folder (beside the harness package)."""
    return Path(__file__).resolve().parent / "runbooks"


def available(folder: Path | None = None) -> list[str]:
    folder = folder or runbooks_dir()
    return sorted(p.stem for p in folder.glob("*.md") if p.stem.lower() != "readme")


def load(name: str, folder: Path | None = None) -> Runbook:
    """Read and parse runbook `name` (`not-enqueued` or `harness/ops/runbooks/not-enqueued.md`)."""
    folder = folder or runbooks_dir()
    stem = Path(name).stem
    path = folder / f"{stem}.md"
    if not path.is_file():
        known = ", ".join(available(folder)) or "none"
        raise BadInput(f"unknown runbook {name!r}: no {stem}.md in {folder} (runbooks: {known})")
    return parse(path.read_text(encoding="utf-8"), stem, path)


def parse(text: str, name: str, path: Path) -> Runbook:
    headings = list(_STEP.finditer(text))
    if not headings:
        raise BadInput(f"{path}: no steps; a step is a heading '### N. Title' followed by a ```sql block")
    steps = []
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        body = text[heading.end() : end]
        fences = [f for f in _FENCE.finditer(body) if "fix" not in f.group(1).split()]
        if not fences:
            raise BadInput(f"{path}: step {heading.group(1)} ({heading.group(2)}) has no ```sql block")
        info = fences[0].group(1).split()
        finding = next((w.split("=", 1)[1] for w in info if w.startswith("finding=")), None)
        steps.append(
            Step(
                int(heading.group(1)),
                heading.group(2),
                fences[0].group(2).strip(),
                finding,
                body[: fences[0].start()].strip(),
            )
        )
    numbers = [s.number for s in steps]
    if numbers != list(range(1, len(steps) + 1)):
        raise BadInput(f"{path}: steps must be numbered 1..{len(steps)} in order, found {numbers}")
    title = _TITLE.search(text)
    alerts = _ALERTS.search(text)
    names = tuple(re.findall(r"`([a-z0-9_-]+)`", alerts.group(1))) if alerts else ()
    unknown = [n for n in names if n not in ALERTS]
    if unknown:
        raise BadInput(
            f"{path}: the Alerts line names {', '.join(unknown)}; name the harness's alerts "
            f"({', '.join(ALERTS)}), which each pipeline maps to its own rules"
        )
    return Runbook(name, title.group(1).strip() if title else name, path, names, tuple(steps))


def diagnose(
    dsn: str,
    runbook: Runbook,
    steps: Sequence[Step] | None = None,
    role: str = "pipeline_reader",
) -> Diagnosis:
    """Run the steps' queries read-only and judge each one."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", (role,)).fetchone()
        assert exists is not None  # EXISTS returns one row
        if exists[0]:
            conn.execute("SELECT set_config('role', %s, false)", (role,))
        conn.execute("SET default_transaction_read_only = on")
        return Diagnosis(runbook, tuple(run_step(conn, step) for step in (steps or runbook.steps)))


def run_step(conn: psycopg.Connection[Any], step: Step) -> StepResult:
    started = time.monotonic()
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute(step.sql.encode())
            columns = tuple(d.name for d in cur.description or ())
            rows = cur.fetchall() if cur.description else []
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        lacking = exc.sqlstate in MISSING_OBJECT
        return StepResult(step, error=first, seconds=time.monotonic() - started, lacking=lacking)
    return StepResult(
        step, columns, tuple(tuple(r) for r in rows[:MAX_ROWS]), len(rows), seconds=time.monotonic() - started
    )


def render_result(result: StepResult) -> str:
    """A step's result as a small text table, with what it means."""
    step = result.step
    lines = [f"step {step.number}. {step.title}"]
    if result.lacking:
        lines.append(f"  not on this pipeline: {result.error} (the step reads an object this pipeline lacks)")
        return "\n".join(lines)
    if result.error:
        lines.append(f"  query failed: {result.error}")
        return "\n".join(lines)
    if not result.columns:
        lines.append("  (no result set)")
    elif not result.row_count:
        lines.append("  (no rows)")
    else:
        cells = [list(result.columns)] + [[_cell(v) for v in row] for row in result.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(result.columns))]
        for index, row in enumerate(cells):
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        if result.row_count > len(result.rows):
            lines.append(f"  ... {result.row_count - len(result.rows)} more rows")
    if step.finding:
        verdict = f"FINDING {step.finding}" if result.found else f"no finding ({step.finding} ruled out)"
        lines.append(f"  => {verdict}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
