"""The claim queue (migrations 0012, 0015) and the lean hot path (0011, 0013), against a real Postgres.

- Model-based: random sequences of gateway calls, inserts around the gateway (an operator's, a legacy one
  redirected by the guard), claims, completions, failures, releases, lease expiries,
  re-drives by hand, deletions and truncation; after every step the queue must be exactly what
  executor_jobs says it is, and every running job must be held by exactly one open run of its attempt.
- HOT: no index of executor_jobs covers a column that changes after the insert, and a claim-and-complete
  cycle really is HOT updates only (the property that keeps vacuum cheap as history grows).
- Plans: with tables big enough that a scan would hurt, a claim-and-complete cycle scans no hot table
  sequentially (each table's scan counter, read inside the transaction, does not move).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

Conn = psycopg.Connection[Any]

EXPECTED_QUEUE = """
SELECT j.id, j.kind,
       CASE j.status WHEN 'running' THEN 'leased' WHEN 'dead' THEN 'dead' ELSE 'ready' END AS state,
       CASE j.status WHEN 'running' THEN coalesce(j.lease_expires_at, j.run_at)
                     WHEN 'dead' THEN coalesce(j.finished_at, j.updated_at) ELSE j.run_at END AS due_at
  FROM executor_jobs j WHERE j.status <> 'succeeded' ORDER BY j.id
