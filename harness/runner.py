"""Running scenarios, Jepsen's way. Phases of one scenario, in order:

validate (before anything, all files) -> provision (a fresh database cloned from the migrated template; a
private server when a fault needs one) -> discover the pipeline (the SUT contract) and decide whether the
scenario applies to it -> alert source, timing profile and settings -> start services and workers (steady
state: every worker ready) -> workload + nemesis + observer -> heal everything -> drain until the queue is
quiet or the timeout -> final read of the database -> teardown (always) -> check -> artefacts.

A scenario that needs a capability the pipeline lacks (a failpoint, a setting, a worker role, a migration set)
is not run: it is `not-applicable`, naming each capability and why it is missing.

Artefacts are written before (scenario.yaml), during (history.jsonl) and after (faults.json, final.json,
checks.json). Heal and teardown always run, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import yaml

from harness.errors import BadInput, NotApplicable
from harness.faults import REGISTRY, FaultContext
from harness.history import History
from harness.nemesis import Nemesis
from harness.observability.pack import Evaluator, install, pack_rules
from harness.observability.source import AlertSource, PackAlerts, SutAlerts
from harness.observer import Observer, read_final
from harness.provision import EmbeddedPostgres, Provider
from harness.provision.migrations import MigrationPlan
from harness.records import FaultSpec, RunRecord, Scenario, ScenarioResult, SutInfo, Verdict
from harness.store import load_record, write_json, write_record
from harness.sut.adapter import SutSql
from harness.sut.config import Sut
from harness.sut.system import RunningSystem, SystemOptions
from harness.wait import WaitTimeout, wait_until
from harness.workload import Workload

Progress = Callable[[str], None]


def default_workers(sut: Sut, scenario: Scenario) -> dict[str, int]:
    workers = {role: 1 for role in sut.workers}
    workers.update(scenario.workers)
    return {role: count for role, count in workers.items() if role in sut.workers}


def migration_plan(sut: Sut, scenario: Scenario) -> MigrationPlan:
    """The migrations a scenario deploys: all, a named set of the SUT file, or until/skip versions."""
    if scenario.migrations_set is not None:
        name = scenario.migrations_set
        chosen = sut.migration_sets.get(name)
        if chosen is None or sut.capabilities.get(f"migration-set:{name}") is False:
            why = (
                "declared absent in the SUT file"
                if chosen
                else "the SUT file has no such [migration_sets] entry"
            )
            raise NotApplicable([f"migration-set:{name}: {why}"])
        return MigrationPlan(sut.migrations, chosen.until, chosen.skip)
    return MigrationPlan(sut.migrations, scenario.migrations_until, scenario.migrations_skip)


def requirements(scenario: Scenario, sql: SutSql, found: dict[str, str] | None = None) -> list[str]:
    """What the scenario needs that this pipeline lacks, one `capability: why` line each (empty: it applies).
    `found`: capabilities seen only once the system runs (a service's admin API); None before it starts."""
    missing: list[str] = []
    for key, value in scenario.settings.items():
        why = sql.can_set(key, value)
        if why:
            missing.append(why)
    for role in scenario.workers:
        if role not in sql.sut.workers and scenario.workers[role] > 0:
            missing.append(f"role:{role}: the SUT file has no [workers] {role} command")
    for spec in scenario.faults:
        for capability in REGISTRY[spec.fault].requires(spec.params):
            if capability.startswith("service-admin:"):
                if found is not None and capability not in found:
                    missing.append(f"{capability}: the service does not answer /_admin/config")
            elif capability.startswith("setting:"):
                why = sql.can_set(capability.split(":", 1)[1])
                if why:
                    missing.append(why)
            elif not sql.facts.has(capability):
                missing.append(f"{capability}: {sql.facts.why_not(capability)}")
    return list(dict.fromkeys(missing))


def alert_source(sql: SutSql) -> AlertSource:
    return SutAlerts(sql) if sql.alerts_from_sut else PackAlerts()


def alert_capabilities(sql: SutSql) -> dict[str, str]:
    """`alert:<name>` for every alert the run's source can show."""
    if sql.alerts_from_sut:
        return {k: v for k, v in sql.facts.present.items() if k.startswith("alert:")}
    return {f"alert:{rule}": "the harness's observability pack" for rule in pack_rules(sql)}


def prepare_database(dsn: str, scenario: Scenario, sql: SutSql) -> None:
    """The alert source with its timing profile and windows, then the scenario's own settings, which win."""
    windows = {a.rule: a.window_s for a in scenario.expect.alerts_fire if a.window_s is not None}
    if sql.alerts_from_sut:
        if scenario.profile and sql.sut.alerts.profile:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.sut.alerts.profile)
        template = sql.sut.alerts.window_setting
        tuned = {}
        for alert, window in windows.items():
            rule = sql.alert_rule(alert)
            if template and rule:
                tuned[template.format(rule=rule)] = str(window)
        sql.write_settings(dsn, tuned)
    else:
        install(
            dsn,
            sql,
            profile="fast" if scenario.profile == "fast" else "production",
            settings={f"{alert}.window_s": float(w) for alert, w in windows.items()},
        )
    sql.write_settings(dsn, dict(scenario.settings))


