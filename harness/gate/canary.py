"""The canary of the phase gates: K consecutive real protect -> tsa -> anchor flows, one after another,
each started only through the pipeline's entry point (its SUT file's `[entry]`) and judged by its whole trace.

It needs workers to be running on the database: the gate starts the reference system itself on an
embedded server, or, given a DSN, relies on the pipeline's own workers (a flow that does not close in
time says so). The trace judgement is the harness's (`harness.sut.readback.read_trace`), the same one
`harness trace` and `harness e2e` use.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from harness.sqlfile import named_queries
from harness.sut.adapter import SutSql
from harness.sut.config import Sut, reference_sut

Q = named_queries("gate")


@dataclass(frozen=True)
class Flow:
    entity_id: str
    closed_as: str | None
    complete: bool
    trace_id: str | None
    correlation_id: str | None
    seconds: float
    jobs: int
    runs: int
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.complete and self.closed_as == "document.anchored"

    def line(self) -> str:
        verdict = "complete" if self.ok else "INCOMPLETE: " + "; ".join(self.problems[:3])
        return (
            f"entity {self.entity_id}: closed as {self.closed_as or '(open)'} in {self.seconds:.2f} s, "
            f"{self.jobs} jobs, {self.runs} runs, trace {self.trace_id}, correlation {self.correlation_id}: "
            f"{verdict}"
        )


@dataclass
class CanaryResult:
    wanted: int
    flows: list[Flow] = field(default_factory=list)

    @property
    def consecutive_ok(self) -> int:
        count = 0
        for flow in self.flows:
            if not flow.ok:
                break
            count += 1
        return count

    @property
    def ok(self) -> bool:
        return self.consecutive_ok >= self.wanted

    @property
    def entities(self) -> list[str]:
        return [f.entity_id for f in self.flows]


def run_canary(dsn: str, runs: int, timeout_s: float, sut: Sut | None = None) -> CanaryResult:
    """Run `runs` flows one after another through the pipeline's entry point; stop at the first that fails
    (they must be consecutive)."""
    from harness.sut.adapter import SutSql
    from harness.sut.readback import read_trace
    from harness.wait import WaitTimeout, wait_until

    result = CanaryResult(runs)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql = SutSql.discovered(conn, sut or reference_sut())
        for index in range(runs):
            entity = str(uuid.uuid4())
            started = time.monotonic()
            sql.request(conn, entity, f"phase gate flow {index + 1}", "phase-gate")
            with contextlib.suppress(WaitTimeout):
                wait_until(
                    functools.partial(_flow_closed, conn, entity, sql),
                    timeout=timeout_s,
                    describe=f"flow of entity {entity} to close",
                    interval=0.05,
                )
            seconds = time.monotonic() - started
            trace = read_trace(conn, entity, sql)
            jobs = sum(len(step.jobs) for step in trace.steps)
            runs_seen = sum(len(step.runs) for step in trace.steps)
            problems = trace.problems or (() if trace.closed_as else (f"not closed within {timeout_s:g} s",))
            flow = Flow(
                entity,
                trace.closed_as,
                trace.complete,
                trace.trace_id,
                trace.correlation_id,
                seconds,
                jobs,
                runs_seen,
                tuple(problems),
            )
            result.flows.append(flow)
            if not flow.ok:
                break
    return result


def _flow_closed(conn: psycopg.Connection[Any], entity: str, sql: SutSql) -> Any:
    row = conn.execute(sql.render(Q["flow_closed"]), {"entity_id": entity}).fetchone()
    assert row is not None  # one row: whether the flow closed
    return row[0]
