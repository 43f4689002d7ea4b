"""The hot path reaches its rows by key whatever the planner's statistics say.

Each session keeps one generic plan per statement (0013), so a plan the planner made while a table looked
small outlives the table's growth: the claim used to update executor_jobs through a hash join over the whole
table, and complete_jobs looked runs up with a scan per job. These tests run every hot-path function once
under auto_explain (nested statements included) on tables whose statistics were taken when they were small
and again when large, and fail on any sequential scan of a table that grows. Against migrations up to 0015
both fail: the claim scanned executor_jobs, and complete_jobs scanned executor_job_runs once per job.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest

Conn = psycopg.Connection[Any]

# The tables that grow with the pipeline (job_types, a handful of rows, may be read either way).
PIPELINE_TABLES = (
    "document_entities",
    "executor_jobs",
    "executor_job_runs",
    "executor_job_queue",
    "user_documents",
)


def seed_protect_jobs(conn: Conn, count: int) -> None:
    """`count` new entities, each with a protect job made through the append path."""
    conn.execute(
        "WITH e AS (INSERT INTO document_entities (id) SELECT gen_random_uuid() FROM generate_series(1, %s)"
        " RETURNING id) SELECT count(append_event(e.id, 'job.protect.required', '{\"document\": \"d\"}'))"
        " FROM e",
        (count,),
    )


def plans_of_one_round(conn: Conn) -> list[str]:
    """Every plan (nested ones included) of one pass through the hot path's functions, in a new session so
    that each function plans afresh under the statistics of now."""
    plans: list[str] = []
    conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
        conn.execute(f"SET auto_explain.{setting}")
    conn.execute("SET client_min_messages = notice")
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))

    entity = uuid.uuid4()
    conn.execute("SELECT request_protection(%s, 'a document')", (entity,))
    conn.execute("SELECT append_event(%s, 'document.note.added', '{}')", (entity,))
    runs = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 10)").fetchall()
    conn.execute(
        "SELECT count(*) FROM complete_jobs(%s::bigint[], %s::bigint[])",
        ([r[0] for r in runs], [r[1] for r in runs]),
    )
    decisions = conn.execute(
        "SELECT job_id, run_id, entity_id FROM claim_initial_decision_jobs('d', 10)"
    ).fetchall()
    ids = sorted({r[2] for r in decisions})
    with conn.transaction():
        conn.execute("SELECT count(*) FROM lock_entities_events(%s::uuid[])", (ids,))
        conn.execute(
            "SELECT count(*) FROM append_events(%s::uuid[], %s::text[], %s::jsonb[])",
            (ids, ["document.note.added"] * len(ids), ["{}"] * len(ids)),
        )
        conn.execute(
            "SELECT count(*) FROM complete_jobs(%s::bigint[], %s::bigint[], %s::jsonb[], %s::uuid[])",
            (
                [r[0] for r in decisions],
                [r[1] for r in decisions],
                ["{}"] * len(decisions),
                [str(uuid.uuid4()) for _ in decisions],
            ),
        )
    for finish in ("SELECT fail_job(%s, %s, 'down', true)", "SELECT release_job(%s, %s)"):
        job, run = conn.execute("SELECT job_id, run_id FROM claim_orchestrator_jobs('w', 1)").fetchone()
        conn.execute(finish, (job, run))
    # A lease that expires: the next claim, an hour on, reaps it first.
    lost = conn.execute("SELECT run_id FROM claim_orchestrator_jobs('crashed', 1, 30)").fetchone()[0]
    conn.execute(
        "SELECT count(*) FROM claim_orchestrator_jobs('w', 1, 30, clock_timestamp() + interval '1 hour')"
    )
    conn.execute("SET auto_explain.log_min_duration = -1")  # the test's own reads are not the hot path
    outcome = conn.execute("SELECT outcome FROM executor_job_runs WHERE id = %s", (lost,)).fetchone()[0]
    assert outcome == "lease_expired"
    return plans


def scans(plans: list[str]) -> list[str]:
    found = []
    for plan in plans:
        for table in PIPELINE_TABLES:
            if re.search(rf"Seq Scan on {table}\b", plan):
                lines = plan.splitlines()
                found.append(f"{table} in: {(lines[1:] or lines)[0][:90]}")
    return found


@pytest.mark.parametrize("analyzed_at", [5, 3000])
def test_the_hot_path_never_scans_a_table(dsn: str, conn: Conn, analyzed_at: int) -> None:
    seed_protect_jobs(conn, analyzed_at)
    conn.execute("ANALYZE")
    seed_protect_jobs(conn, 3000 - analyzed_at + 20)
    with psycopg.connect(dsn, autocommit=True) as session:
        plans = plans_of_one_round(session)
    assert len(plans) > 20, "auto_explain logged too few plans: the round did not run the hot path"
    assert scans(plans) == []
