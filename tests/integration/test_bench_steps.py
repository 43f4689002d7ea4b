"""The bench's step figures: each measured once per round, by real clients and real worker processes that
drain every seeded job, so a median stands for work that was done, and the trivial jobs are no-ops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from harness.bench import step_rounds, trivial_worker_rate, worker_rate
from harness.peers import pgqueuer_available
from harness.provision import EmbeddedPostgres
from harness.sut import Sut

Conn = psycopg.Connection[Any]


def test_every_step_figure_has_one_rate_per_round(
    sut: Sut, pg: EmbeddedPostgres, dsn: str, tmp_path: Path
) -> None:
    rates = step_rounds(sut, pg, dsn, jobs=60, rounds=2, log_dir=tmp_path)
    expected = {
        f"{who}_jobs_per_s_batch{b}" for who in ("raw_step", "worker", "worker_trivial") for b in (1, 10)
    }
    if pgqueuer_available():
        expected |= {"pgqueuer_jobs_per_s_batch1", "pgqueuer_jobs_per_s_batch10"}
    assert set(rates) == expected
    assert all(len(r) == 2 and min(r) > 0 for r in rates.values()), rates


def test_the_worker_figure_drains_every_job_with_its_canonical_result(
    sut: Sut, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    assert worker_rate(sut, dsn, jobs=60, batch=10, log_dir=tmp_path) > 0
    done = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM executor_jobs WHERE job_type = 'protect'"
    ).fetchone()
    assert done == (60, 60)
    results = conn.execute(
        "SELECT count(*) FROM document_entities, jsonb_array_elements(events) e "
        "WHERE e ->> 'type' = 'job.protect.completed'"
    ).fetchone()[0]
    assert results == 60


def test_the_trivial_figure_drains_decisions_that_append_nothing(
    sut: Sut, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    assert trivial_worker_rate(sut, dsn, jobs=60, batch=10, log_dir=tmp_path) > 0
    by_kind = dict(
        conn.execute(
            "SELECT kind, count(*) FILTER (WHERE status = 'succeeded') FROM executor_jobs GROUP BY kind"
        ).fetchall()
    )
    assert by_kind == {"decision": 60, "execution": 0}  # every decision done; the protect jobs left alone
    lengths = conn.execute("SELECT DISTINCT jsonb_array_length(events) FROM document_entities").fetchall()
    assert lengths == [(2,)]  # no decision appended anything: the jobs were no-ops