"""
ACTUAL_QUEUE = "SELECT job_id, kind, state::text, due_at FROM executor_job_queue ORDER BY job_id"
JOB_TYPES = ("protect", "tsa", "anchor", "decide_request", "decide_outcome")


def queue_mismatch(conn: Conn) -> str | None:
    expected = conn.execute(EXPECTED_QUEUE).fetchall()
    actual = conn.execute(ACTUAL_QUEUE).fetchall()
    if expected == actual:
        return None
    return f"queue differs from executor_jobs:\n  expected {expected}\n  actual   {actual}"


class QueueMachine(RuleBasedStateMachine):
    """Drives the pipeline's SQL API; the model is executor_jobs itself, the checked copy is the queue."""

    conn: Conn

    def __init__(self) -> None:
        super().__init__()
        self.conn.execute("TRUNCATE executor_job_runs, executor_jobs, document_entities")
        self.entity = str(uuid.uuid4())
        self.conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (self.entity,))
        self.held: list[tuple[int, int]] = []  # (job_id, run_id) claimed and not yet finished by us
        self.clock = datetime.now().astimezone()

    def _tick(self, seconds: float) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    @rule(job_type=st.sampled_from(JOB_TYPES), repeat=st.booleans())
    def materialize(self, job_type: str, repeat: bool) -> None:
        source = str(uuid.uuid4())
        for _ in range(2 if repeat else 1):  # a repeated call is deduplicated by the gateway
            self.conn.execute("SELECT materialize_job(%s, %s, %s)", (job_type, self.entity, source))

    @rule(job_type=st.sampled_from(JOB_TYPES))
    def insert_around_the_gateway(self, job_type: str) -> None:
        # An operator's insert with the guard off (replica mode fires only ALWAYS triggers): the gateway writes
        # its jobs' queue rows itself, so the queue's insert trigger must still serve every other writer.
        kind = "decision" if job_type.startswith("decide") else "execution"
        with self.conn.transaction():
            self.conn.execute("SET LOCAL session_replication_role = replica")
            self.conn.execute(
                "INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, "
                "materialized_via) VALUES (%s, %s, %s, gen_random_uuid()::text, gen_random_uuid(), 'operator')",
                (job_type, kind, self.entity),
            )

    @rule(job_type=st.sampled_from(JOB_TYPES))
    def legacy_insert_redirected(self, job_type: str) -> None:
        # compat mode: the guard turns a direct insert into an event, and the gateway makes the job.
        kind = "decision" if job_type.startswith("decide") else "execution"
        self.conn.execute(
            "INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, materialized_via) "
            "VALUES (%s, %s, %s, gen_random_uuid()::text, gen_random_uuid(), 'legacy')",
            (job_type, kind, self.entity),
        )

    @rule(kind=st.sampled_from(("decision", "execution")), limit=st.integers(1, 3))
    def claim(self, kind: str, limit: int) -> None:
        function = "claim_initial_decision_jobs" if kind == "decision" else "claim_orchestrator_jobs"
        rows = self.conn.execute(
            f"SELECT job_id, run_id FROM {function}('m', %s, 30, %s)", (limit, self._tick(1))
        ).fetchall()
        self.held.extend((r[0], r[1]) for r in rows)

    @rule(later=st.integers(31, 120), kind=st.sampled_from(("decision", "execution")))
    def expire_leases_and_claim(self, later: int, kind: str) -> None:
        function = "claim_initial_decision_jobs" if kind == "decision" else "claim_orchestrator_jobs"
        rows = self.conn.execute(
            f"SELECT job_id, run_id FROM {function}('late', 5, 30, %s)", (self._tick(later),)
        ).fetchall()
        self.held.extend((r[0], r[1]) for r in rows)

    @precondition(lambda self: self.held)
    @rule(
        data=st.data(), how=st.sampled_from(("complete", "complete_batch", "fail", "fail_final", "release"))
    )
    def finish(self, data: st.DataObject, how: str) -> None:
        job_id, run_id = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        now = self._tick(0.5)
        if how == "complete":
            self.conn.execute("SELECT complete_job(%s, %s, '{}', NULL, %s)", (job_id, run_id, now))
        elif how == "complete_batch":
            pairs = [(job_id, run_id), *self.held]
            self.held.clear()
            self.conn.execute(
                "SELECT count(*) FROM complete_jobs(%s::bigint[], %s::bigint[], NULL, NULL, %s)",
                ([p[0] for p in pairs], [p[1] for p in pairs], now),
            )
        elif how in ("fail", "fail_final"):
            self.conn.execute("SELECT fail_job(%s, %s, 'boom', %s, %s)", (job_id, run_id, how == "fail", now))
        else:
            self.conn.execute("SELECT release_job(%s, %s, %s)", (job_id, run_id, now))

    @rule()
    def redrive_dead_jobs_by_hand(self) -> None:
        self.conn.execute(
            "UPDATE executor_jobs SET status = 'queued', attempts = 0, run_at = clock_timestamp(), "
            "finished_at = NULL WHERE status = 'dead'"
        )

    @rule()
    def delete_a_finished_job(self) -> None:
        self.conn.execute(
            "DELETE FROM executor_jobs WHERE id = (SELECT min(id) FROM executor_jobs WHERE status = 'succeeded')"
        )

    @rule()
    def truncate(self) -> None:
        self.conn.execute("TRUNCATE executor_job_runs, executor_jobs")
        self.held.clear()

    @invariant()
    def queue_mirrors_the_jobs(self) -> None:
        assert (problem := queue_mismatch(self.conn)) is None, problem

    @invariant()
    def every_running_job_has_one_open_run_of_its_attempt(self) -> None:
        bad = self.conn.execute(
            """SELECT j.id, j.attempts, array_agg(r.attempt) FILTER (WHERE r.finished_at IS NULL)
                 FROM executor_jobs j LEFT JOIN executor_job_runs r ON r.job_id = j.id
                WHERE j.status = 'running' GROUP BY j.id, j.attempts
               HAVING count(r.id) FILTER (WHERE r.finished_at IS NULL AND r.attempt = j.attempts) <> 1
                   OR count(r.id) FILTER (WHERE r.finished_at IS NULL) <> 1"""
        ).fetchall()
        assert not bad, f"running jobs without exactly one open run of their attempt: {bad}"


