"""`harness bench --instructions`: the instructions Postgres executes per job on the hot paths, counted by
valgrind's callgrind.

Timings on a shared 2-core machine move by a third from one run to the next, so a 5% change to the pipeline's
SQL cannot be seen in them. The instructions a backend executes for the same work barely move (well under 1%
between runs), so here a change can be measured, and a CI job can fail on a regression: the same workloads run
on the pipeline and on a baseline in the same run (`--baseline-until NNNN`: the same migrations up to an
earlier one, e.g. the last release), and the report gives both counts and their ratio.

The server runs under callgrind, about 50 times slower, so the workloads are small. Each one runs twice, with
N and with 3N jobs, each time on a new connection (a new backend, whose count callgrind writes when it exits);
the difference of the two counts over 2N is the count per job, with connection set-up, planning and the first
calls cancelled out. Only the backend doing the work is counted: not the client, not the other processes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import BadInput, HarnessError
from harness.perf.bench import complete_all, seed_protect_jobs, seed_started_requests
from harness.provision.embedded import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan
from harness.sqlfile import named_queries
from harness.sut.config import Sut, reference_sut
from harness.wait import WaitTimeout, wait_until

Q = named_queries("bench")
EVENTS_PER_ENTITY = 8  # a flow's worth, as the append figures of `harness bench`


@dataclass
class InstructionReport:
    postgres: str = ""
    baseline: str | None = None
    per_job: dict[str, int] = field(default_factory=dict)
    baseline_per_job: dict[str, int] = field(default_factory=dict)
    max_regression_pct: float | None = None

    def ratios(self) -> dict[str, float]:
        return {
            name: round(count / self.baseline_per_job[name], 4)
            for name, count in self.per_job.items()
            if self.baseline_per_job.get(name)
        }

    def regressions(self) -> list[str]:
        if self.max_regression_pct is None:
            return []
        limit = 1 + self.max_regression_pct / 100
        return [
            f"{name}: {self.per_job[name]:,} instructions per job against {self.baseline_per_job[name]:,} "
            f"({(ratio - 1) * 100:+.1f}%, more than {self.max_regression_pct:g}%)"
            for name, ratio in self.ratios().items()
            if ratio > limit
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "postgres": self.postgres,
            "baseline": self.baseline,
            "instructions_per_job": self.per_job,
            "baseline_instructions_per_job": self.baseline_per_job,
            "ratio_to_baseline": self.ratios(),
            "regressions": self.regressions(),
        }


def require_valgrind() -> str:
    found = shutil.which("valgrind")
    if not found:
        raise BadInput("harness bench --instructions needs valgrind: install it (apt-get install valgrind)")
    return found


class Counter:
    """Reads one backend's instruction count from the files callgrind writes into `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def count(self, dsn: str, work: Callable[[psycopg.Connection[Any]], None]) -> int:
        """Run `work` on a new connection, close it, and return the instructions its backend executed."""
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None  # one row: the pid
            pid = row[0]
            work(conn)
        out = self.folder / f"cg.{pid}"

        def summary() -> re.Match[str] | None:
            return re.search(
                r"^summary: (\d+)", out.read_text(errors="replace") if out.exists() else "", re.MULTILINE
            )

        try:
            return int(wait_until(summary, 60, f"callgrind's count for backend {pid} in {out}", 0.1).group(1))
        except WaitTimeout as exc:
            raise HarnessError(
                f"callgrind wrote no count for backend {pid} within 60 s (looked for {out})"
            ) from exc

    def per_job(self, dsn: str, jobs: int, seed: Callable[[int], None], work: Callable[..., None]) -> int:
        """Instructions per job: the backends of a 3N-job run and an N-job run, differenced, over 2N."""
        seed(jobs)
        small = self.count(dsn, lambda conn: work(conn, jobs))
        seed(3 * jobs)
        large = self.count(dsn, lambda conn: work(conn, 3 * jobs))
        return round((large - small) / (2 * jobs))


