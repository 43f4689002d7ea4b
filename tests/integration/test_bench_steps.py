"""The bench's step figures: each measured once per round, by real clients and real worker processes that
drain every seeded job, so a median stands for work that was done, and the trivial jobs are no-ops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg

from harness.perf.bench import step_rounds, trivial_worker_drain, worker_drain
from harness.perf.peers import pgqueuer_available
from harness.provision import EmbeddedPostgres
from harness.sut.config import Sut

Conn = psycopg.Connection[Any]


def test_every_step_figure_has_one_rate_per_round(
    sut: Sut, pg: EmbeddedPostgres, dsn: str, tmp_path: Path
) -> None:
    # Enough jobs that a worker is still draining when the harness sees it start (the clock starts then).
    rates = step_rounds(sut, pg, dsn, jobs=600, rounds=2, log_dir=tmp_path)
    expected = {
        f"{who}_jobs_per_s_batch{b}" for who in ("raw_step", "worker", "worker_trivial") for b in (1, 10)
    }
    # CPU per job beside the like-for-like rates (the embedded server runs on this machine)
    expected |= {f"worker_trivial_cpu_us_per_job_batch{b}" for b in (1, 10)}
    if pgqueuer_available():
        expected |= {
            f"pgqueuer_{figure}_batch{b}" for figure in ("jobs_per_s", "cpu_us_per_job") for b in (1, 10)
        }
    assert set(rates) == expected
    assert all(len(r) == 2 and min(r) > 0 for r in rates.values()), rates


def test_the_worker_figure_drains_every_job_with_its_canonical_result(
    sut: Sut, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    assert worker_drain(sut, dsn, jobs=600, batch=10, log_dir=tmp_path).jobs_per_s > 0
    done = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM executor_jobs WHERE job_type = 'protect'"
    ).fetchone()
    assert done == (600, 600)
    results = conn.execute(
        "SELECT count(*) FROM document_entities, jsonb_array_elements(events) e "
        "WHERE e ->> 'type' = 'job.protect.completed'"
    ).fetchone()[0]
    assert results == 600


def test_the_trivial_figure_drains_decisions_that_append_nothing(
    sut: Sut, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    # Enough jobs that their CPU time spans several of the kernel's 10 ms ticks.
    drain = trivial_worker_drain(sut, dsn, jobs=1000, batch=10, log_dir=tmp_path)
    assert drain.jobs_per_s > 0
    # The worker process and its backends were read before and after: some CPU went to each job, and far
    # less than the machine's cores can give in the wall time of a job (a unit slip would not be).
    assert drain.cpu_us_per_job is not None
    assert 0 < drain.cpu_us_per_job < (os.cpu_count() or 1) * 1e6 / drain.jobs_per_s, drain
    by_kind = dict(
        conn.execute(
            "SELECT kind, count(*) FILTER (WHERE status = 'succeeded') FROM executor_jobs GROUP BY kind"
        ).fetchall()
    )
    assert by_kind == {"decision": 1000, "execution": 0}  # every decision done; the protect jobs left alone
    lengths = conn.execute("SELECT DISTINCT jsonb_array_length(events) FROM document_entities").fetchall()
    assert lengths == [(2,)]  # no decision appended anything: the jobs were no-ops
