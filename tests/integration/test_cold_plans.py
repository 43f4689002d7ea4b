"""A worker that started while the queue was empty claims a later burst by key, not by reading every job.

A worker session keeps one generic plan per statement (0013), made the first time the statement runs. Made
while executor_jobs was empty and analyzed as empty (a new deployment autovacuum has visited), the plans of a
later burst read executor_jobs' indexes whole: 389-895 index entries read per job, measured, against about 4
by key, and three to five times slower, until autovacuum's next analyze invalidated them. A worker now drops
its cached plans while it is idle (pipeline/worker/base.py), so a burst is planned with the tables as they are.
Without that, this test fails (389-895 entries read per job in four runs).

Measured by the index entries read per job (pg_stat_user_indexes, flushed when the worker's backends exit),
not by time: a full scan per claim reads hundreds per job, claims by key a handful.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from harness.sqlfile import named_queries
from harness.sut.system import RunningSystem
from harness.wait import wait_until

Q = named_queries("bench")
BURST = 2000


def index_reads(conn: psycopg.Connection[Any]) -> int:
    return conn.execute(
        "SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes WHERE relname = 'executor_jobs'"
    ).fetchone()[0]


def test_a_burst_after_an_idle_start_is_claimed_by_key(
    dsn: str, system_factory: Callable[..., RunningSystem]
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Statistics that say the tables are empty, as on a new deployment that autovacuum has visited.
        conn.execute("ANALYZE executor_jobs, executor_job_queue, executor_job_runs, document_entities")
        system = system_factory(workers={"fase1-executor": 1}, batch=10, poll_interval_s=0.2)
        # Let it claim from the empty queue a few times: its plans are made now.
        time.sleep(1.0)
        before = index_reads(conn)
        with conn.transaction():
            conn.execute(Q["started_requests"], {"count": BURST})
        wait_until(
            lambda: not conn.execute(Q["work_left"], {"kind": "decision"}).fetchone()[0],
            timeout=120,
            describe="the burst of decisions drained",
        )
        system.close()  # the worker's backends exit and flush their statistics
        reads = wait_until(
            lambda: max(index_reads(conn) - before, 0) >= BURST and index_reads(conn) - before,
            timeout=10,
            describe="the statistics of the worker's backends",
        )
    per_job = reads / BURST
    # By key: each decision job is found and updated by its id a few times. A full scan per claim: ~BURST/2/10.
    assert per_job < 20, f"{per_job:.0f} executor_jobs index entries read per job: a claim scanned the table"
