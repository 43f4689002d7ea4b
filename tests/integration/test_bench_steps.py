"""The bench's step figures: each measured once per round, by real clients and a real worker process that
drain every seeded job, so a median stands for work that was done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from harness.bench import step_rounds
from harness.peers import pgqueuer_available
from harness.provision import EmbeddedPostgres
from harness.sut import Sut

Conn = psycopg.Connection[Any]


def test_every_step_figure_has_one_rate_per_round_and_leaves_no_work(
    sut: Sut, pg: EmbeddedPostgres, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    rates = step_rounds(sut, pg, dsn, jobs=60, rounds=2, log_dir=tmp_path)
    expected = {f"{who}_jobs_per_s_batch{b}" for who in ("raw_step", "worker") for b in (1, 10)}
    if pgqueuer_available():
        expected |= {"pgqueuer_jobs_per_s_batch1", "pgqueuer_jobs_per_s_batch10"}
    assert set(rates) == expected
    assert all(len(r) == 2 and min(r) > 0 for r in rates.values()), rates
    # The last figure of the last round was the worker's at batch 10: it finished every job it was given,
    # each with its canonical result.
    done = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM executor_jobs WHERE job_type = 'protect'"
    ).fetchone()
    assert done == (60, 60)
    results = conn.execute(
        "SELECT count(*) FROM document_entities, jsonb_array_elements(events) e "
        "WHERE e ->> 'type' = 'job.protect.completed'"
    ).fetchone()[0]
    assert results == 60
