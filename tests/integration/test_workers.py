"""Real worker and service processes on a real database: flows, crashes, failpoints, graceful stop."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from harness.sut.readback import read_trace
from harness.sut.system import RunningSystem
from harness.wait import wait_until

Conn = psycopg.Connection[Any]
Start = Callable[..., RunningSystem]


def request(conn: Conn, entity: str | None = None) -> str:
    entity = entity or str(uuid.uuid4())
    conn.execute("SELECT request_protection(%s, %s)", (entity, f"document {entity}"))
    return entity


def closed_as(conn: Conn, entity: str) -> str | None:
    row = conn.execute(
        "SELECT e ->> 'type' FROM document_entities, jsonb_array_elements(events) e "
        "WHERE id = %s AND e ->> 'type' IN ('document.anchored', 'document.failed')",
        (entity,),
    ).fetchone()
    return row[0] if row else None


def count_events(conn: Conn, entity: str, event_type: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM document_entities, jsonb_array_elements(events) e "
        "WHERE id = %s AND e ->> 'type' = %s",
        (entity, event_type),
    ).fetchone()[0]


def test_flows_complete_end_to_end_with_complete_traces(conn: Conn, system_factory: Start) -> None:
    system_factory()
    entities = [request(conn) for _ in range(10)]
    wait_until(lambda: all(closed_as(conn, e) for e in entities), 30, "10 flows to close")
    for entity in entities:
        trace = read_trace(conn, entity)
        assert trace.complete, trace.problems
        assert trace.closed_as == "document.anchored"
        assert [s.event["type"] for s in trace.steps] == [
            "document.protect.requested",
            "job.protect.required",
            "job.protect.completed",
            "job.tsa.required",
            "job.tsa.completed",
            "job.anchor.required",
            "job.anchor.completed",
            "document.anchored",
        ]
    projected = conn.execute(
        "SELECT count(*) FROM user_documents WHERE status = 'anchored' AND anchor_height > 0"
    )
    assert projected.fetchone()[0] == 10


def test_the_same_intent_sent_twice_starts_one_flow(conn: Conn, system_factory: Start) -> None:
    entity = request(conn)
    request(conn, entity)  # a second request, new event id, same document
    system_factory()
    wait_until(lambda: closed_as(conn, entity), 30, "the flow to close")
    assert count_events(conn, entity, "document.protect.requested") == 2
    assert count_events(conn, entity, "job.protect.required") == 1
    assert (
        conn.execute(
            "SELECT count(*) FROM executor_jobs WHERE entity_id = %s AND kind = 'execution'", (entity,)
        ).fetchone()[0]
        == 3
    )
    assert count_events(conn, entity, "document.anchored") == 1


def test_orchestrator_sigkilled_mid_job_still_gives_exactly_one_result(
    conn: Conn, system_factory: Start
) -> None:
    conn.execute("UPDATE pipeline_settings SET value = '1' WHERE key = 'lease_seconds'")
    conn.execute("SELECT arm_failpoint('orchestrator.after_side_effect', '1*hang')")
    system = system_factory()
    entity = request(conn)
    wait_until(
        lambda: (
            conn.execute(
                "SELECT hits FROM failpoints WHERE name = 'orchestrator.after_side_effect'"
            ).fetchone()[0]
            >= 1
        ),
        30,
        "the orchestrator to hang after its side effect",
    )
    system.supervisor.kill("orchestrator-0")  # SIGKILL, with the protect job claimed and its work done
    assert not system.supervisor.get("orchestrator-0").alive
    system.start_worker("orchestrator", 1)
    wait_until(lambda: closed_as(conn, entity), 30, "the flow to close after the crash")
    assert count_events(conn, entity, "job.protect.completed") == 1
    runs = conn.execute(
        "SELECT r.outcome FROM executor_job_runs r JOIN executor_jobs j ON j.id = r.job_id "
        "WHERE j.entity_id = %s AND j.job_type = 'protect' ORDER BY r.id",
        (entity,),
    ).fetchall()
    assert [r[0] for r in runs] == ["lease_expired", "succeeded"]
    assert read_trace(conn, entity).complete


def test_crash_before_commit_loses_nothing_and_duplicates_nothing(conn: Conn, system_factory: Start) -> None:
    conn.execute("UPDATE pipeline_settings SET value = '1' WHERE key = 'lease_seconds'")
    conn.execute("SELECT arm_failpoint('orchestrator.before_commit', '1*crash')")
    system = system_factory()
    entities = [request(conn) for _ in range(3)]
    wait_until(
        lambda: not system.supervisor.get("orchestrator-0").alive, 30, "the orchestrator to crash itself"
    )
    system.start_worker("orchestrator", 1)
    wait_until(lambda: all(closed_as(conn, e) == "document.anchored" for e in entities), 30, "flows to close")
    for entity in entities:
        for step in ("protect", "tsa", "anchor"):
            assert count_events(conn, entity, f"job.{step}.completed") == 1
        assert read_trace(conn, entity).complete


def test_a_raising_failpoint_is_retried_to_success(conn: Conn, system_factory: Start) -> None:
    conn.execute("UPDATE pipeline_settings SET value = '50' WHERE key = 'retry_base_ms'")
    conn.execute("SELECT arm_failpoint('orchestrator.after_side_effect', '1*raise(injected)')")
    system_factory()
    entity = request(conn)
    wait_until(lambda: closed_as(conn, entity), 30, "the flow to close")
    errors = conn.execute("SELECT error FROM executor_job_runs WHERE outcome = 'failed'").fetchall()
    assert len(errors) >= 1 and "injected" in errors[0][0]
    assert closed_as(conn, entity) == "document.anchored" and read_trace(conn, entity).complete


def test_projection_trigger_disabled_does_not_stop_the_pipeline(conn: Conn, system_factory: Start) -> None:
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER project_user_documents")
    system_factory()
    entities = [request(conn) for _ in range(3)]
    wait_until(lambda: all(closed_as(conn, e) == "document.anchored" for e in entities), 30, "flows to close")
    assert conn.execute("SELECT count(*) FROM user_documents").fetchone()[0] == 0


def test_a_dead_external_service_ends_the_flow_failed_with_its_event(
    conn: Conn, system_factory: Start
) -> None:
    conn.execute("UPDATE job_types SET max_attempts = 2 WHERE name = 'tsa'")
    conn.execute("UPDATE pipeline_settings SET value = '20' WHERE key = 'retry_base_ms'")
    system = system_factory()
    admin = urllib.request.Request(
        system.urls["tsa"] + "/_admin/config",
        data=json.dumps({"down": True}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(admin, timeout=5).close()
    entity = request(conn)
    wait_until(lambda: closed_as(conn, entity), 30, "the flow to end")
    assert closed_as(conn, entity) == "document.failed"
    assert count_events(conn, entity, "job.tsa.failed") == 1
    trace = read_trace(conn, entity)
    assert trace.complete, trace.problems


def test_sigterm_stops_workers_gracefully(conn: Conn, system_factory: Start) -> None:
    system = system_factory()
    entity = request(conn)
    wait_until(lambda: closed_as(conn, entity), 30, "the flow to close")
    for managed in system.workers():
        assert system.supervisor.stop(managed.name, timeout_s=10) == 0
    assert conn.execute("SELECT count(*) FROM executor_jobs WHERE status = 'running'").fetchone()[0] == 0


def test_a_failpoint_armed_while_workers_run_is_picked_up(conn: Conn, system_factory: Start) -> None:
    """Regression: reloading failpoints from inside psycopg's notifies() loop deadlocked every worker."""
    conn.execute("UPDATE pipeline_settings SET value = '50' WHERE key = 'retry_base_ms'")
    system_factory()
    warmup = request(conn)
    wait_until(lambda: closed_as(conn, warmup), 30, "a first flow before arming")
    conn.execute("SELECT arm_failpoint('orchestrator.after_side_effect', '1*raise(armed live)')")
    entity = request(conn)
    wait_until(lambda: closed_as(conn, entity), 30, "a flow after arming at run time")
    hits = conn.execute(
        "SELECT hits FROM failpoints WHERE name = 'orchestrator.after_side_effect'"
    ).fetchone()[0]
    assert hits >= 1
    assert (
        conn.execute("SELECT count(*) FROM executor_job_runs WHERE error LIKE '%%armed live%%'").fetchone()[0]
        >= 1
    )


def test_a_partitioned_database_link_heals_and_loses_nothing(conn: Conn, system_factory: Start) -> None:
    """Workers reach Postgres through a Toxiproxy link (the built-in server, driven by toxiproxy-python)."""
    conn.execute("UPDATE pipeline_settings SET value = '1' WHERE key = 'lease_seconds'")
    system = system_factory(network=True)
    assert system.worker_dsn != system.dsn  # the workers' DSN points at the proxy
    proxy = system.network.get("db")
    proxy.disable()  # partition: open connections cut, new ones refused
    entities = [request(conn) for _ in range(3)]  # the clients' own link is untouched
    wait_until(
        lambda: any("db_unavailable" in m.log_path.read_text() for m in system.workers()),
        20,
        "a worker to notice the partition",
    )
    assert not any(closed_as(conn, e) for e in entities)
    proxy.enable()
    wait_until(
        lambda: all(closed_as(conn, e) == "document.anchored" for e in entities), 30, "flows after healing"
    )
    for entity in entities:
        assert read_trace(conn, entity).complete
