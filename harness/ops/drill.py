"""`harness drill RUNBOOK`: an incident simulation that proves a runbook still finds its cause.

A drill is a chaos run with a person's part in it: the fault behind the runbook comes from the nemesis
catalogue (with its heal and its read-back), the load is the workload's, everything lands in a history, and
the run is judged afterwards by the same checkers as any scenario. In a fresh system (the reference by
default) under light load, with the fast alert profile:
1. steady state: flows complete, no alert pending or firing, and the runbook's steps find nothing (a runbook
   that blames a healthy system fails its drill);
2. the fault behind the runbook is planted through the nemesis, and the drill waits for one of the runbook's
   alerts to fire, reporting the time to detect (database clock, from planting to the firing transition);
3. every diagnostic step runs against the live system, read-only, and shows its result (`--auto` runs them
   unattended; otherwise a person presses Enter before each one);
4. heal (always, even when interrupted), wait for the alerts to resolve, drain, read the final state;
5. the verdict: the runbook found the planted cause, and the checkers find the pipeline healed whole.
Everything goes to `reports/drills/<runbook>-<timestamp>/`: history.jsonl, the recorded run, report.json and
report.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.checkers import judge
from harness.errors import BadInput
from harness.history import History
from harness.nemesis import Nemesis
from harness.observability.source import AlertSource
from harness.observer import Observer, read_final
from harness.ops import runbook as rb
from harness.provision import open_provider
from harness.records import Expectations, FaultSpec, RunRecord, Scenario, Verdict, Workload
from harness.runner import (
    alert_source,
    default_workers,
    drain,
    evaluating,
    fault_contexts,
    prepare_database,
    requirements,
    sut_info,
)
from harness.store import load_record, write_record
from harness.sut.adapter import SutSql
from harness.sut.config import Sut, reference_sut
from harness.sut.system import RunningSystem, SystemOptions
from harness.wait import WaitTimeout, wait_until
from harness.workload import Workload as Load

DRILL_SETTINGS = {"lease_seconds": "2", "retry_base_ms": "200"}
LOAD = Workload(flows=900, rate=3.0, clients=1)  # light and open-ended: the drill stops it when it is done


@dataclass(frozen=True)
class DrillSpec:
    """Which fault of the nemesis catalogue a runbook's drill plants, and which of the runbook's findings
    must identify it."""

    cause: str
    fault: FaultSpec


DRILLS: dict[str, DrillSpec] = {
    "not-enqueued": DrillSpec(
        "core-trigger-disabled", FaultSpec("disable-core-trigger", params={"method": "alter"})
    ),
    "enqueued-not-executed": DrillSpec(
        "worker-role-absent", FaultSpec("stop-worker", params={"role": "orchestrator"})
    ),
    "executed-no-event": DrillSpec(
        "runs-lost-mid-job",
        FaultSpec(
            "failpoint", params={"point": "execution.before-result-event", "action": "crash", "restart": True}
        ),
    ),
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
    detect_s: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    resolve_s: float | None = None
    transitions: list[Mapping[str, Any]] = field(default_factory=list)
    flows_requested: int = 0
    flows_closed_after_heal: int = 0
    verdict: str = "unknown"  # the checkers' verdict on the recorded run
    checks: list[dict[str, Any]] = field(default_factory=list)
    fault_evidence: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def cause_found(self) -> bool:
        return self.cause in self.findings

    @property
    def ok(self) -> bool:
        return (
            self.detect_s is not None
            and self.cause_found
            and not self.steady_findings
            and not self.problems
            and self.verdict == Verdict.VALID
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


def drill_scenario(book: rb.Runbook, spec: DrillSpec) -> Scenario:
    """The drill as a scenario: its fault, a light load, the fast profile; judged as any scenario is (its
    fault legitimately fires alerts and fails no flow but what the fault itself explains)."""
    return Scenario(
        name=f"drill-{book.name}",
        description=f"incident drill of the runbook {book.name}: {book.title}",
        suites=("drill",),
        seed=1,
        workload=LOAD,
        faults=(spec.fault,),
        expect=Expectations(
            checks=(
                "no_lost_job",
                "no_duplicate_job",
                "one_result_per_job",
                "flows_complete",
                "traces_complete",
                "exclusive_runs",
                "no_stuck_job",
                "one_side_effect_per_job",
                "faults_took_effect",
            ),
            alerts_quiet=False,
        ),
        settings=DRILL_SETTINGS,
        profile="fast",
        drain_timeout_s=60,
    )


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
    scenario = drill_scenario(book, spec)
    result = DrillResult(book.name, spec.cause, spec.fault.label)
    folder = report_dir / f"{book.name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    folder.mkdir(parents=True, exist_ok=True)
    history = History(folder / "history.jsonl")
    with contextlib.ExitStack() as stack:
        stack.callback(history.close)
        pg = stack.enter_context(open_provider(postgres, ready_clones=0))
        result.postgres = f"{pg.info().provider} {pg.info().version}"
        dsn = pg.new_database(_plan(sut))
        sql = SutSql.connect(sut, dsn)
        missing = requirements(scenario, sql)
        if missing:
            raise BadInput(f"pipeline {sut.name!r} cannot run the drill {book.name}: {'; '.join(missing)}")
        unavailable = rb.diagnose(dsn, book).unavailable(spec.cause)
        if unavailable:
            raise BadInput(
                f"pipeline {sut.name!r} cannot run the drill {book.name}: no step of the runbook that finds "
                f"{spec.cause} can read this pipeline ({'; '.join(unavailable)}): not applicable, the "
                "runbook's steps read objects of the reference pipeline that this one lacks"
            )
        alerts = alert_source(sql)
        prepare_database(dsn, scenario, sql)
        options = SystemOptions(workers=default_workers(sut, scenario), settings=DRILL_SETTINGS)
        system = stack.enter_context(RunningSystem(sut, dsn, folder / "logs", options, sql))
        stack.enter_context(evaluating(dsn, alerts))  # the harness's pack, where the pipeline has no alerts
        out(f"drill {book.name}: {book.title}")
        out(f"  fault: {spec.fault.label}; expected cause: {spec.cause}")
        load = Load(dsn, scenario.workload, history, scenario.seed, sql)
        stop = threading.Event()
        stack.callback(stop.set)
        loader = threading.Thread(target=load.run, args=(stop,), name="workload", daemon=True)
        loader.start()
        observer = Observer(dsn, history, sql, alerts)
        observer.start()
        stack.callback(observer.stop)
        _steady(dsn, sql, alerts, book, load, result, out)
        nemesis = Nemesis(
            scenario.faults, history, fault_contexts(dsn, pg, system, history, load), scenario.seed
        )
        planted = _now(dsn)
        result.planted_at = planted.isoformat()
        out(f"  planted at {planted:%H:%M:%S.%f}"[:-3])
        nemesis.begin()
        try:
            nemesis.tick(workload_done=False)
            _detect(dsn, sql, alerts, book, planted, result, out, detect_timeout_s, nemesis)
            if result.detect_s is not None:
                _walk(dsn, book, result, auto, out, ask)
        finally:
            nemesis.heal_all()
        out("  healed; waiting for the alerts to resolve")
        _resolve(dsn, sql, alerts, book, result, out)
        stop.set()
        loader.join(30)
        drained, _took, drain_ended = drain(dsn, scenario.drain_timeout_s, sql, scenario.stall_s)
        nemesis.confirm_all()
        observer.stop()
        final = read_final(dsn, sql, alerts, system.side_effects())
        result.transitions = [t for t in final.alert_history if (t.get("at") or 0) >= planted.timestamp()]
        record = RunRecord(
            scenario=scenario,
            ops=tuple(history.ops()),
            faults=tuple(nemesis.windows),
            samples=(),
            final=final,
            drained=drained,
            workload_start_wall=load.started_wall,
            workload_end_wall=load.ended_wall or load.started_wall,
            drain_ended=drain_ended,
            sut=sut_info(system),
        )
    write_record(folder, record, sut.path)
    verdict, checks = judge(load_record(folder))
    result.verdict = str(verdict)
    result.checks = [
        {"name": c.name, "verdict": str(c.verdict), "anomalies": len(c.anomalies)} for c in checks
    ]
    result.fault_evidence = "; ".join(w.evidence for w in record.faults)
    acknowledged = {r["entity_id"] for r in load.acknowledged}
    result.flows_requested = len(acknowledged)
    result.flows_closed_after_heal = sum(1 for e in final.entities if e["id"] in acknowledged and _closed(e))
    if verdict is not Verdict.VALID:
        bad = [c.name for c in checks if c.verdict is not Verdict.VALID]
        result.problems.append(f"the recorded run is {verdict}: {', '.join(bad)} (see {folder})")
    paths = write_report(result, folder)
    verdict_text = "PASSED" if result.ok else "FAILED"
    detect = f"{result.detect_s:.1f} s" if result.detect_s is not None else "not detected"
    out(
        f"drill {book.name} {verdict_text}: time to detect {detect}; cause {spec.cause} "
        f"{'found' if result.cause_found else 'NOT found'}; checkers {result.verdict}; report {paths[0]}"
    )
    for problem in result.problems:
        out(f"  problem: {problem}")
    return result, paths


def _plan(sut: Sut) -> Any:
    from harness.provision.migrations import MigrationPlan

    return MigrationPlan(sut.migrations)


def _closed(entity: Mapping[str, Any]) -> bool:
    return any(e.get("type") in ("document.anchored", "document.failed") for e in entity.get("events") or ())


def _now(dsn: str) -> dt.datetime:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None  # SELECT of one value
        return row[0]


def _read(dsn: str, read: Callable[[psycopg.Connection[Any]], Any]) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return read(conn)


def _closed_count(dsn: str, sql: SutSql, load: Load) -> int:
    ids = [r["entity_id"] for r in load.acknowledged]
    if not ids:
        return 0
    query = sql.queries("system")["count_closed"]
    row = _read(dsn, lambda conn: conn.execute(query, {"ids": ids}).fetchone())
    assert row is not None  # a count
    return int(row[0])


def _steady(
    dsn: str,
    sql: SutSql,
    alerts: AlertSource,
    book: rb.Runbook,
    load: Load,
    result: DrillResult,
    out: Callable[[str], None],
) -> None:
    """Flows complete and nothing alerts; then the runbook must find nothing on this healthy system."""
    try:
        wait_until(
            lambda: _closed_count(dsn, sql, load) >= 3 and _read(dsn, alerts.active) == 0,
            60,
            "steady state: 3 flows closed, no alert",
        )
    except WaitTimeout as exc:
        result.problems.append(f"no steady state before the fault: {exc}")
        return
    healthy = rb.diagnose(dsn, book)
    result.steady_findings = list(healthy.findings)
    out(
        f"  steady state: {_closed_count(dsn, sql, load)} flows closed, no alert; runbook on the healthy system "
        f"finds {', '.join(healthy.findings) or 'nothing'}"
    )
    if healthy.findings:
        result.problems.append(f"the runbook blames a healthy system: {', '.join(healthy.findings)}")


def _detect(
    dsn: str,
    sql: SutSql,
    alerts: AlertSource,
    book: rb.Runbook,
    planted: dt.datetime,
    result: DrillResult,
    out: Callable[[str], None],
    timeout_s: float,
    nemesis: Nemesis,
) -> None:
    wanted = set(book.alerts)
    since = planted.timestamp()

    def fired() -> dict[str, Any] | None:
        nemesis.tick(workload_done=False)  # the fault keeps acting (a crash loop's restarts) while we wait
        rows = _read(dsn, alerts.history)
        return next(
            (r for r in rows if r.get("state") == "firing" and r.get("rule") in wanted and r["at"] >= since),
            None,
        )

    try:
        first = wait_until(fired, timeout_s, f"one of {', '.join(sorted(wanted))} to fire", 0.2)
    except WaitTimeout as exc:
        result.problems.append(str(exc))
        out(f"  NOT detected within {timeout_s:.0f} s")
        return
    result.detected_alert = str(first["rule"])
    result.detect_s = float(first["at"]) - since
    out(
        f"  ALERT {first['rule']} firing (value {first.get('value')}): time to detect {result.detect_s:.1f} s"
    )


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
    dsn: str,
    sql: SutSql,
    alerts: AlertSource,
    book: rb.Runbook,
    result: DrillResult,
    out: Callable[[str], None],
) -> None:
    wanted = set(book.alerts)
    healed = _now(dsn)
    try:
        wait_until(
            lambda: not wanted & set(_read(dsn, alerts.firing) or ()),
            120,
            "the runbook's alerts to resolve",
            0.25,
        )
    except WaitTimeout as exc:
        result.problems.append(f"alerts did not resolve after healing: {exc}")
        return
    result.resolve_s = (_now(dsn) - healed).total_seconds()
    out(f"  resolved {result.resolve_s:.1f} s after healing")


def write_report(result: DrillResult, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "report.json"
    md_path = folder / "report.md"
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
        f"- detected by: `{result.detected_alert}` after {detect}",
        f"- resolved after healing: {resolve}",
        f"- healthy system before the fault: findings {', '.join(result.steady_findings) or 'none'}",
        f"- flows: {result.flows_requested} requested, {result.flows_closed_after_heal} closed after healing",
        f"- the recorded run judged by the checkers: {result.verdict}"
        + "".join(f"; {c['name']} {c['verdict']}" for c in result.checks if c["verdict"] != "valid"),
        f"- the fault's read-back: {result.fault_evidence}",
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
