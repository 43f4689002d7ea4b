-- class: infra
-- Roles and privileges, so the database itself backs the rules: no worker role may insert into executor_jobs,
-- each claim function is executable only by its role, the dashboard reads through a read-only role.
-- Roles are cluster-wide: created only when absent, so the same cluster may hold many pipeline databases.

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['pipeline_decider', 'pipeline_executor', 'pipeline_scheduler',
                                  'pipeline_monitor', 'pipeline_reader', 'pipeline_writer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
    END LOOP;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO pipeline_decider, pipeline_executor, pipeline_scheduler, pipeline_monitor,
                                 pipeline_reader, pipeline_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public
    TO pipeline_decider, pipeline_executor, pipeline_scheduler, pipeline_monitor, pipeline_reader;

-- Claims only by their own role.
REVOKE EXECUTE ON FUNCTION claim_initial_decision_jobs(text, int, double precision, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION claim_orchestrator_jobs(text, int, double precision, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION claim_jobs_of_kind(text, text, int, double precision, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_initial_decision_jobs(text, int, double precision, timestamptz) TO pipeline_decider;
GRANT EXECUTE ON FUNCTION claim_orchestrator_jobs(text, int, double precision, timestamptz) TO pipeline_executor;

-- Internal steps are not an API.
REVOKE EXECUTE ON FUNCTION reap_expired_leases(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION mark_job_dead(executor_jobs, text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION lock_job_for_run(bigint, bigint) FROM PUBLIC;

-- The hot queue stays lean: every claim and completion leaves dead index entries behind, and claim
-- throughput falls by a third within a minute unless they are vacuumed. Vacuum this table on small churn,
-- and always clean its indexes: since Postgres 14 a vacuum skips index cleanup when few pages hold dead
-- tuples, which is exactly the case once finished jobs outnumber live ones, and the partial index of ready
-- jobs then fills with dead entries every claim must step over (measured: 1,800 -> 1,300 jobs/s over ten
-- minutes without it; flat with it, `harness bench --soak-minutes 10`).
ALTER TABLE executor_jobs SET (
    vacuum_index_cleanup = on,
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE executor_job_runs SET (autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE document_entities SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