def drain(
    dsn: str, timeout_s: float, sql: SutSql, stall_s: float = 6.0, quiet_polls: int = 3
) -> tuple[bool, float, str]:
    """Wait until no job is queued, running or retrying for a few polls in a row, so a merely late job is not
    called lost. Returns whether the queue went quiet, the seconds it took, and how it ended (quiet, stalled,
    timeout).

    It gives up early when nothing has moved for `stall_s` (no job changed status, no run started or ended)
    while work is left and nothing is scheduled for later (a retry's backoff, a lease not yet expired): a
    broken pipeline then gets its
    verdict (the stuck jobs are named by no_stuck_job) in seconds instead of waiting out the whole timeout."""
    started = time.monotonic()
    quiet = 0
    query = sql.queries("run")["progress"]
    last: tuple[Any, ...] | None = None
    still_since = started
    while time.monotonic() - started < timeout_s:
        state = _read(dsn, lambda conn: conn.execute(query).fetchone())
        quiet = quiet + 1 if state is not None and state[0] == 0 else 0
        if quiet >= quiet_polls:
            return True, time.monotonic() - started, "quiet"
        if state is None or state != last:
            last, still_since = state, time.monotonic()
        elif state[-1] == 0 and time.monotonic() - still_since >= stall_s:
            return False, time.monotonic() - started, "stalled"
        time.sleep(0.3)
    return False, time.monotonic() - started, "timeout"


def settle_alerts(dsn: str, timeout_s: float, alerts: AlertSource, quiet_polls: int = 3) -> bool:
    """Then give alerts the rest of the drain time to settle (none pending or firing), so an alert about to
    fire or to resolve is not cut off. Not settling is no verdict of its own: the alert checkers judge it."""
    quiet = 0

    def settled() -> bool:
        nonlocal quiet
        quiet = quiet + 1 if _count(dsn, alerts.active) == 0 else 0
        return quiet >= quiet_polls

    try:
        return bool(wait_until(settled, timeout_s, "alerts to settle", 0.3))
    except WaitTimeout:
        return False


def _count(dsn: str, read: Callable[[psycopg.Connection[Any]], int]) -> int:
    value = _read(dsn, read)
    return -1 if value is None else value


def _read(dsn: str, read: Callable[[psycopg.Connection[Any]], Any]) -> Any:
    """One read on a fresh connection; None when the server cannot be reached (a fault still healing)."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            return read(conn)
    except psycopg.OperationalError:
        return None


def fresh_folder(scenario: Scenario, folder: Path) -> None:
    """Make `folder` hold this run alone, starting with the scenario as run.

    A folder left by an earlier run into the same --report-dir would mix its artefacts into this one: its
    services' journals (the reference TSA and ledger reload theirs on start, so the old run's job ids collide
    with the new one's and the services refuse them), logs, history. It is the harness's own output, so it is
    removed, unless the scenario file being run lives in it (a replay into its own folder)."""
    inside = scenario.path is not None and folder.resolve() in scenario.path.resolve().parents
    if folder.is_dir() and not inside:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if scenario.path is None:
        (folder / "scenario.yaml").write_text(yaml.safe_dump(dataclasses.asdict(scenario), sort_keys=False))
    elif scenario.path.resolve() != (folder / "scenario.yaml").resolve():
        shutil.copyfile(scenario.path, folder / "scenario.yaml")


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

    fresh_folder(scenario, folder)
    started_wall, started = time.time(), time.monotonic()

    def ended(verdict: Verdict, **extra: Any) -> ScenarioResult:
        return ScenarioResult(
            scenario.name,
            verdict,
            (),
            scenario.seed,
            started_wall,
            round(time.monotonic() - started, 3),
            None,
            folder,
            repeat=repeat,
            **extra,
        )

    try:
        record_scenario(scenario, sut, folder, shared, progress)
    except KeyboardInterrupt:
        raise
    except NotApplicable as exc:
        (folder / "not-applicable.txt").write_text("\n".join(exc.reasons) + "\n")
        return ended(Verdict.NOT_APPLICABLE, not_applicable=exc.reasons)
    except BadInput:
        raise  # the SUT file or the scenario is wrong for every scenario alike: the run stops with exit 3
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        (folder / "error.txt").write_text(error)
        return ended(Verdict.UNKNOWN, error=error)
    # Judged on the record as read back from the folder, as `harness check` will judge it later.
    record = load_record(folder)
    verdict, checks = judge(record)
    write_json(folder / "checks.json", [c.as_dict() for c in checks])
    return ScenarioResult(
        scenario.name,
        verdict,
        tuple(checks),
        record.scenario.seed,
        started_wall,
        round(time.monotonic() - started, 3),
        record,
        folder,
        repeat=repeat,
    )


@contextlib.contextmanager
def evaluating(dsn: str, alerts: AlertSource) -> Iterator[None]:
    """The pack is evaluated from a thread while the run goes; the pipeline's own alerts evaluate themselves."""
    if not isinstance(alerts, PackAlerts):
        yield
        return
    evaluator = Evaluator(dsn)
    evaluator.start()
    try:
        yield
    finally:
        evaluator.stop()


