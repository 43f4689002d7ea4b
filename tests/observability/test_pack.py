"""The harness's observability pack (`harness/observability/pack.sql`) on a real database: installed over the
RFC's tables only, its KPI sees exactly the required events that got no job, and each rule lives the
Prometheus way (pending, firing once its `for` has elapsed, resolved when the condition ends), evaluated at
chosen instants (`p_now`) so nothing waits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from harness.observability import pack
from harness.sut.adapter import SutSql
from harness.sut.config import Sut
from tests.observability.conftest import db_now

Conn = psycopg.Connection[Any]


@pytest.fixture
def packed(dsn: str, conn: Conn, sut: Sut) -> SutSql:
    sql = SutSql.connect(sut, dsn)
    pack.install(dsn, sql, profile="production")
    return sql


def _states(conn: Conn, at: dt.datetime) -> dict[str, str]:
    return {
        r[0]: r[1] for r in conn.execute("SELECT rule, state FROM harness_obs.evaluate(%s)", (at,)).fetchall()
    }


def _transitions(conn: Conn, rule: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT from_state, to_state FROM harness_obs.alert_history WHERE rule = %s ORDER BY id", (rule,)
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_a_disabled_core_trigger_is_pending_then_firing_after_for_then_resolved(
    packed: SutSql, conn: Conn
) -> None:
    now = db_now(conn)
    assert _states(conn, now)["core-trigger-disabled"] == "inactive"
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    assert _states(conn, now + dt.timedelta(seconds=1))["core-trigger-disabled"] == "pending"
    assert _states(conn, now + dt.timedelta(seconds=20))["core-trigger-disabled"] == "pending"  # for = 30 s
    assert _states(conn, now + dt.timedelta(seconds=32))["core-trigger-disabled"] == "firing"
    conn.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
    assert _states(conn, now + dt.timedelta(seconds=33))["core-trigger-disabled"] == "inactive"
    assert _transitions(conn, "core-trigger-disabled") == [
        ("inactive", "pending"),
        ("pending", "firing"),
        ("firing", "resolved"),
    ]


def test_a_blip_shorter_than_for_never_fires(packed: SutSql, conn: Conn) -> None:
    now = db_now(conn)
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    _states(conn, now)
    conn.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
    _states(conn, now + dt.timedelta(seconds=5))
    assert _transitions(conn, "core-trigger-disabled") == [("inactive", "pending"), ("pending", "inactive")]


def test_the_gap_kpi_sees_exactly_the_required_events_without_a_job(
    packed: SutSql, conn: Conn, sut: Sut
) -> None:
    made = str(uuid.uuid4())
    packed.request(conn, made, "a document whose flow starts")
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    lost = str(uuid.uuid4())
    conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (lost,))
    conn.execute(
        packed.authority_write("append_event"),
        {
            "entity_id": lost,
            "event_id": str(uuid.uuid4()),
            "type": "job.tsa.required",
            "correlation_id": str(uuid.uuid4()),
            "trace_id": uuid.uuid4().hex,
            "payload": "{}",
        },
    )
    conn.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
    rows = conn.execute(
        "SELECT entity_id, job_type, job_created_at IS NULL FROM harness_obs.event_to_job_gap"
    ).fetchall()
    assert (lost, "tsa", True) in rows
    assert all(not missing for entity, _, missing in rows if entity != lost)
    now = db_now(conn)
    assert _states(conn, now)["event-to-job-gap"] == "inactive"  # younger than Delta (60 s)
    assert _states(conn, now + dt.timedelta(seconds=61))["event-to-job-gap"] == "pending"
    assert _states(conn, now + dt.timedelta(seconds=92))["event-to-job-gap"] == "firing"


def test_dead_jobs_fire_within_their_window_and_resolve_after_it(packed: SutSql, conn: Conn) -> None:
    conn.execute("SELECT harness_obs.apply_profile('fast')")  # for 1 s, window 20 s
    entity = str(uuid.uuid4())
    packed.request(conn, entity, "doomed")
    job = conn.execute("SELECT id FROM executor_jobs WHERE entity_id = %s", (entity,)).fetchone()[0]
    conn.execute(
        "UPDATE executor_jobs SET status = 'dead', finished_at = clock_timestamp() WHERE id = %s", (job,)
    )
    conn.execute(
        "INSERT INTO executor_job_runs (job_id, attempt, worker, started_at, finished_at, outcome, correlation_id, trace_id) "
        "SELECT id, 1, 'test', clock_timestamp(), clock_timestamp(), 'failed', correlation_id, trace_id "
        "FROM executor_jobs WHERE id = %s",
        (job,),
    )
    now = db_now(conn)
    assert _states(conn, now)["dead-jobs"] == "pending"
    assert _states(conn, now + dt.timedelta(seconds=2))["dead-jobs"] == "firing"
    assert _states(conn, now + dt.timedelta(seconds=25))["dead-jobs"] == "inactive"


def test_install_reads_the_pipeline_through_its_sut_file_and_drops_rules_it_cannot_have(
    dsn: str, sut: Sut
) -> None:
    # A pipeline without compat warnings: the pack has no compat-warnings rule (it could only ever be quiet).
    bare = dataclasses.replace(sut, capabilities={"compat-warnings": False})
    sql = SutSql.connect(bare, dsn)
    assert not sql.has("compat_warnings")
    pack.install(dsn, sql, profile="fast")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rules = {r[0] for r in conn.execute("SELECT name FROM harness_obs.rules").fetchall()}
        assert "compat-warnings" not in rules and "core-trigger-disabled" in rules
        assert pack.installed(conn)
