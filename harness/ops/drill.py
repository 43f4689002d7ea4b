"""`harness drill RUNBOOK`: an incident simulation that proves a runbook still finds its cause.

In a fresh reference system (embedded Postgres by default) under light load, with the fast alert profile:
1. steady state: flows complete, no alert pending or firing, and the runbook's steps find nothing (a runbook
   that blames a healthy system fails its drill);
2. the fault behind the runbook is planted, and the drill waits for one of the runbook's alerts to fire,
   reporting the time to detect (database clock, from planting to the firing transition);
3. every diagnostic step runs against the live system, read-only, and shows its result (`--auto` runs them
   unattended; otherwise a person presses Enter before each one);
4. the verdict: the step that declares the planted cause found it;
5. heal (always, even when interrupted), then wait for the alerts to resolve.
Results go to `reports/drills/<runbook>-<timestamp>.json` and `.md`.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import BadInput
from harness.ops import runbook as rb
from harness.ops.drill_fault import (
    CoreTriggerDisabled,
    CrashBeforeResultEvent,
    Fault,
    LightLoad,
    OrchestratorStopped,
)
from harness.provision import open_provider
from harness.provision.migrations import MigrationPlan
from harness.sqlfile import named_queries
from harness.sut.config import Sut, reference_sut
from harness.sut.system import RunningSystem, SystemOptions
from harness.wait import WaitTimeout, wait_until

Q = named_queries("drill")
DRILL_SETTINGS = {"lease_seconds": "2", "retry_base_ms": "200"}


@dataclass(frozen=True)
class DrillSpec:
    """Which fault a runbook's drill plants, and which of the runbook's findings must identify it."""

    cause: str
    fault: Callable[[], Fault]


DRILLS: dict[str, DrillSpec] = {
    "not-enqueued": DrillSpec("core-trigger-disabled", CoreTriggerDisabled),
    "enqueued-not-executed": DrillSpec("worker-role-absent", OrchestratorStopped),
    "executed-no-event": DrillSpec("runs-lost-mid-job", CrashBeforeResultEvent),
}


@dataclass
class DrillResult:
    runbook: str
    cause: str
    fault: str
    postgres: str = ""
    steady_findings: list[str] = field(default_factory=list)
    planted_at: str | None = None
    detected_alert: str | None = None
    detected_labels: dict[str, Any] = field(default_factory=dict)
    detect_s: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    resolve_s: float | None = None
    transitions: list[dict[str, Any]] = field(default_factory=list)
    flows_requested: int = 0
    flows_closed_after_heal: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def cause_found(self) -> bool:
        return self.cause in self.findings

    @property
    def ok(self) -> bool:
        return (
            self.detect_s is not None and self.cause_found and not self.steady_findings and not self.problems
        )

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items()}, "cause_found": self.cause_found, "ok": self.ok}


def spec_for(name: str, folder: Path | None = None) -> tuple[rb.Runbook, DrillSpec]:
    """The runbook and its drill; BadInput naming the known ones when either is missing."""
    book = rb.load(name, folder)
    spec = DRILLS.get(book.name)
    if spec is None:
        raise BadInput(f"runbook {book.name!r} has no drill; drills exist for: {', '.join(sorted(DRILLS))}")
    if spec.cause not in book.causes:
        raise BadInput(f"{book.path}: no step declares finding={spec.cause}, the cause its drill plants")
    return book, spec


def run_drill(
    name: str,
    postgres: str = "embedded",
    auto: bool = True,
    report_dir: Path = Path("reports/drills"),
    out: Callable[[str], None] = print,
    ask: Callable[[str], str] = input,
    sut: Sut | None = None,
    detect_timeout_s: float = 120.0,
) -> tuple[DrillResult, list[Path]]:
    """Run one drill end to end; returns its result and the report files written."""
    book, spec = spec_for(name)
    sut = sut or reference_sut()
    fault = spec.fault()
    result = DrillResult(book.name, spec.cause, fault.label)
    options = SystemOptions(
        workers={"fase1-executor": 1, "orchestrator": 1, "scheduler": 1, "monitor": 1},
        settings=DRILL_SETTINGS,
    )
    with (
        open_provider(postgres, ready_clones=0) as pg,
        tempfile.TemporaryDirectory(prefix="harness-drill-") as tmp,
    ):
        info = pg.info()
        result.postgres = f"{info.provider} {info.version}"
        dsn = pg.new_database(MigrationPlan(sut.migrations))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(Q["apply_alert_profile"], {"profile": "fast"})
        out(f"drill {book.name}: {book.title}")
        out(f"  fault: {fault.label} ({fault.description}); expected cause: {spec.cause}")
        with RunningSystem(sut, dsn, Path(tmp), options) as system, LightLoad(dsn, system.sql) as load:
            _steady(dsn, book, load, result, out)
            planted = _now(dsn)
            result.planted_at = planted.isoformat()
            out(f"  planted at {planted:%H:%M:%S.%f}"[:-3])
            try:
                fault.plant(system)
                _detect(dsn, book, planted, result, out, detect_timeout_s)
                if result.detect_s is not None:
                    _walk(dsn, book, result, auto, out, ask)
            finally:
                fault.heal(system)
            out("  healed; waiting for the alerts to resolve")
            _resolve(dsn, book, planted, result, out)
            load.stop()
            result.flows_requested = len(load.entities)
            result.flows_closed_after_heal = _closed_after_heal(load)
            if result.flows_closed_after_heal < result.flows_requested:
                result.problems.append(
                    f"only {result.flows_closed_after_heal} of {result.flows_requested} flows "
                    "closed after healing"
                )
            with psycopg.connect(dsn, autocommit=True) as conn:
                result.transitions = [
                    {
                        "at": r[0].isoformat(),
                        "rule": r[1],
                        "labels": r[2],
                        "from": r[3],
                        "to": r[4],
                        "value": r[5],
                    }
                    for r in conn.execute(Q["transitions_since"], {"since": planted}).fetchall()
                ]
    paths = write_report(result, report_dir)
    verdict = "PASSED" if result.ok else "FAILED"
    detect = f"{result.detect_s:.1f} s" if result.detect_s is not None else "not detected"
    out(
        f"drill {book.name} {verdict}: time to detect {detect}; cause {spec.cause} "
        f"{'found' if result.cause_found else 'NOT found'}; report {paths[0]}"
    )
    for problem in result.problems:
        out(f"  problem: {problem}")
    return result, paths


def _now(dsn: str) -> dt.datetime:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(Q["db_now"]).fetchone()[0]


def _active(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(Q["active_alerts"]).fetchall()


def _steady(
    dsn: str, book: rb.Runbook, load: LightLoad, result: DrillResult, out: Callable[[str], None]
) -> None:
    """Flows complete and nothing alerts; then the runbook must find nothing on this healthy system."""
    try:
        wait_until(
            lambda: load.closed() >= 3 and not _active(dsn), 60, "steady state: 3 flows closed, no alert"
        )
    except WaitTimeout as exc:
        result.problems.append(f"no steady state before the fault: {exc}; active alerts: {_active(dsn)}")
        return
    healthy = rb.diagnose(dsn, book)
    result.steady_findings = list(healthy.findings)
    out(
        f"  steady state: {load.closed()} flows closed, no alert; runbook on the healthy system finds "
        f"{', '.join(healthy.findings) or 'nothing'}"
    )
    if healthy.findings:
        result.problems.append(f"the runbook blames a healthy system: {', '.join(healthy.findings)}")


def _detect(
    dsn: str,
    book: rb.Runbook,
    planted: dt.datetime,
    result: DrillResult,
    out: Callable[[str], None],
    timeout_s: float,
) -> None:
    def fired() -> Any:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(Q["first_firing"], {"since": planted, "rules": list(book.alerts)}).fetchone()

    try:
        rule, labels, at, value = wait_until(
            fired, timeout_s, f"one of {', '.join(book.alerts)} to fire", 0.2
        )
    except WaitTimeout as exc:
        result.problems.append(str(exc))
        out(f"  NOT detected within {timeout_s:.0f} s")
        return
    result.detected_alert, result.detected_labels = rule, labels
    result.detect_s = (at - planted).total_seconds()
    out(f"  ALERT {rule}{_labels(labels)} firing (value {value:g}): time to detect {result.detect_s:.1f} s")


def _walk(
    dsn: str,
    book: rb.Runbook,
    result: DrillResult,
    auto: bool,
    out: Callable[[str], None],
    ask: Callable[[str], str],
) -> None:
    out(f"  runbook {book.path.name}: {len(book.steps)} steps")
    results = []
    for step in book.steps:
        if not auto:
            out(f"\n### {step.number}. {step.title}\n{step.text}\n\n{step.sql}\n")
            try:
                if ask(f"press Enter to run step {step.number} (q to stop) ").strip().lower() == "q":
                    break
            except EOFError:
                pass
        one = rb.diagnose(dsn, book, [step]).results[0]
        results.append(one)
        out(rb.render_result(one))
    result.steps = [r.as_dict() for r in results]
    result.findings = [r.step.finding for r in results if r.found and r.step.finding]


def _resolve(
    dsn: str, book: rb.Runbook, planted: dt.datetime, result: DrillResult, out: Callable[[str], None]
) -> None:
    healed = _now(dsn)
    try:
        wait_until(
            lambda: not [a for a in _active(dsn) if a[0] in book.alerts],
            120,
            "the runbook's alerts to resolve",
            0.25,
        )
    except WaitTimeout as exc:
        result.problems.append(f"alerts did not resolve after healing: {exc}")
        return
    result.resolve_s = (_now(dsn) - healed).total_seconds()
    out(f"  resolved {result.resolve_s:.1f} s after healing")


def _closed_after_heal(load: LightLoad) -> int:
    try:
        return int(
            wait_until(lambda: load.closed() >= len(load.entities) and load.closed(), 30, "flows to close")
        )
    except WaitTimeout:
        return load.closed()


def _labels(labels: dict[str, Any] | None) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else ""


def write_report(result: DrillResult, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = folder / f"{result.runbook}-{stamp}.json"
    md_path = folder / f"{result.runbook}-{stamp}.md"
    json_path.write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(_markdown(result), encoding="utf-8")
    return [json_path, md_path]


def _markdown(result: DrillResult) -> str:
    detect = f"{result.detect_s:.1f} s" if result.detect_s is not None else "not detected"
    resolve = f"{result.resolve_s:.1f} s" if result.resolve_s is not None else "not resolved"
    lines = [
        f"# Drill {result.runbook}: {'PASSED' if result.ok else 'FAILED'}",
        "",
        f"- fault: {result.fault}",
        f"- expected cause: `{result.cause}` — {'found' if result.cause_found else 'NOT found'}",
        f"- planted at: {result.planted_at}",
        f"- detected by: `{result.detected_alert}`{_labels(result.detected_labels)} after {detect}",
        f"- resolved after healing: {resolve}",
        f"- healthy system before the fault: findings {', '.join(result.steady_findings) or 'none'}",
        f"- flows: {result.flows_requested} requested, {result.flows_closed_after_heal} closed after healing",
        f"- postgres: {result.postgres}",
        "",
        "## Steps",
        "",
    ]
    for step in result.steps:
        mark = f" — FINDING `{step['finding']}`" if step["found"] else ""
        lines += [
            f"### {step['step']}. {step['title']}{mark}",
            "",
            "```sql",
            step["sql"],
            "```",
            "",
            f"{step['row_count']} row(s)" + (f"; error: {step['error']}" if step["error"] else ""),
            "",
        ]
        if step["rows"]:
            lines += ["| " + " | ".join(step["columns"]) + " |", "|" + "---|" * len(step["columns"])]
            lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in step["rows"][:10]]
            lines.append("")
    if result.problems:
        lines += ["## Problems", ""] + [f"- {p}" for p in result.problems]
    return "\n".join(lines) + "\n"
