"""The orchestrator's background writers, on real connections: the bound on writes in flight, errors that
reach the caller, a close that waits, and a worker whose write connection is killed mid-run."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.perf.bench import Q
from harness.sut.supervisor import Supervisor
from harness.wait import wait_until
from pipeline.worker.writers import Writers
from tests.integration.test_workers import Start, closed_as, count_events, request

Conn = psycopg.Connection[Any]
LOCK = 4242  # an advisory lock the test holds to keep writes in flight


@pytest.fixture
def writers(dsn: str) -> Iterator[Writers]:
    pool = Writers(2, "test-write")
    pool.open(lambda i: psycopg.connect(dsn, autocommit=True, application_name=f"test-write{i}"))
    yield pool
    pool.close()


def blocked_write(conn: Conn) -> int:
    """Waits for the test's advisory lock, then lets it go."""
    conn.execute("SELECT pg_advisory_lock(%s), pg_advisory_unlock(%s)", (LOCK, LOCK))
    return 1


def waiting_writes(conn: Conn) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'test-write%' "
        "AND wait_event_type = 'Lock'"
    ).fetchone()[0]


def test_at_most_two_writes_are_in_flight_and_their_results_are_collected(
    conn: Conn, writers: Writers
) -> None:
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    collected: list[int] = []
    third = threading.Thread(target=lambda: collected.append(writers.submit(blocked_write)))
    try:
        assert writers.submit(blocked_write) == 0
        assert writers.submit(blocked_write) == 0
        wait_until(lambda: waiting_writes(conn) == 2, 10, "both writes to wait on the lock at once")
        third.start()
        third.join(0.5)
        assert third.is_alive(), "a third write was let in while two were in flight"
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    third.join(10)
    assert collected == [1]  # the oldest write's result, collected to make room
    assert writers.settle() == 2


def test_a_failed_write_raises_where_it_is_collected_and_frees_its_connection(writers: Writers) -> None:
    writers.submit(lambda c: c.execute("SELECT 1 / 0").fetchone()[0])
    with pytest.raises(psycopg.errors.DivisionByZero):
        writers.settle()
    # Both connections serve again (the third submit collects the first write to make room).
    collected = sum(writers.submit(lambda c: c.execute("SELECT 1").fetchone()[0]) for _ in range(3))
    assert collected + writers.settle() == 3


def test_a_batch_handed_over_after_a_failed_write_is_still_written(conn: Conn, dsn: str) -> None:
    conn.execute("CREATE TABLE written (n int)")
    pool = Writers(1, "test-write")
    pool.open(lambda i: psycopg.connect(dsn, autocommit=True))
    pool.submit(lambda c: c.execute("SELECT 1 / 0").fetchone()[0])
    with pytest.raises(psycopg.errors.DivisionByZero):
        pool.submit(lambda c: c.execute("INSERT INTO written VALUES (1)").rowcount)
    pool.close()  # what the worker does on an error: the batch it had just handed over is written first
    assert conn.execute("SELECT count(*) FROM written").fetchone()[0] == 1


def test_close_waits_for_the_writes_in_flight(conn: Conn, dsn: str) -> None:
    conn.execute("CREATE TABLE written (n int)")
    pool = Writers(2, "test-write")
    pool.open(lambda i: psycopg.connect(dsn, autocommit=True))

    def slow_insert(c: Conn) -> int:
        c.execute("SELECT pg_sleep(0.3)")
        c.execute("INSERT INTO written VALUES (1)")
        return 1

    for _ in range(2):
        pool.submit(slow_insert)
    pool.close()
    assert conn.execute("SELECT count(*) FROM written").fetchone()[0] == 2


def test_an_orchestrator_whose_write_connection_dies_recovers_and_duplicates_nothing(
    conn: Conn, system_factory: Start
) -> None:
    conn.execute("UPDATE pipeline_settings SET value = '1' WHERE key = 'lease_seconds'")
    system_factory()
    entities = [request(conn) for _ in range(40)]

    def kill_writes() -> int:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name LIKE 'orchestrator%/write%'"
        ).fetchone()[0]

    wait_until(lambda: kill_writes() > 0, 30, "the orchestrator's write connections to show up")
    wait_until(lambda: all(closed_as(conn, e) == "document.anchored" for e in entities), 60, "flows to close")
    for entity in entities:
        for step in ("protect", "tsa", "anchor"):
            assert count_events(conn, entity, f"job.{step}.completed") == 1
    reconnected = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'orchestrator%/write%'"
    ).fetchone()[0]
    assert reconnected == 2


def test_decisions_in_flight_on_one_entity_decide_once(conn: Conn, system_factory: Start) -> None:
    """Twenty copies of one request, each its own batch, two batches decided at once: the entity's row lock
    makes each decision read what the one before it appended, so the flow starts once."""
    entity = request(conn)
    for _ in range(20):
        conn.execute(
            "SELECT append_event(%s, 'document.protect.requested', %s)", (entity, '{"document": "again"}')
        )
    system_factory(batch=1)
    wait_until(lambda: closed_as(conn, entity) == "document.anchored", 30, "the flow to close")
    wait_until(
        lambda: (
            conn.execute(
                "SELECT count(*) FROM executor_jobs WHERE entity_id = %s AND status <> 'succeeded'", (entity,)
            ).fetchone()[0]
            == 0
        ),
        30,
        "every duplicate's decision job to finish",
    )
    for step in ("protect", "tsa", "anchor"):
        assert count_events(conn, entity, f"job.{step}.required") == 1
        assert count_events(conn, entity, f"job.{step}.completed") == 1
    assert count_events(conn, entity, "document.anchored") == 1


def worker_connections(conn: Conn, role: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s", (f"{role}@%",)
    ).fetchone()[0]


@pytest.mark.parametrize(("writers", "connections"), [(0, 2), (3, 5)])
def test_writers_flag_sets_the_connections_and_the_work_still_gets_done(
    conn: Conn, dsn: str, tmp_path: Path, writers: int, connections: int
) -> None:
    """`--writers 0` writes in the worker's own loop (two connections: work and side); `--writers N` adds N
    to the roles that take jobs (the scheduler ignores it).
    Either way every seeded job of both roles is done: protect jobs with their canonical result, and decisions
    for flows already started, appending nothing."""
    conn.execute(Q["started_requests"], {"count": 30})
    with Supervisor(tmp_path) as supervisor:
        for role in ("fase1-executor", "orchestrator", "scheduler"):
            supervisor.start(
                role,
                [sys.executable, "-m", "pipeline", "worker", role, "--dsn", dsn, "--writers", str(writers)],
            )
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM executor_jobs WHERE status = 'succeeded' AND job_type IN ('protect', 'decide_request')"
                ).fetchone()[0]
                == 60
            ),
            30,
            "both workers to finish their jobs",
        )
        for role in ("fase1-executor", "orchestrator"):
            assert worker_connections(conn, role) == connections
        assert worker_connections(conn, "scheduler") == 2  # it hands nothing off, so it opens no writers
    assert count_events_of_type(conn, "job.protect.completed") == 30
    assert count_events_of_type(conn, "job.protect.required") == 30  # the decisions appended nothing


def count_events_of_type(conn: Conn, event_type: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM document_entities, jsonb_array_elements(events) e WHERE e ->> 'type' = %s",
        (event_type,),
    ).fetchone()[0]
