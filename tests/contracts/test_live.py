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
