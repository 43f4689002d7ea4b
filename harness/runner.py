"""Running scenarios, Jepsen's way. Phases of one scenario, in order:

validate (before anything, all files) -> provision (a fresh database cloned from the migrated template; a
private server when a fault needs one) -> settings and timing profile -> start services and workers (steady
state: every worker announced itself) -> workload + nemesis + observer -> heal everything -> drain until the
queue is quiet or the timeout -> final read of the database -> teardown (always) -> check -> artefacts.

Artefacts are written before (scenario.yaml), during (history.jsonl) and after (faults.json, final.json,
checks.json). Heal and teardown always run, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from harness.faults import REGISTRY, FaultContext
from harness.history import History
from harness.nemesis import Nemesis
from harness.observer import Observer, read_final
from harness.provision import EmbeddedPostgres, Provider
from harness.provision.migrations import MigrationPlan
from harness.records import FaultSpec, RunRecord, Scenario, ScenarioResult, Verdict
from harness.sqlfile import named_queries
from harness.sut.config import Sut
from harness.sut.system import RunningSystem, SystemOptions, apply_settings
from harness.workload import Workload

Q = named_queries("run")
Progress = Callable[[str], None]


def _default_workers(sut: Sut, scenario: Scenario) -> dict[str, int]:
    workers = {role: 1 for role in sut.workers}
    workers.update(scenario.workers)
    return {role: count for role, count in workers.items() if role in sut.workers}


def prepare_database(dsn: str, scenario: Scenario) -> None:
    """The alert profile (where the SUT has profiles), then the scenario's own settings, which win."""
    if scenario.profile:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if conn.execute(Q["has_profiles"]).fetchone()[0]:
                conn.execute(Q["apply_profile"], {"profile": scenario.profile})
    apply_settings(dsn, dict(scenario.settings))


def drain(dsn: str, timeout_s: float, quiet_polls: int = 3) -> tuple[bool, float]:
    """Wait until no job is queued, running or retrying for a few polls in a row, so a merely late job is not
    called lost. Returns whether the queue went quiet, and the seconds it took."""
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < timeout_s:
        quiet = quiet + 1 if _count(dsn, "unfinished") == 0 else 0
        if quiet >= quiet_polls:
            return True, time.monotonic() - started
        time.sleep(0.3)
    return False, time.monotonic() - started


def settle_alerts(dsn: str, timeout_s: float, quiet_polls: int = 3) -> bool:
    """Then give alerts the rest of the drain time to settle (none pending or firing), so an alert about to
    fire or to resolve is not cut off. Not settling is no verdict of its own: the alert checkers judge it."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if _count(dsn, "alerts_active") == 0 else 0
        if quiet >= quiet_polls:
            return True
        time.sleep(0.3)
    return False


def _count(dsn: str, query: str) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            return int(conn.execute(Q[query]).fetchone()[0])
    except psycopg.OperationalError:
        return -1


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_json_default), encoding="utf-8")


def run_scenario(
    scenario: Scenario,
    sut: Sut,
    folder: Path,
    shared: Provider | None,
    progress: Progress = lambda _: None,
    repeat: int = 0,
) -> ScenarioResult:
    """Run one scenario and judge it; never raises for a failure of the system under test."""
    from harness.checkers import judge

    folder.mkdir(parents=True, exist_ok=True)
    if scenario.path is not None:
        shutil.copyfile(scenario.path, folder / "scenario.yaml")
    else:
        (folder / "scenario.yaml").write_text(yaml.safe_dump(dataclasses.asdict(scenario), sort_keys=False))
    started_wall, started = time.time(), time.monotonic()
    try:
        record = record_scenario(scenario, sut, folder, shared, progress)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        (folder / "error.txt").write_text(error)
        return ScenarioResult(
            scenario.name,
            Verdict.UNKNOWN,
            (),
            scenario.seed,
            started_wall,
            time.monotonic() - started,
            None,
            folder,
            error=error,
            repeat=repeat,
        )
    verdict, checks = judge(record)
    write_json(folder / "checks.json", [c.as_dict() for c in checks])
    return ScenarioResult(
        scenario.name,
        verdict,
        tuple(checks),
        scenario.seed,
        started_wall,
        time.monotonic() - started,
        record,
        folder,
        repeat=repeat,
    )


def record_scenario(
    scenario: Scenario, sut: Sut, folder: Path, shared: Provider | None, progress: Progress
) -> RunRecord:
    """Provision, run the workload and the faults, heal, drain, read back; return what happened."""
    history = History(folder / "history.jsonl")
    plan = MigrationPlan(sut.migrations, scenario.migrations_until, scenario.migrations_skip)
    with contextlib.ExitStack() as stack:
        stack.callback(history.close)
        provider = shared
        if provider is None or scenario.own_server:
            provider = stack.enter_context(EmbeddedPostgres(ready_clones=0))
        dsn = provider.new_database(plan)
        stack.callback(lambda: _drop_quietly(provider, dsn))
        prepare_database(dsn, scenario)
        network = any(REGISTRY[f.fault].needs_network for f in scenario.faults)
        options = SystemOptions(workers=_default_workers(sut, scenario), poll_interval_s=0.5, network=network)
        system = stack.enter_context(RunningSystem(sut, dsn, folder / "logs", options))
        workload = Workload(dsn, scenario.workload, history, scenario.seed)

        def context(spec: FaultSpec, rng: Any) -> FaultContext:
            return FaultContext(
                dsn=dsn,
                provider=provider,
                system=system,
                history=history,
                rng=rng,
                params=spec.params,
                workload=workload,
            )

        nemesis = Nemesis(scenario.faults, history, context, scenario.seed)
        observer = Observer(dsn, history)
        observer.start()
        stack.callback(observer.stop)
        stop = threading.Event()
        stack.callback(stop.set)
        runner = threading.Thread(target=workload.run, args=(stop,), name="workload", daemon=True)
        nemesis.begin()
        runner.start()
        try:
            last_note = time.monotonic()
            while runner.is_alive() or not nemesis.done:
                nemesis.tick(workload_done=not runner.is_alive())
                if time.monotonic() - last_note >= 5:
                    last_note = time.monotonic()
                    progress(
                        f"    {scenario.name}: {len(workload.acknowledged)}/{scenario.workload.flows} requests, "
                        f"{len(nemesis.windows)}/{len(scenario.faults)} faults healed"
                    )
                time.sleep(0.05)
            runner.join()
        finally:
            stop.set()
            nemesis.heal_all()
        progress(f"    {scenario.name}: draining (up to {scenario.drain_timeout_s:g} s)")
        drained, took = drain(dsn, scenario.drain_timeout_s)
        settle_alerts(dsn, max(scenario.drain_timeout_s - took, 0))
        observer.stop()
        final = read_final(dsn)
    record = RunRecord(
        scenario=scenario,
        ops=tuple(history.ops()),
        faults=tuple(nemesis.windows),
        samples=tuple(
            {"wall": op.wall, **op.value}
            for op in history.ops()
            if op.f == "sample" and isinstance(op.value, dict)
        ),
        final=final,
        drained=drained,
        workload_start_wall=workload.started_wall,
        workload_end_wall=workload.ended_wall,
    )
    write_json(folder / "faults.json", [dataclasses.asdict(w) for w in record.faults])
    write_json(folder / "final.json", dataclasses.asdict(final))
    return record


def _drop_quietly(provider: Provider, dsn: str) -> None:
    with contextlib.suppress(Exception):
        provider.drop_database(dsn)
