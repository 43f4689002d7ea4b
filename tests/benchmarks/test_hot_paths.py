"""pytest-benchmark over the hot SQL paths (run with `pytest -m benchmark -n 0`: under pytest-xdist,
pytest-benchmark only calls each function once and measures nothing); compare runs with
`--benchmark-compare`, never with a timed assertion."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.benchmark


def test_append_event_through_trigger_and_gateway(benchmark: Any, conn: psycopg.Connection[Any]) -> None:
    entities = [str(uuid.uuid4()) for _ in range(500)]
    for entity in entities:
        conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
    counter = iter(range(10**9))

    def append() -> None:
        conn.execute(
            "SELECT append_event(%s, 'job.protect.required', '{}')", (entities[next(counter) % 500],)
        )

    benchmark(append)
    assert conn.execute("SELECT count(*) FROM executor_jobs").fetchone()[0] >= 1


def test_claim_and_complete_one_job(benchmark: Any, conn: psycopg.Connection[Any]) -> None:
    # One required event per entity: every append rewrites the entity's JSONB array, so piling thousands of
    # events on one entity would measure that rewrite, not the step.
    conn.execute(
        "WITH e AS (INSERT INTO document_entities (id) SELECT gen_random_uuid() FROM generate_series(1, 600) "
        "RETURNING id) SELECT append_event(id, 'job.protect.required', '{}') FROM e"
    )

    steps = 0

    def step() -> None:
        nonlocal steps
        steps += 1
        row = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('bench', 1)").fetchone()
        if row:
            conn.execute("SELECT complete_job(%s, %s, '{}')", row)

    benchmark.pedantic(step, rounds=500, iterations=1)
    # Every step found a job and completed it (500 rounds when measuring, one call when benchmarks are off).
    succeeded = conn.execute("SELECT count(*) FROM executor_jobs WHERE status = 'succeeded'").fetchone()[0]
    assert steps >= 1 and succeeded == steps