def test_the_queue_is_exactly_what_executor_jobs_says(conn: Conn) -> None:
    QueueMachine.conn = conn
    test = QueueMachine.TestCase
    test.settings = settings(
        max_examples=30,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    test().runTest()


def test_a_queue_out_of_step_is_caught(conn: Conn) -> None:
    """The invariant can fail: a queue row changed behind the triggers' back is reported."""
    entity = str(uuid.uuid4())
    conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
    conn.execute("SELECT materialize_job('protect', %s, gen_random_uuid())", (entity,))
    assert queue_mismatch(conn) is None
    conn.execute("UPDATE executor_job_queue SET state = 'leased'")
    problem = queue_mismatch(conn)
    assert problem is not None and "'leased'" in problem and "'ready'" in problem


MUTABLE = {
    "status",
    "attempts",
    "run_at",
    "lease_owner",
    "lease_expires_at",
    "last_error",
    "updated_at",
    "finished_at",
}


def test_no_index_of_executor_jobs_covers_a_column_that_changes(conn: Conn) -> None:
    rows = conn.execute(
        """SELECT c.relname, a.attname, am.amname
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0
              AND (a.attnum = ANY (i.indkey)
                   OR pg_get_expr(i.indpred, i.indrelid) ~ ('\\m' || a.attname || '\\M')
                   OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\\m' || a.attname || '\\M'))
            WHERE i.indrelid = 'executor_jobs'::regclass"""
    ).fetchall()
    assert {index for index, _, _ in rows} >= {"executor_jobs_pkey", "executor_jobs_dedupe_key_key"}
    # BRIN is a summarizing index: since Postgres 16 it does not stop an update from being HOT.
    covered = sorted((index, column) for index, column, am in rows if am != "brin" and column in MUTABLE)
    assert not covered, f"indexes on changing columns make every status change non-HOT: {covered}"


def xact_updates(conn: Conn) -> tuple[int, int]:
    """(updates, HOT updates) of executor_jobs this backend has not yet reported: read it before and after a
    statement inside one transaction, as the counter is only flushed between transactions."""
    return conn.execute(
        "SELECT pg_stat_get_xact_tuples_updated('executor_jobs'::regclass), "
        "pg_stat_get_xact_tuples_hot_updated('executor_jobs'::regclass)"
    ).fetchone()


def test_a_claim_and_complete_cycle_is_hot_updates_only(conn: Conn) -> None:
    entity = str(uuid.uuid4())
    conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
    conn.execute(
        "SELECT materialize_job('protect', %s, gen_random_uuid()) FROM generate_series(1, 6)", (entity,)
    )
    counts = []
    with conn.transaction():  # the claim, committed on its own as the workers do
        before = xact_updates(conn)
        rows = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 6)").fetchall()
        after = xact_updates(conn)
        counts.append((after[0] - before[0], after[1] - before[1]))
    with conn.transaction():
        before = xact_updates(conn)
        conn.execute(
            "SELECT count(*) FROM complete_jobs(%s::bigint[], %s::bigint[])",
            ([r[0] for r in rows], [r[1] for r in rows]),
        )
        after = xact_updates(conn)
        counts.append((after[0] - before[0], after[1] - before[1]))
    assert counts == [(6, 6), (6, 6)], f"(updates, HOT updates) of executor_jobs per transaction: {counts}"


HOT_TABLES = [
    "executor_jobs",
    "executor_job_runs",
    "document_entities",
    "executor_job_queue",
    "user_documents",
]
READS = """SELECT relname, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
             FROM pg_stat_xact_user_tables WHERE relname = ANY(%s) ORDER BY relname"""


def test_a_claim_and_complete_cycle_reads_only_the_rows_it_touches(conn: Conn, dsn: str) -> None:
    # Enough history that reading it would be a real cost, analyzed so the planner knows it.
    conn.execute("INSERT INTO document_entities (id) SELECT gen_random_uuid() FROM generate_series(1, 3000)")
    conn.execute(
        "SELECT append_event(e.id, 'job.protect.required', '{\"document\": \"d\"}') FROM document_entities e"
    )
    for _ in range(2):  # most jobs finish, so the history outweighs the backlog
        rows = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 1400)").fetchall()
        conn.execute(
            "SELECT count(*) FROM complete_jobs(%s::bigint[], %s::bigint[])",
            ([r[0] for r in rows], [r[1] for r in rows]),
        )
    conn.execute("ANALYZE")
    with psycopg.connect(dsn) as worker:  # a fresh session: its plans are made now, on the real sizes
        for _ in range(6):  # past the fifth call, where a cached plan may turn generic
            worker.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 10)").fetchall()
            worker.commit()
        before = {name: (scans, read) for name, scans, read in worker.execute(READS, (HOT_TABLES,))}
        rows = worker.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 10)").fetchall()
        assert len(rows) == 10, "the cycle needs jobs to claim"
        worker.execute(
            "SELECT count(*) FROM complete_jobs(%s::bigint[], %s::bigint[])",
            ([r[0] for r in rows], [r[1] for r in rows]),
        )
        after = worker.execute(READS, (HOT_TABLES,)).fetchall()
        worker.rollback()
    delta = {
        name: (scans - before.get(name, (0, 0))[0], read - before.get(name, (0, 0))[1])
        for name, scans, read in after
    }
    assert not any(scans for scans, _ in delta.values()), f"sequential scans in one cycle: {delta}"
    # Ten jobs claimed, run, completed, their events appended and their next jobs made: a few rows each.
    assert all(read <= 100 for _, read in delta.values()), f"(seq scans, rows read) per table: {delta}"
