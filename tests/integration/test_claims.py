"""Claims, leases, fencing, retries and death, through the SQL functions the workers call."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def seed(conn: Conn, kind_counts: dict[str, int]) -> str:
    entity = str(uuid.uuid4())
    conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
    for job_type, count in kind_counts.items():
        for _ in range(count):
            conn.execute("SELECT materialize_job(%s, %s, gen_random_uuid())", (job_type, entity))
    return entity


def test_each_claim_function_returns_only_its_kind(conn: Conn) -> None:
    seed(conn, {"decide_request": 3, "decide_outcome": 2, "protect": 4, "anchor": 1})
    decisions = conn.execute("SELECT kind, job_type FROM claim_initial_decision_jobs('d', 100)").fetchall()
    executions = conn.execute("SELECT kind, job_type FROM claim_orchestrator_jobs('o', 100)").fetchall()
    assert len(decisions) == 5 and {k for k, _ in decisions} == {"decision"}
    assert len(executions) == 5 and {k for k, _ in executions} == {"execution"}


def test_concurrent_claimers_never_take_the_same_job(conn: Conn, dsn: str) -> None:
    entity = str(uuid.uuid4())
    conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
    conn.execute(
        "SELECT materialize_job('protect', %s, gen_random_uuid()) FROM generate_series(1, 400)", (entity,)
    )
    taken: dict[str, list[int]] = {}

    def claimer(name: str) -> None:
        got: list[int] = []
        with psycopg.connect(dsn, autocommit=True) as own:
            while rows := own.execute(
                "SELECT job_id FROM claim_orchestrator_jobs(%s, 7)", (name,)
            ).fetchall():
                got.extend(r[0] for r in rows)
        taken[name] = got

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [job for jobs in taken.values() for job in jobs]
    assert len(every) == 400 and len(set(every)) == 400
    assert sum(1 for jobs in taken.values() if jobs) >= 2  # they really ran side by side
    runs = conn.execute("SELECT count(*), count(DISTINCT job_id) FROM executor_job_runs").fetchone()
    assert runs == (400, 400)


def test_expired_lease_is_reclaimed_and_the_late_worker_is_fenced_off(conn: Conn) -> None:
    seed(conn, {"protect": 1})
    now = conn.execute("SELECT now()").fetchone()[0]
    job_id, run1 = conn.execute(
        "SELECT job_id, run_id FROM claim_orchestrator_jobs('crashed', 1, 30, %s)", (now,)
    ).fetchone()
    assert (
        conn.execute(
            "SELECT count(*) FROM claim_orchestrator_jobs('other', 1, 30, %s)", (now + timedelta(seconds=29),)
        ).fetchone()[0]
        == 0
    )  # still leased
    later = now + timedelta(seconds=31)
    job_again, run2, attempt = conn.execute(
        "SELECT job_id, run_id, attempt FROM claim_orchestrator_jobs('other', 1, 30, %s)", (later,)
    ).fetchone()
    assert (job_again, attempt) == (job_id, 2) and run2 != run1
    assert (
        conn.execute("SELECT outcome FROM executor_job_runs WHERE id = %s", (run1,)).fetchone()[0]
        == "lease_expired"
    )
    # The first worker wakes up and tries to finish: fenced, nothing written.
    assert conn.execute("SELECT complete_job(%s, %s, '{}')", (job_id, run1)).fetchone()[0] is None
    assert conn.execute("SELECT complete_job(%s, %s, '{}')", (job_id, run2)).fetchone()[0] is not None
    completed = conn.execute(
        "SELECT count(*) FROM document_entities, jsonb_array_elements(events) e "
        "WHERE e ->> 'type' = 'job.protect.completed'"
    ).fetchone()[0]
    assert completed == 1


def test_failures_retry_with_growing_backoff_then_die_with_a_failed_event(conn: Conn) -> None:
    entity = seed(conn, {})
    conn.execute("UPDATE job_types SET max_attempts = 3 WHERE name = 'tsa'")
    conn.execute("SELECT append_event(%s, 'job.tsa.required', '{}')", (entity,))
    now = conn.execute("SELECT now()").fetchone()[0]
    delays = []
    for attempt in (1, 2, 3):
        row = conn.execute(
            "SELECT job_id, run_id, attempt FROM claim_orchestrator_jobs('w', 1, 30, %s)", (now,)
        ).fetchone()
        assert row is not None and row[2] == attempt
        status = conn.execute(
            "SELECT fail_job(%s, %s, 'tsa down', true, %s)", (row[0], row[1], now)
        ).fetchone()[0]
        if attempt < 3:
            assert status == "retrying"
            run_at = conn.execute("SELECT run_at FROM executor_jobs WHERE id = %s", (row[0],)).fetchone()[0]
            delays.append((run_at - now).total_seconds())
            now = run_at
        else:
            assert status == "dead"
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0  # base 500 ms, doubling, equal jitter
    failed = conn.execute(
        "SELECT e FROM document_entities, jsonb_array_elements(events) e "
        "WHERE e ->> 'type' = 'job.tsa.failed'"
    ).fetchall()
    assert len(failed) == 1 and failed[0][0]["payload"]["reason"] == "tsa down"
    # The dead job's outcome wakes the decision worker.
    assert (
        conn.execute("SELECT count(*) FROM executor_jobs WHERE job_type = 'decide_outcome'").fetchone()[0]
        == 1
    )


def test_non_retryable_failure_is_dead_at_once(conn: Conn) -> None:
    seed(conn, {"anchor": 1})
    job_id, run_id = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 1)").fetchone()
    assert (
        conn.execute("SELECT fail_job(%s, %s, 'rejected', false)", (job_id, run_id)).fetchone()[0] == "dead"
    )


def test_release_gives_the_job_back_without_counting_the_attempt(conn: Conn) -> None:
    seed(conn, {"protect": 1})
    job_id, run_id = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 1)").fetchone()
    assert conn.execute("SELECT release_job(%s, %s)", (job_id, run_id)).fetchone()[0] is True
    assert conn.execute("SELECT status, attempts FROM executor_jobs WHERE id = %s", (job_id,)).fetchone() == (
        "queued",
        0,
    )
