"""The SQL contract of the reference pipeline: whitelist, gateway, dedupe, guard modes, malformed events."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from harness.provision.migrations import MigrationPlan, apply_migrations
from pipeline.errors import (
    DirectInsertRejected,
    GatewayWithoutIdentity,
    MalformedEvent,
    UnknownEntity,
    UnknownJobType,
    translate,
)

Conn = psycopg.Connection[Any]


def new_entity(conn: Conn) -> str:
    entity = str(uuid.uuid4())
    conn.execute("SELECT request_protection(%s, 'doc')", (entity,))
    return entity


def jobs_of(conn: Conn, entity: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT job_type, kind, materialized_via, source_event_id FROM executor_jobs WHERE entity_id = %s ORDER BY id",
        (entity,),
    ).fetchall()


def test_whitelist_lists_decision_and_execution_types(conn: Conn) -> None:
    rows = dict(conn.execute("SELECT name, kind FROM job_types").fetchall())
    assert rows == {
        "decide_request": "decision",
        "decide_outcome": "decision",
        "protect": "execution",
        "tsa": "execution",
        "anchor": "execution",
    }


def test_required_event_of_unknown_type_is_rejected_clearly_and_loses_nothing(conn: Conn) -> None:
    entity = new_entity(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("SELECT append_event(%s, 'job.bogus.required', '{}')", (entity,))
    error = translate(caught.value)
    assert isinstance(error, UnknownJobType)
    assert "'bogus'" in str(error) and "whitelist" in str(error) and "hint:" in str(error)
    events = conn.execute("SELECT jsonb_array_length(events) FROM document_entities WHERE id = %s", (entity,))
    assert events.fetchone()[0] == 1  # the committed request is still there
    assert len(jobs_of(conn, entity)) == 1


def test_request_materializes_one_decision_job_through_the_trigger(conn: Conn) -> None:
    entity = new_entity(conn)
    ((job_type, kind, via, _source),) = jobs_of(conn, entity)
    assert (job_type, kind, via) == ("decide_request", "decision", "trigger")


def test_same_event_appended_twice_gives_one_event_and_one_job(conn: Conn) -> None:
    entity = new_entity(conn)
    event_id = uuid.uuid4()
    first = conn.execute(
        "SELECT append_event(%s, 'job.protect.required', '{\"document\": \"x\"}', NULL, NULL, NULL, %s)",
        (entity, event_id),
    ).fetchone()[0]
    again = conn.execute(
        "SELECT append_event(%s, 'job.protect.required', '{\"document\": \"x\"}', NULL, NULL, NULL, %s)",
        (entity, event_id),
    ).fetchone()[0]
    assert first == event_id and again is None
    # A writer bypassing the API and appending the very same event object again: the gateway still dedupes.
    conn.execute(
        "UPDATE document_entities SET events = events || jsonb_build_array(events -> -1) WHERE id = %s",
        (entity,),
    )
    protect_jobs = [j for j in jobs_of(conn, entity) if j[0] == "protect"]
    assert len(protect_jobs) == 1 and protect_jobs[0][3] == event_id


def test_gateway_called_twice_for_one_source_event_returns_the_same_job(conn: Conn) -> None:
    entity = new_entity(conn)
    source = uuid.uuid4()
    first = conn.execute(
        "SELECT job_id, created FROM materialize_job('tsa', %s, %s)", (entity, source)
    ).fetchone()
    second = conn.execute(
        "SELECT job_id, created FROM materialize_job('tsa', %s, %s)", (entity, source)
    ).fetchone()
    assert first[1] is True and second == (first[0], False)


def test_compat_mode_redirects_a_direct_insert_through_the_gateway_and_warns(conn: Conn) -> None:
    entity = new_entity(conn)
    conn.execute(
        "INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, materialized_via) "
        "VALUES ('protect', 'execution', %s, 'legacy-key', gen_random_uuid(), 'legacy:cron')",
        (entity,),
    )
    protect = [j for j in jobs_of(conn, entity) if j[0] == "protect"]
    assert len(protect) == 1 and protect[0][2] == "compat_redirect"
    events = conn.execute("SELECT events FROM document_entities WHERE id = %s", (entity,)).fetchone()[0]
    redirected = [e for e in events if e["type"] == "job.protect.required"]
    assert len(redirected) == 1 and str(protect[0][3]) == redirected[0]["id"]  # born from a canonical event
    warning = conn.execute("SELECT source, job_type, entity_id, job_id FROM compat_warnings").fetchall()
    assert len(warning) == 1 and warning[0][:3] == ("legacy:cron", "protect", uuid.UUID(entity))


def test_strict_mode_rejects_a_direct_insert_and_loses_nothing_else(conn: Conn) -> None:
    entity = new_entity(conn)
    conn.execute("UPDATE pipeline_settings SET value = 'strict' WHERE key = 'gateway_mode'")
    before = conn.execute("SELECT count(*) FROM executor_jobs").fetchone()[0]
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, "
            "materialized_via) VALUES ('protect', 'execution', %s, 'k', gen_random_uuid(), 'legacy')",
            (entity,),
        )
    error = translate(caught.value)
    assert isinstance(error, DirectInsertRejected)
    assert "gateway_mode=strict" in str(error) and "appending a job.<type>.required event" in str(error)
    assert conn.execute("SELECT count(*) FROM executor_jobs").fetchone()[0] == before
    assert conn.execute("SELECT count(*) FROM compat_warnings").fetchone()[0] == 0
    # The canonical path still works in strict mode.
    conn.execute("SELECT append_event(%s, 'job.tsa.required', '{}')", (entity,))
    assert [j[0] for j in jobs_of(conn, entity)] == ["decide_request", "tsa"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"id": "00000000-0000-0000-0000-000000000001", "payload": {}}, 'has no "type"'),
        (
            {"id": "00000000-0000-0000-0000-000000000002", "type": "job.protect.required", "payload": [1]},
            'has a array "payload"',
        ),
        ({"type": "document.protect.requested"}, 'has no "id"'),
    ],
)
def test_malformed_event_is_rejected_naming_its_position(
    conn: Conn, event: dict[str, Any], expected: str
) -> None:
    entity = new_entity(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "UPDATE document_entities SET events = events || jsonb_build_array(%s::jsonb) WHERE id = %s",
            (Jsonb(event), entity),
        )
    error = translate(caught.value)
    assert isinstance(error, MalformedEvent)
    assert "events[1]" in str(error) and expected in str(error)
    assert (
        conn.execute(
            "SELECT jsonb_array_length(events) FROM document_entities WHERE id = %s", (entity,)
        ).fetchone()[0]
        == 1
    )


def test_malformed_payload_through_the_api_is_rejected(conn: Conn) -> None:
    entity = new_entity(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("SELECT append_event(%s, 'job.tsa.required', '\"text\"')", (entity,))
    assert isinstance(translate(caught.value), MalformedEvent)


def test_events_are_append_only(conn: Conn) -> None:
    entity = new_entity(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("UPDATE document_entities SET events = '[]' WHERE id = %s", (entity,))
    assert caught.value.sqlstate == "PJ005"


def test_worker_roles_cannot_insert_into_executor_jobs(conn: Conn) -> None:
    for role in ("pipeline_decider", "pipeline_executor", "pipeline_scheduler", "pipeline_writer"):
        assert (
            conn.execute("SELECT has_table_privilege(%s, 'executor_jobs', 'INSERT')", (role,)).fetchone()[0]
            is False
        )
    assert (
        conn.execute(
            "SELECT has_function_privilege('pipeline_executor', "
            "'claim_initial_decision_jobs(text, int, double precision, timestamptz)', 'EXECUTE')"
        ).fetchone()[0]
        is False
    )


def test_ambiguous_dedupe_key_bug_before_the_fix_and_gone_after(pg: Any, plan: MigrationPlan) -> None:
    buggy = MigrationPlan(plan.folder, until="0007")
    with pg.database(buggy) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        entity = str(uuid.uuid4())
        conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
        with pytest.raises(
            psycopg.errors.AmbiguousColumn, match='column reference "dedupe_key" is ambiguous'
        ):
            conn.execute("SELECT * FROM materialize_job('protect', %s, gen_random_uuid())", (entity,))
        with pytest.raises(psycopg.errors.AmbiguousColumn):  # and so every request fails at the core trigger
            conn.execute("SELECT request_protection(%s, 'doc')", (entity,))
        applied = apply_migrations(dsn, plan)  # deploy the fix (and what follows it)
        assert [m.version for m in applied][:3] == ["0008", "0009", "0010"]
        conn.execute("SELECT request_protection(%s, 'doc')", (entity,))
        assert conn.execute("SELECT count(*) FROM executor_jobs").fetchone()[0] == 1


def test_append_events_appends_a_batch_in_order_and_each_event_makes_its_job(conn: Conn) -> None:
    first, second = new_entity(conn), new_entity(conn)
    rows = conn.execute(
        "SELECT entity_id::text, event_id FROM append_events(%s::uuid[], %s, %s::jsonb[])",
        (
            [second, first, second],
            ["job.tsa.required", "job.protect.required", "job.anchor.required"],
            [Jsonb({"n": 1}), Jsonb({"n": 2}), Jsonb({"n": 3})],
        ),
    ).fetchall()
    assert [r[0] for r in rows] == [second, first, second]
    types = conn.execute(
        "SELECT jsonb_path_query_array(events, '$[1 to last].type') FROM document_entities WHERE id = %s",
        (second,),
    ).fetchone()[0]
    assert types == ["job.tsa.required", "job.anchor.required"]
    assert [j[0] for j in jobs_of(conn, second)] == ["decide_request", "tsa", "anchor"]
    assert [j[0] for j in jobs_of(conn, first)] == ["decide_request", "protect"]
    ids = conn.execute(
        "SELECT array_agg(j.source_event_id ORDER BY j.id) FROM executor_jobs j WHERE j.job_type <> 'decide_request'"
    ).fetchone()[0]
    assert sorted(ids) == sorted(r[1] for r in rows)


@pytest.mark.parametrize(
    ("types", "known", "error_type", "message"),
    [
        (["job.tsa.required", "Not Dotted"], True, MalformedEvent, "which is not dotted lower-case words"),
        (["job.tsa.required", "job.tsa.required"], False, UnknownEntity, "unknown entity"),
    ],
    ids=["malformed", "unknown-entity"],
)
def test_append_events_appends_nothing_when_one_event_is_bad(
    conn: Conn, types: list[str], known: bool, error_type: type, message: str
) -> None:
    entity = new_entity(conn)
    other = new_entity(conn) if known else str(uuid.uuid4())
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(
            "SELECT * FROM append_events(%s::uuid[], %s, %s::jsonb[])",
            ([entity, other], types, [Jsonb({}), Jsonb({})]),
        )
    error = translate(caught.value)
    assert isinstance(error, error_type) and message in str(error)
    assert (
        conn.execute(
            "SELECT jsonb_array_length(events) FROM document_entities WHERE id = %s", (entity,)
        ).fetchone()[0]
        == 1
    )


def test_lock_entities_events_locks_the_batch_until_the_transaction_ends(conn: Conn, dsn: str) -> None:
    first, second = new_entity(conn), new_entity(conn)
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as other:
        rows = holder.execute(
            "SELECT entity_id::text, jsonb_array_length(events) FROM lock_entities_events(%s::uuid[])",
            ([second, first],),
        ).fetchall()
        assert rows == sorted([(first, 1), (second, 1)])  # in id order, with their events
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT append_event(%s, 'job.tsa.required', '{}')", (first,))
        holder.rollback()
        assert other.execute("SELECT append_event(%s, 'job.tsa.required', '{}')", (first,)).fetchone()[0]


def test_the_gateway_called_without_identity_is_translated_with_its_hint(conn: Conn) -> None:
    """PJ006, the gateway asked for a job with no source event, reaches Python as its own error, hint kept."""
    entity = new_entity(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("SELECT materialize_job('protect', %s, NULL)", (entity,))
    error = translate(caught.value)
    assert isinstance(error, GatewayWithoutIdentity)
    assert "source event id" in str(error) and "hint:" in str(error)