# -- the workloads: each seeds its jobs on a connection of its own, then works them on the counted one ---------
def _seed_appends(dsn: str) -> Callable[[int], None]:
    def seed(jobs: int) -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute(Q["reset_queue"])
            conn.execute(Q["new_entities"], {"count": jobs // EVENTS_PER_ENTITY + 1})

    return seed


def _appends(conn: psycopg.Connection[Any], jobs: int) -> None:
    entities = [r[0] for r in conn.execute("SELECT id FROM document_entities ORDER BY id")]
    with conn.cursor() as cur:
        for index in range(jobs):
            cur.execute(
                Q["require_protect"], {"entity_id": entities[index // EVENTS_PER_ENTITY]}, prepare=True
            )


def _seed_steps(dsn: str) -> Callable[[int], None]:
    return lambda jobs: seed_protect_jobs(dsn, jobs)


def _steps(batch: int) -> Callable[[psycopg.Connection[Any], int], None]:
    def work(conn: psycopg.Connection[Any], jobs: int) -> None:
        while rows := conn.execute(Q["claim_execution"], {"limit": batch}).fetchall():
            with conn.transaction():
                complete_all(conn, rows)

    return work


def _seed_decisions(dsn: str) -> Callable[[int], None]:
    return lambda jobs: seed_started_requests(dsn, jobs)


def _noop_decisions(batch: int) -> Callable[[psycopg.Connection[Any], int], None]:
    def work(conn: psycopg.Connection[Any], jobs: int) -> None:
        while rows := conn.execute(Q["claim_decision"], {"limit": batch}).fetchall():
            with conn.transaction():
                conn.execute(Q["lock_entities"], {"entity_ids": sorted({r[2] for r in rows}, key=str)})
                complete_all(conn, rows)

    return work


WORKLOADS: dict[str, tuple[Callable[[str], Callable[[int], None]], Callable[..., None]]] = {
    # an append of job.protect.required: validation, core trigger, gateway, queue row, projection
    "append": (_seed_appends, _appends),
    # the raw canonical step: claim, append the result event (trigger, gateway, next job), complete
    "step_batch1": (_seed_steps, _steps(1)),
    "step_batch10": (_seed_steps, _steps(10)),
    # the decision worker's no-op job: claim, lock and read the entity, complete (appends nothing)
    "noop_decision_batch1": (_seed_decisions, _noop_decisions(1)),
    "noop_decision_batch10": (_seed_decisions, _noop_decisions(10)),
}


def measure(counter: Counter, dsn: str, jobs: int, names: tuple[str, ...]) -> dict[str, int]:
    return {name: counter.per_job(dsn, jobs, WORKLOADS[name][0](dsn), WORKLOADS[name][1]) for name in names}


def run_instructions(
    sut: Sut | None = None,
    baseline_until: str | None = None,
    jobs: int = 100,
    max_regression_pct: float | None = None,
    workloads: tuple[str, ...] = tuple(WORKLOADS),
) -> InstructionReport:
    """Count every workload on the SUT's migrations, and on the baseline's when one is named."""
    valgrind = require_valgrind()
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        raise BadInput(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    if jobs < 10:
        raise BadInput(f"the instruction counts need at least 10 jobs per workload, got {jobs}")
    sut = sut or reference_sut()
    plan = MigrationPlan(sut.migrations)
    baseline_plan = MigrationPlan(sut.migrations, until=baseline_until) if baseline_until else None
    if baseline_plan is not None and not baseline_plan.selected():
        raise BadInput(f"--baseline-until {baseline_until} selects no migration of {sut.migrations}")
    report = InstructionReport(baseline=baseline_until, max_regression_pct=max_regression_pct)
    with tempfile.TemporaryDirectory(prefix="harness-callgrind-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o1777)  # the server runs as its own user and writes one file per process here
        wrapper = [
            valgrind,
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={folder}/cg.%p",
        ]
        # No autovacuum: its workers are not counted, but their locks and page pruning would move the counts.
        with EmbeddedPostgres(
            settings={"autovacuum": "off"}, ready_clones=0, start_timeout_s=300, wrapper=wrapper
        ) as pg:
            report.postgres = f"{pg.info().version} under callgrind"
            counter = Counter(folder)
            report.per_job = measure(counter, pg.new_database(plan), jobs, workloads)
            if baseline_plan is not None:
                report.baseline_per_job = measure(counter, pg.new_database(baseline_plan), jobs, workloads)
    return report


def render(report: InstructionReport) -> str:
    lines = [
        f"postgres: {report.postgres}",
        "instructions per job (callgrind; the same work counts the same)",
    ]
    ratios = report.ratios()
    for name, count in report.per_job.items():
        line = f"  {name:24s} {count:>12,}"
        if name in report.baseline_per_job:
            line += f"   baseline (until {report.baseline}) {report.baseline_per_job[name]:>12,}   x{ratios[name]:.3f}"
        lines.append(line)
    lines += [f"  regression: {r}" for r in report.regressions()]
    return "\n".join(lines)
