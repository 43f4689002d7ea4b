"""The live-schema contracts (PGC001-PGC009) on the reference schema, and each one broken on purpose in the
test's own database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from contracts.config import Config
from contracts.finding import Level
from contracts.live import check_live
from harness.provision import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan

Conn = psycopg.Connection[Any]


def live_violations(dsn: str, rule: str, config: Config | None = None) -> list[Any]:
    report = check_live(dsn, config or Config())
    return [f for f in report.findings if f.rule == rule and f.level is Level.ERROR]


def test_reference_schema_passes_every_live_contract(dsn: str, conn: Conn) -> None:
    report = check_live(dsn, Config())
    assert report.findings == []
    assert set(report.evidence) == {f"PGC{i:03d}" for i in range(1, 13)}
    # every probe rolled back: nothing was left behind
    assert conn.execute("SELECT count(*) FROM executor_jobs").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM document_entities").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM compat_warnings").fetchone()[0] == 0


def test_disabled_core_trigger_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    found = live_violations(dsn, "PGC001")
    assert [f.object for f in found] == ["trigger on_document_entity_events_change on document_entities"]
    assert "disabled (tgenabled = 'D')" in found[0].message


def test_missing_core_trigger_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("DROP TRIGGER on_document_entity_events_change ON document_entities")
    found = live_violations(dsn, "PGC001")
    assert "does not exist" in found[0].message


def test_claim_function_returning_both_kinds_is_found_by_behaviour_and_by_definition(
    dsn: str, conn: Conn
) -> None:
    conn.execute("""
        CREATE OR REPLACE FUNCTION claim_initial_decision_jobs(
            p_worker text, p_limit int DEFAULT 1, p_lease_seconds double precision DEFAULT NULL,
            p_now timestamptz DEFAULT NULL)
        RETURNS TABLE (job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb,
                       attempt int, max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text,
                       lease_expires_at timestamptz)
        LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
        AS $$ SELECT * FROM claim_jobs_of_kind('decision', p_worker, p_limit, p_lease_seconds, p_now)
              UNION ALL
              SELECT * FROM claim_jobs_of_kind('execution', p_worker, p_limit, p_lease_seconds, p_now) $$
    """)
    behaviour = live_violations(dsn, "PGC003")
    assert [f.object for f in behaviour] == ["function claim_initial_decision_jobs"]
    assert (
        "not decision jobs: anchor (execution), protect (execution), tsa (execution)" in behaviour[0].message
    )
    definition = live_violations(dsn, "PGC004")
    assert [f.object for f in definition] == ["function claim_initial_decision_jobs"]
    assert "'execution'" in definition[0].message


def test_claim_without_a_kind_filter_is_found_by_definition(dsn: str, conn: Conn) -> None:
    conn.execute("""
        CREATE OR REPLACE FUNCTION claim_orchestrator_jobs(
            p_worker text, p_limit int DEFAULT 1, p_lease_seconds double precision DEFAULT NULL,
            p_now timestamptz DEFAULT NULL)
        RETURNS TABLE (job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb,
                       attempt int, max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text,
                       lease_expires_at timestamptz)
        LANGUAGE sql AS $$ SELECT * FROM claim_jobs_of_kind(p_worker, p_worker, 0, p_lease_seconds, p_now) $$
    """)
    definition = live_violations(dsn, "PGC004")
    assert "names neither 'execution' nor a execution job type" in definition[0].message
    assert any(
        "did not return the seeded execution job(s)" in f.message for f in live_violations(dsn, "PGC003")
    )


def test_whitelist_drift_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("INSERT INTO job_types (name, kind, role) VALUES ('notify', 'execution', 'orchestrator')")
    conn.execute(
        "UPDATE job_types SET kind = 'execution', role = 'orchestrator' WHERE name = 'decide_outcome'"
    )
    found = [f.message for f in live_violations(dsn, "PGC005")]
    assert found == [
        "job type 'notify' (execution) is in job_types but not declared",
        "job type 'decide_outcome' is execution in job_types but declared decision",
    ]


def test_missing_guard_is_found_and_the_direct_insert_is_seen_kept(dsn: str, conn: Conn) -> None:
    conn.execute("DROP TRIGGER executor_jobs_gateway_guard ON executor_jobs")
    found = [f.message for f in live_violations(dsn, "PGC006")]
    assert any("does not exist" in m for m in found)
    assert any("kept as inserted (1 row)" in m for m in found)


def test_strict_mode_rejection_is_what_the_contract_expects(dsn: str, conn: Conn) -> None:
    conn.execute("UPDATE pipeline_settings SET value = 'strict' WHERE key = 'gateway_mode'")
    report = check_live(dsn, Config())
    assert [f for f in report.findings if f.rule == "PGC006"] == []
    assert any("rejected with SQLSTATE PJ003" in line for line in report.evidence["PGC006"])


def test_gateway_without_security_definer_is_found(dsn: str, conn: Conn) -> None:
    definition = conn.execute("SELECT pg_get_functiondef('materialize_job'::regproc)").fetchone()[0]
    conn.execute(
        definition.replace("SECURITY DEFINER", "").replace(" SET search_path TO 'public', 'pg_temp'", "")
    )
    found = live_violations(dsn, "PGC007")
    assert [(f.object, f.message) for f in found] == [
        (
            "function materialize_job",
            "gateway function materialize_job is SECURITY INVOKER: it runs with the caller's privileges",
        ),
        (
            "function materialize_job",
            "gateway function materialize_job has no pinned search_path (SET search_path)",
        ),
    ]


def test_worker_role_with_insert_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("GRANT INSERT ON executor_jobs TO pipeline_scheduler")
    found = live_violations(dsn, "PGC008")
    assert [(f.object, f.message) for f in found] == [
        (
            "role pipeline_scheduler",
            "role pipeline_scheduler can INSERT into executor_jobs: its own privileges: table-level INSERT",
        )
    ]


def test_projection_folded_into_the_core_trigger_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("DROP TRIGGER project_user_documents ON document_entities")
    conn.execute("DROP TRIGGER project_user_documents_on_insert ON document_entities")
    conn.execute(
        "CREATE TRIGGER project_user_documents AFTER INSERT OR UPDATE OF events ON document_entities "
        "FOR EACH ROW EXECUTE FUNCTION on_document_entity_events_change()"
    )
    report = check_live(dsn, Config())
    found = [f for f in report.findings if f.rule == "PGC002"]
    assert [f.level for f in found] == [Level.WARNING]
    assert "no trigger on document_entities writes user_documents" in found[0].message


@pytest.fixture
def legacy_dsn(pg: EmbeddedPostgres, plan: MigrationPlan) -> Any:
    """A database migrated only up to the legacy gateway 0007, which carries the ambiguous dedupe key."""
    with pg.database(MigrationPlan(plan.folder, until="0007")) as fresh:
        yield fresh


def test_ambiguous_dedupe_key_is_found_on_a_database_without_the_fix(legacy_dsn: str) -> None:
    found = live_violations(legacy_dsn, "PGC009")
    assert [f.object for f in found] == ["function materialize_job"]
    assert "SQLSTATE 42702" in found[0].message and "not applied" in found[0].message


# -- role paths to INSERT on executor_jobs (PGC008) ------------------------------------------------------------


@pytest.fixture
def holder(conn: Conn) -> Any:
    """A role holding INSERT on executor_jobs, dropped afterwards (roles are cluster-wide: other tests'
    databases share them)."""
    import uuid

    name = f"contracts_holder_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {name} NOLOGIN")
    conn.execute(f"GRANT INSERT ON executor_jobs TO {name}")
    yield name
    conn.execute(f"REVOKE ALL ON executor_jobs FROM {name}")
    conn.execute(f"DROP ROLE {name}")


@pytest.mark.parametrize(
    ("membership", "path"),
    [
        ("WITH INHERIT TRUE, SET FALSE", "which it inherits (member WITH INHERIT): table-level INSERT"),
        (
            "WITH INHERIT FALSE, SET TRUE",
            "which it may SET ROLE to (member without INHERIT): table-level INSERT",
        ),
    ],
    ids=["inherited", "set-role"],
)
def test_insert_reachable_through_another_role_is_found_naming_the_path(
    dsn: str, conn: Conn, holder: str, membership: str, path: str
) -> None:
    conn.execute(f"GRANT {holder} TO pipeline_decider {membership}")
    try:
        found = live_violations(dsn, "PGC008")
        assert [f.object for f in found] == ["role pipeline_decider"]
        assert f"role {holder}, {path}" in found[0].message
    finally:
        conn.execute(f"REVOKE {holder} FROM pipeline_decider")


def test_a_membership_that_neither_inherits_nor_sets_is_no_path(dsn: str, conn: Conn, holder: str) -> None:
    conn.execute(f"GRANT {holder} TO pipeline_decider WITH INHERIT FALSE, SET FALSE")
    try:
        assert live_violations(dsn, "PGC008") == []
    finally:
        conn.execute(f"REVOKE {holder} FROM pipeline_decider")


def test_column_level_insert_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("GRANT INSERT (job_type, entity_id) ON executor_jobs TO pipeline_writer")
    found = live_violations(dsn, "PGC008")
    assert [(f.object, f.message) for f in found] == [
        (
            "role pipeline_writer",
            "role pipeline_writer can INSERT into executor_jobs: its own privileges: column-level INSERT on "
            "entity_id, job_type",
        )
    ]


# -- replica mode as a default (PGC010) ------------------------------------------------------------------------


def test_replica_mode_as_a_database_or_role_default_is_found(dsn: str, conn: Conn) -> None:
    database = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(
        f"ALTER ROLE pipeline_executor IN DATABASE {database} SET session_replication_role = replica"
    )
    found = live_violations(dsn, "PGC010")
    assert [f.object for f in found] == ["role pipeline_executor"]
    assert f"ALTER ROLE pipeline_executor IN DATABASE {database} SET" in found[0].message
    conn.execute(f"ALTER DATABASE {database} SET session_replication_role = replica")
    report = check_live(dsn, Config())
    objects = [f.object for f in report.findings if f.rule == "PGC010"]
    assert objects == [f"database {database}", "role pipeline_executor"]
    # the probe of the core trigger runs in a new session, which starts in replica mode: it sees it too
    assert any(f.rule == "PGC011" for f in report.findings)


# -- the core trigger's behaviour (PGC011) ----------------------------------------------------------------------


def test_core_trigger_that_stops_materializing_one_event_type_is_found(dsn: str, conn: Conn) -> None:
    """Present, enabled, and still a no-op for anchor jobs and failed outcomes: only the probe sees it."""
    definition = conn.execute(
        "SELECT pg_get_functiondef('on_document_entity_events_change'::regproc)"
    ).fetchone()[0]
    sabotaged = definition.replace(
        "v_job_type := v_parts[2];", "v_job_type := nullif(v_parts[2], 'anchor');"
    ).replace("ELSIF v_parts[3] IN ('completed', 'failed') THEN", "ELSIF v_parts[3] = 'completed' THEN")
    assert sabotaged != definition
    conn.execute(sabotaged)
    report = check_live(dsn, Config())
    found = [f for f in report.findings if f.rule == "PGC011"]
    assert [f.message.split(" ")[1] for f in found] == [
        "job.anchor.failed",
        "job.protect.failed",
        "job.tsa.failed",
        "job.anchor.required",
    ]
    assert {f.object for f in found} == {"trigger on_document_entity_events_change on document_entities"}
    assert (
        "materialized no job; the core trigger must materialize anchor through the gateway"
        in found[-1].message
    )
    assert [f for f in report.findings if f.rule == "PGC001"] == []  # enabled all along
    assert conn.execute("SELECT count(*) FROM executor_jobs").fetchone()[0] == 0  # the probe rolled back


def test_core_events_come_from_the_config(dsn: str) -> None:
    config = Config(core_events={"document.archive.requested": "decide_request"})
    found = live_violations(dsn, "PGC011", config)
    assert [f.message.split(" ")[1] for f in found] == []
    config = Config(core_events={"document.archive.requested": "protect"})
    found = live_violations(dsn, "PGC011", config)
    assert "materialized decide_request via trigger" in found[0].message


# -- functions of the live database (PGC012) -------------------------------------------------------------------


def test_live_function_writing_the_queue_through_dynamic_sql_is_found(dsn: str, conn: Conn) -> None:
    conn.execute("""
        CREATE FUNCTION requeue(p_type text) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            v_queue text := 'executor' || '_jobs';
        BEGIN
            EXECUTE format('INSERT INTO %I (job_type) VALUES ($1)', v_queue) USING p_type;
        END $$
    """)
    conn.execute("""
        CREATE FUNCTION copy_rows(p_table text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
        BEGIN
            EXECUTE 'INSERT INTO ' || quote_ident(p_table) || ' SELECT 1';
        END $$
    """)
    conn.execute("""
        CREATE FUNCTION audit(p text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('INSERT INTO %I (x) VALUES ($1)', 'audit_log') USING p;
        END $$
    """)
    report = check_live(dsn, Config())
    found = [(f.object, f.level) for f in report.findings if f.rule == "PGC012"]
    assert found == [("function copy_rows", Level.WARNING), ("function requeue", Level.ERROR)]
    warning = next(f for f in report.findings if f.object == "function copy_rows")
    assert "who can insert into executor_jobs" in warning.message
