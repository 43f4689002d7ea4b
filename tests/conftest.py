"""Shared fixtures: one embedded Postgres per test session, a fresh migrated database per test.

The server starts once (about a second); each test takes a clone of the migrated template from a pool kept
ready in the background, so a fresh isolated database costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.provision import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan
from harness.sut.config import Sut, reference_sut
from harness.sut.system import RunningSystem, SystemOptions

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def sut() -> Sut:
    return reference_sut()


@pytest.fixture(scope="session")
def plan(sut: Sut) -> MigrationPlan:
    return MigrationPlan(sut.migrations)


@pytest.fixture(scope="session")
def pg(plan: MigrationPlan) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(ready_clones=3) as server:
        server.keep_ready(plan)
        yield server


@pytest.fixture
def dsn(pg: EmbeddedPostgres, plan: MigrationPlan) -> Iterator[str]:
    with pg.database(plan) as fresh:
        yield fresh


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def system_factory(sut: Sut, dsn: str, tmp_path: Path) -> Iterator[Callable[..., RunningSystem]]:
    """Start the reference system's real worker and service processes on the test's database."""
    started: list[RunningSystem] = []

    def start(**options: Any) -> RunningSystem:
        system = RunningSystem(sut, dsn, tmp_path / f"logs{len(started)}", SystemOptions(**options))
        started.append(system)
        return system.__enter__()

    yield start
    for system in started:
        system.close()