def record_scenario(
    scenario: Scenario, sut: Sut, folder: Path, shared: Provider | None, progress: Progress
) -> RunRecord:
    """Provision, run the workload and the faults, heal, drain, read back; return what happened."""
    history = History(folder / "history.jsonl")
    plan = migration_plan(sut, scenario)
    with contextlib.ExitStack() as stack:
        stack.callback(history.close)
        provider = shared
        if provider is None or scenario.own_server:
            provider = stack.enter_context(EmbeddedPostgres(ready_clones=0))
        dsn = provider.new_database(plan)
        stack.callback(lambda: _drop_quietly(provider, dsn))
        sql = SutSql.connect(sut, dsn)
        missing = requirements(scenario, sql)
        if missing:
            raise NotApplicable(missing)
        alerts = alert_source(sql)
        prepare_database(dsn, scenario, sql)
        network = any(REGISTRY[f.fault].needs_network for f in scenario.faults)
        options = SystemOptions(workers=default_workers(sut, scenario), poll_interval_s=0.5, network=network)
        system = stack.enter_context(RunningSystem(sut, dsn, folder / "logs", options, sql))
        missing = requirements(scenario, sql, system.found)
        if missing:
            raise NotApplicable(missing)
        stack.enter_context(evaluating(dsn, alerts))
        workload = Workload(dsn, scenario.workload, history, scenario.seed, sql)
        nemesis = Nemesis(
            scenario.faults, history, fault_contexts(dsn, provider, system, history, workload), scenario.seed
        )
        observer = Observer(dsn, history, sql, alerts)
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
        drained, took, drain_ended = drain(dsn, scenario.drain_timeout_s, sql, scenario.stall_s)
        if scenario.expect.alerts_fire or scenario.expect.alerts_quiet:  # else no alert is judged
            settle_alerts(dsn, max(scenario.drain_timeout_s - took, 0), alerts)
        nemesis.confirm_all()
        observer.stop()
        final = read_final(dsn, sql, alerts, system.side_effects())
        info = sut_info(system)
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
        drain_ended=drain_ended,
        sut=info,
    )
    write_record(folder, record, sut.path)
    return record


def fault_contexts(
    dsn: str, provider: Provider, system: RunningSystem, history: History, workload: Workload | None
) -> Callable[[FaultSpec, Any], FaultContext]:
    """How the nemesis makes each fault's context: what a fault may touch in this run."""

    def context(spec: FaultSpec, rng: Any) -> FaultContext:
        return FaultContext(
            dsn=dsn,
            provider=provider,
            system=system,
            history=history,
            rng=rng,
            params=spec.params,
            sut_sql=system.sql,
            workload=workload,
        )

    return context


def sut_info(system: RunningSystem) -> SutInfo:
    """What the checkers may know of the running pipeline: its capabilities (discovered, seen running, and
    the alerts its source shows), why the others are absent, and its SUT file's conventions."""
    sql, sut = system.sql, system.sut
    capabilities = {**sql.facts.present, **system.found, **alert_capabilities(sql)}
    conventions: dict[str, Any] = dataclasses.asdict(sut.conventions)
    conventions["side_effects"] = {
        service: job_type
        for service, job_type in sut.side_effects.items()
        if f"side-effects:{service}" in capabilities
    }
    return SutInfo(
        name=sut.name,
        capabilities=tuple(sorted(capabilities)),
        absent={k: v for k, v in sql.facts.absent.items() if k not in capabilities},
        conventions={k: list(v) if isinstance(v, tuple) else v for k, v in conventions.items()},
    )


def _drop_quietly(provider: Provider, dsn: str) -> None:
    with contextlib.suppress(Exception):
        provider.drop_database(dsn)
