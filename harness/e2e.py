"""`harness e2e`: N real protect -> tsa -> anchor flows on a fresh database, each trace verified.

Flows are submitted together, then the run waits until every flow is closed (or the timeout). Latency of a
flow is the database clock's time from its request event to its closing event; throughput is flows over the
span from the first request to the last close. Exit 0 only when every flow completed and its trace holds.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.provision import open_provider
from harness.provision.migrations import MigrationPlan
from harness.sut.adapter import SutSql
from harness.sut.config import Sut, reference_sut
from harness.sut.readback import read_trace
from harness.sut.system import RunningSystem, SystemOptions
from harness.wait import WaitTimeout, wait_until


@dataclass
class E2EResult:
    flows_requested: int
    flows_completed: int = 0
    flows_failed: int = 0
    traces_complete: int = 0
    flows_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    postgres: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.flows_completed == self.flows_requested == self.traces_complete

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "flows_requested": self.flows_requested,
            "flows_completed": self.flows_completed,
            "flows_failed": self.flows_failed,
            "traces_complete": self.traces_complete,
            "flows_per_s": round(self.flows_per_s, 1),
            "latency_ms": self.latency_ms,
            "wall_s": round(self.wall_s, 2),
            "postgres": self.postgres,
            "problems": self.problems[:50],
        }


def submit_flows(dsn: str, count: int, sql: SutSql) -> list[str]:
    """Request `count` protections of new documents through the pipeline's entry point; the entity ids."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(dsn) as conn:
        for entity in ids:
            sql.request(conn, entity, f"document {entity}", owner="e2e")
    return ids


def wait_closed(dsn: str, ids: list[str], timeout_s: float, sql: SutSql) -> int:
    """Wait until every flow of `ids` closed (or the timeout); how many closed."""
    Q = sql.queries("system")
    closed = 0
    with psycopg.connect(dsn, autocommit=True) as conn:

        def all_closed() -> bool:
            nonlocal closed
            row = conn.execute(Q["count_closed"], {"ids": ids}).fetchone()
            assert row is not None  # a count
            closed = int(row[0])
            return closed >= len(ids)

        with contextlib.suppress(WaitTimeout):
            wait_until(all_closed, timeout_s, f"{len(ids)} flows to close")
    return closed


def judge_flows(dsn: str, ids: list[str], result: E2EResult, sql: SutSql) -> None:
    Q = sql.queries("system")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(Q["flows_closed"], {"ids": ids}).fetchall()
        latencies = []
        first = last = None
        for _entity, requested, closed_as, closed_at in rows:
            if closed_as == "document.anchored":
                result.flows_completed += 1
            else:
                result.flows_failed += 1
            latencies.append((closed_at - requested).total_seconds() * 1000)
            first = requested if first is None or requested < first else first
            last = closed_at if last is None or closed_at > last else last
        for entity in ids:
            trace = read_trace(conn, entity, sql)
            if trace.complete and trace.closed_as == "document.anchored":
                result.traces_complete += 1
            else:
                result.problems.extend(f"entity {entity}: {p}" for p in trace.problems or ("flow failed",))
    if latencies:
        ordered = sorted(latencies)
        result.latency_ms = {
            "p50": round(statistics.median(ordered), 1),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
            "max": round(ordered[-1], 1),
        }
    if first is not None and last is not None and last > first:
        result.flows_per_s = len(rows) / (last - first).total_seconds()


def run_e2e(
    flows: int,
    postgres: str = "embedded",
    timeout_s: float = 120,
    sut: Sut | None = None,
    options: SystemOptions | None = None,
    log_dir: Path | None = None,
) -> E2EResult:
    sut = sut or reference_sut()
    result = E2EResult(flows_requested=flows)
    started = time.monotonic()
    with (
        open_provider(postgres, ready_clones=0) as pg,
        tempfile.TemporaryDirectory(prefix="harness-e2e-") as tmp,
    ):
        info = pg.info()
        result.postgres = {"provider": info.provider, "version": info.version, "detail": info.detail}
        dsn = pg.new_database(MigrationPlan(sut.migrations))
        with RunningSystem(sut, dsn, log_dir or Path(tmp), options) as system:
            ids = submit_flows(dsn, flows, system.sql)
            wait_closed(dsn, ids, timeout_s, system.sql)
            judge_flows(dsn, ids, result, system.sql)
        result.entities = ids
    result.wall_s = time.monotonic() - started
    return result
