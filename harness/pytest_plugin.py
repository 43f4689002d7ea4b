"""A pytest plugin (entry point `pytest11`) so a team can write its own chaos tests in pytest.

Fixtures (all prefixed, so they never clash with a project's own):
- `harness_postgres` (session): a disposable Postgres; `--harness-postgres embedded|docker|DSN`.
- `harness_sut` (session): the system under test; `--harness-sut path/to/sut.toml` (default: the reference).
- `pipeline_dsn`: a fresh database migrated with the SUT's migrations, dropped after the test.
- `pipeline_system`: a factory starting the SUT's services and workers on `pipeline_dsn`, stopped after.
- `harness_nemesis`: inject any fault of the catalogue by name; everything injected is healed after the test.
- `harness_check`: judge what the database holds now with the harness's checkers.

    def test_orchestrator_crash_loses_nothing(pipeline_system, harness_nemesis, harness_check, pipeline_dsn):
        system = pipeline_system()
        ...request some flows...
        harness_nemesis("kill-worker", role="orchestrator")
        ...
        results = harness_check(["no_lost_job", "one_result_per_job"])
        assert all(r.verdict == "valid" for r in results), results
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.faults import REGISTRY, Fault, FaultContext
from harness.history import History
from harness.observer import read_final
from harness.provision import Provider, open_provider
from harness.provision.migrations import MigrationPlan
from harness.records import CheckResult, Expectations, RunRecord, Scenario, Workload
from harness.sut.config import Sut, load_sut, reference_sut
from harness.sut.system import RunningSystem, SystemOptions


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos harness for Postgres event pipelines")
    group.addoption("--harness-postgres", default="embedded", help="embedded (default), docker, or a DSN")
    group.addoption("--harness-sut", default=None, help="SUT config file (default: the reference pipeline)")


@pytest.fixture(scope="session")
def harness_sut(request: pytest.FixtureRequest) -> Sut:
    path = request.config.getoption("--harness-sut")
    return load_sut(Path(path)) if path else reference_sut()


@pytest.fixture(scope="session")
def harness_postgres(request: pytest.FixtureRequest) -> Iterator[Provider]:
    with open_provider(request.config.getoption("--harness-postgres"), ready_clones=1) as provider:
        yield provider


@pytest.fixture
def pipeline_dsn(harness_postgres: Provider, harness_sut: Sut) -> Iterator[str]:
    with harness_postgres.database(MigrationPlan(harness_sut.migrations)) as dsn:
        yield dsn


class SystemFactory:
    """Starts systems on the test's database (`factory(**SystemOptions fields)`) and remembers them."""

    def __init__(self, sut: Sut, dsn: str, log_root: Path) -> None:
        self.sut, self.dsn, self.log_root = sut, dsn, log_root
        self.started: list[RunningSystem] = []

    def __call__(self, **options: Any) -> RunningSystem:
        system = RunningSystem(
            self.sut, self.dsn, self.log_root / f"harness-logs-{len(self.started)}", SystemOptions(**options)
        )
        self.started.append(system)
        return system.__enter__()

    @property
    def latest(self) -> RunningSystem:
        if not self.started:
            raise pytest.UsageError("start a system with pipeline_system() before injecting a fault")
        return self.started[-1]

    def close(self) -> None:
        for system in self.started:
            system.close()


@pytest.fixture
def pipeline_system(harness_sut: Sut, pipeline_dsn: str, tmp_path: Path) -> Iterator[SystemFactory]:
    factory = SystemFactory(harness_sut, pipeline_dsn, tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def harness_history(tmp_path: Path) -> Iterator[History]:
    history = History(tmp_path / "history.jsonl")
    yield history
    history.close()


@pytest.fixture
def harness_nemesis(
    harness_postgres: Provider, pipeline_dsn: str, pipeline_system: SystemFactory, harness_history: History
) -> Iterator[Callable[..., tuple[Fault, FaultContext]]]:
    """`harness_nemesis(name, **params)` injects a fault into the most recently started system and returns
    (fault, context); `fault.took_effect(context)` reads it back. Everything injected is healed after the test."""
    injected: list[tuple[Fault, FaultContext]] = []

    def inject(name: str, system: RunningSystem | None = None, **params: Any) -> tuple[Fault, FaultContext]:
        if name not in REGISTRY:
            raise pytest.UsageError(f"unknown fault {name!r}; known: {', '.join(sorted(REGISTRY))}")
        system = system or pipeline_system.latest
        fault = REGISTRY[name]()
        missing = [
            f"{c}: {system.sql.facts.why_not(c)}"
            for c in REGISTRY[name].requires(params)
            if not (
                system.sql.facts.has(c)
                or c in system.found
                or (c.startswith("setting:") and system.sql.can_set(c[8:]) is None)
            )
        ]
        if missing:
            pytest.skip(f"not applicable to {system.sut.name}: {'; '.join(missing)}")
        ctx = FaultContext(
            dsn=pipeline_dsn,
            provider=harness_postgres,
            system=system,
            history=harness_history,
            rng=random.Random(0),
            params=params,
            sut_sql=system.sql,
        )
        fault.start(ctx)
        injected.append((fault, ctx))
        return fault, ctx

    yield inject
    for fault, ctx in reversed(injected):
        fault.heal(ctx)


@pytest.fixture
def harness_check(
    pipeline_dsn: str, harness_sut: Sut, harness_history: History
) -> Callable[[list[str]], list[CheckResult]]:
    """Judge the database as it is now (and the history recorded so far) with the named checkers."""
    import dataclasses

    from harness.checkers import run_checkers
    from harness.records import SutInfo
    from harness.sut.adapter import SutSql

    def check(names: list[str]) -> list[CheckResult]:
        scenario = Scenario(
            name="pytest",
            description="a test's own chaos check",
            suites=("nightly",),
            seed=0,
            workload=Workload(),
            faults=(),
            expect=Expectations(checks=tuple(names)),
        )
        sql = SutSql.connect(harness_sut, pipeline_dsn)
        record = RunRecord(
            scenario=scenario,
            ops=tuple(harness_history.ops()),
            faults=(),
            samples=(),
            final=read_final(pipeline_dsn, sql),
            drained=True,
            workload_start_wall=0.0,
            workload_end_wall=0.0,
            sut=SutInfo(
                harness_sut.name,
                tuple(sorted(sql.facts.present)),
                dict(sql.facts.absent),
                {
                    k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(harness_sut.conventions).items()
                },
            ),
        )
        return run_checkers(record, names)

    return check
