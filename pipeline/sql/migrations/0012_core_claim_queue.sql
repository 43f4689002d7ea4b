-- class: core
-- The claim queue: executor_jobs stays the queue of record (every job, its status, its whole history), and
-- executor_job_queue is an index of it that holds only the jobs a worker may still have to act on. Why:
--   * Every status change of a job used to be a non-HOT update, because status sat in the predicates of the
--     ready, lease and dead indexes. Each change wrote a new entry into every index of executor_jobs, so every
--     index grew by three entries per job and autovacuum had to scan all of them, in full, to remove the dead
--     ones. On 2 cores that vacuum ran without pause, its cost growing with the history kept in the table, and
--     claim throughput halved within two minutes (measured with `harness bench --soak-minutes`; with
--     autovacuum off it held, until the dead entries piled up in front of every claim's index scan).
--   * Now no index of executor_jobs covers a column that changes after the insert, so claims, completions,
--     retries and deaths are HOT updates (fillfactor leaves them room): the indexes get one entry per job and
--     nothing to vacuum. The churn moved to executor_job_queue, whose size is the backlog, not the history,
--     so vacuuming it is cheap however long the pipeline runs.
-- The queue is kept by statement-level triggers on executor_jobs (insert, update, delete, truncate; fired even
-- for session_replication_role = replica), so every writer keeps it right: the pipeline's functions, the
-- guard's redirects, an operator's UPDATE. A row: ready (claimable from due_at), leased (its lease ends at
-- due_at), or dead (died at due_at; kept so dead jobs are counted without reading the history). Succeeded
-- jobs leave it.
-- Locking order: claims and reaps lock a queue row and its job together, SKIP LOCKED, so they never wait;
-- every other writer locks the job row first and reaches the queue row through the trigger. No cycle.

CREATE TYPE job_queue_state AS ENUM ('ready', 'leased', 'dead');

CREATE TABLE executor_job_queue (
    job_id  bigint PRIMARY KEY,
    kind    text NOT NULL,
    state   job_queue_state NOT NULL,
    due_at  timestamptz NOT NULL
);
CREATE INDEX executor_job_queue_ready_idx ON executor_job_queue (kind, due_at, job_id) WHERE state = 'ready';
CREATE INDEX executor_job_queue_leased_idx ON executor_job_queue (kind, due_at) WHERE state = 'leased';
CREATE INDEX executor_job_queue_dead_idx ON executor_job_queue (due_at) WHERE state = 'dead';

-- Small and churning: vacuum it on little churn (cheap, it holds only the backlog).
ALTER TABLE executor_job_queue SET (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_insert_scale_factor = 0.0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);
GRANT SELECT ON executor_job_queue TO pipeline_decider, pipeline_executor, pipeline_scheduler, pipeline_monitor,
                                       pipeline_reader;

-- executor_jobs: only never-changing columns stay indexed; room on each page for its rows' new versions; and
-- the aggressive vacuum settings of 0006 go (HOT pruning now reclaims old versions on the page itself).
DROP INDEX executor_jobs_ready_idx;
DROP INDEX executor_jobs_lease_idx;
DROP INDEX executor_jobs_dead_idx;
ALTER TABLE executor_jobs SET (fillfactor = 60);
ALTER TABLE executor_jobs RESET (vacuum_index_cleanup, autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
                                 autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold,
                                 autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay);

-- == Keeping the queue ========================================================================================
-- Where a job with this status stands in the queue, and the time that state is about. (SQL functions: they are
-- inlined into the statements that use them, so a row pays no call. The first is STABLE, not IMMUTABLE,
-- because reading an enum label is: Postgres inlines a function only if its body is no more volatile.)
CREATE FUNCTION job_queue_state_for(p_status text)
RETURNS job_queue_state
LANGUAGE sql STABLE
AS $$ SELECT (CASE p_status WHEN 'running' THEN 'leased' WHEN 'dead' THEN 'dead' ELSE 'ready' END)::job_queue_state $$;

CREATE FUNCTION job_queue_due_at_for(
    p_status text, p_run_at timestamptz, p_lease_expires_at timestamptz, p_finished_at timestamptz,
    p_updated_at timestamptz
)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_status WHEN 'running' THEN coalesce(p_lease_expires_at, p_run_at)
                         WHEN 'dead' THEN coalesce(p_finished_at, p_updated_at)
                         ELSE p_run_at END
$$;

CREATE FUNCTION executor_job_queue_sync()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE executor_job_queue;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM executor_job_queue q USING old_jobs o WHERE q.job_id = o.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM executor_job_queue q USING new_jobs n WHERE q.job_id = n.id AND n.status = 'succeeded';
    END IF;
    INSERT INTO executor_job_queue AS q (job_id, kind, state, due_at)
    SELECT n.id, n.kind, job_queue_state_for(n.status),
           job_queue_due_at_for(n.status, n.run_at, n.lease_expires_at, n.finished_at, n.updated_at)
      FROM new_jobs n
     WHERE n.status <> 'succeeded'
    ON CONFLICT (job_id) DO UPDATE SET state = EXCLUDED.state, due_at = EXCLUDED.due_at
     WHERE (q.state, q.due_at) IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.due_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER executor_job_queue_on_insert
    AFTER INSERT ON executor_jobs REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();
CREATE TRIGGER executor_job_queue_on_update
    AFTER UPDATE ON executor_jobs REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();
CREATE TRIGGER executor_job_queue_on_delete
    AFTER DELETE ON executor_jobs REFERENCING OLD TABLE AS old_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();
CREATE TRIGGER executor_job_queue_on_truncate
    AFTER TRUNCATE ON executor_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_insert;
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_update;
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_delete;
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_truncate;
REVOKE EXECUTE ON FUNCTION executor_job_queue_sync() FROM PUBLIC;

-- The jobs already there (a database migrated with work under way).
INSERT INTO executor_job_queue (job_id, kind, state, due_at)
SELECT j.id, j.kind, job_queue_state_for(j.status),
       job_queue_due_at_for(j.status, j.run_at, j.lease_expires_at, j.finished_at, j.updated_at)
  FROM executor_jobs j
 WHERE j.status <> 'succeeded';

-- == Claims read the queue =====================================================================================
-- As in 0004, but the ready and expired jobs are found in the queue, and the probe for expired leases reads
-- the earliest lease of the kind: the only sensible plan for it, generic or not. The old probe, EXISTS
-- (running jobs of this kind whose lease ended before $now), was planned generically after five calls, and
-- the generic plan of an EXISTS believes a third of the table matches: it chose a sequential scan to find the
-- first match, and when nothing matched (the normal case) every claim read the whole of executor_jobs.
CREATE OR REPLACE FUNCTION claim_jobs_of_kind(
    p_kind          text,
    p_worker        text,
    p_limit         int DEFAULT 1,
    p_lease_seconds double precision DEFAULT NULL,
    p_now           timestamptz DEFAULT NULL
)
RETURNS TABLE (
    job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt int,
    max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamptz
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := coalesce(p_now, clock_timestamp());
    v_lease    interval := make_interval(secs => coalesce(p_lease_seconds,
                                                          pipeline_setting('lease_seconds', '30')::double precision));
    v_earliest timestamptz;
BEGIN
    SELECT q.due_at INTO v_earliest
      FROM executor_job_queue q
     WHERE q.state = 'leased' AND q.kind = p_kind
     ORDER BY q.due_at
     LIMIT 1;
    IF v_earliest < v_now THEN
        PERFORM reap_expired_leases(p_kind, v_now);
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT q.job_id FROM executor_job_queue q JOIN executor_jobs j ON j.id = q.job_id
         WHERE q.kind = p_kind AND q.state = 'ready' AND q.due_at <= v_now
           AND j.status IN ('queued', 'retrying')
         ORDER BY q.due_at, q.job_id
         LIMIT p_limit
         FOR UPDATE OF q, j SKIP LOCKED
    ), claimed AS (
        UPDATE executor_jobs j
           SET status = 'running', attempts = j.attempts + 1, lease_owner = p_worker,
               lease_expires_at = v_now + v_lease, updated_at = v_now
          FROM picked
         WHERE j.id = picked.job_id
     RETURNING j.*
    ), runs AS (
        INSERT INTO executor_job_runs (job_id, attempt, worker, started_at, correlation_id, trace_id)
        SELECT c.id, c.attempts, p_worker, v_now, c.correlation_id, c.trace_id FROM claimed c
        RETURNING executor_job_runs.id AS run_id, executor_job_runs.job_id AS run_job_id
    )
    SELECT c.id, r.run_id, c.job_type, c.kind, c.entity_id, c.payload, c.attempts, c.max_attempts,
           c.source_event_id, c.correlation_id, c.trace_id, c.lease_expires_at
      FROM claimed c JOIN runs r ON r.run_job_id = c.id
     ORDER BY c.run_at, c.id;
END
$$;

-- As in 0004, with the expired leases found in the queue and the runs found by job.
CREATE OR REPLACE FUNCTION reap_expired_leases(p_kind text, p_now timestamptz DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_job   executor_jobs%ROWTYPE;
    v_count int := 0;
BEGIN
    FOR v_job IN
        SELECT j.* FROM executor_job_queue q JOIN executor_jobs j ON j.id = q.job_id
         WHERE q.state = 'leased' AND q.kind = p_kind AND q.due_at < v_now AND j.status = 'running'
         ORDER BY q.due_at
         FOR UPDATE OF q, j SKIP LOCKED
    LOOP
        -- The job's runs by their job index, in a subquery kept whole (see lock_job_for_run in 0011).
        UPDATE executor_job_runs r
           SET finished_at = v_now, outcome = 'lease_expired',
               error = format('lease of %s expired at %s', v_job.lease_owner, v_job.lease_expires_at)
         WHERE r.id IN (SELECT x.id FROM executor_job_runs x WHERE x.job_id = v_job.id OFFSET 0)
           AND r.finished_at IS NULL;
        IF v_job.attempts >= v_job.max_attempts THEN
            PERFORM mark_job_dead(v_job, format('lease expired on the last attempt (%s of %s)',
                                                v_job.attempts, v_job.max_attempts), v_now);
        ELSE
            UPDATE executor_jobs j
               SET status = 'retrying', run_at = v_now, lease_owner = NULL, lease_expires_at = NULL,
                   last_error = 'lease expired', updated_at = v_now
             WHERE j.id = v_job.id;
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- == Readers of the open jobs read the queue ===================================================================
-- As in 0010, with the backlog and dead-job series read from the queue instead of scanning executor_jobs.
CREATE OR REPLACE FUNCTION alert_rule_values(p_now timestamptz DEFAULT NULL)
RETURNS TABLE (rule text, labels jsonb, value double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_stale interval := make_interval(secs => pipeline_setting('heartbeat_stale_s', '60')::double precision);
BEGIN
    RETURN QUERY SELECT 'core_trigger_disabled'::text, '{}'::jsonb, core_trigger_enabled()::double precision;
    RETURN QUERY SELECT 'event_to_job_gap_breached'::text, '{}'::jsonb, count(*)::double precision
                   FROM event_to_job_gaps(NULL, v_now) g WHERE g.status = 'breached';
    RETURN QUERY SELECT 'backlog_ready_jobs'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_queue q WHERE q.state = 'ready' AND q.due_at <= v_now;
    RETURN QUERY SELECT 'backlog_oldest_age'::text, '{}'::jsonb,
                        coalesce(extract(epoch FROM v_now - min(q.due_at)), 0)::double precision
                   FROM executor_job_queue q WHERE q.state = 'ready' AND q.due_at <= v_now;
    RETURN QUERY SELECT 'retry_storm'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_runs r
                  WHERE r.outcome IN ('failed', 'lease_expired') AND r.finished_at <= v_now
                    AND r.finished_at > v_now - make_interval(secs => alert_setting('retry_storm', 'window_s', 300));
    RETURN QUERY SELECT 'dead_jobs'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_queue q
                  WHERE q.state = 'dead' AND q.due_at <= v_now
                    AND q.due_at > v_now - make_interval(secs => alert_setting('dead_jobs', 'window_s', 900));
    RETURN QUERY SELECT 'compat_warnings_present'::text, '{}'::jsonb, count(*)::double precision
                   FROM compat_warnings w
                  WHERE w.at <= v_now
                    AND w.at > v_now - make_interval(secs => alert_setting('compat_warnings_present', 'window_s', 3600));
    RETURN QUERY SELECT 'worker_role_absent'::text, jsonb_build_object('role', r.role),
                        (SELECT count(*) FROM worker_heartbeats h
                          WHERE h.role = r.role AND h.last_seen > v_now - v_stale)::double precision
                   FROM unnest(string_to_array(pipeline_setting('monitor_expected_roles',
                                                                'fase1-executor,orchestrator,scheduler'), ',')) r (role)
                  WHERE btrim(r.role) <> '';
END
$$;

-- As in 0010, from the queue (and each open job's status, by primary key).
CREATE OR REPLACE VIEW dashboard_backlog AS
SELECT k.kind,
       count(q.job_id) FILTER (WHERE q.state = 'ready' AND q.due_at <= clock_timestamp()) AS ready,
       coalesce(extract(epoch FROM clock_timestamp() - min(q.due_at)
                FILTER (WHERE q.state = 'ready' AND q.due_at <= clock_timestamp())), 0) AS oldest_ready_age_s,
       count(q.job_id) FILTER (WHERE j.status = 'queued') AS queued,
       count(q.job_id) FILTER (WHERE j.status = 'retrying') AS retrying,
       count(q.job_id) FILTER (WHERE j.status = 'running') AS running,
       count(q.job_id) FILTER (WHERE q.state = 'leased' AND q.due_at < clock_timestamp()) AS expired_leases,
       count(q.job_id) FILTER (WHERE q.state = 'dead') AS dead
  FROM (VALUES ('decision'), ('execution')) k (kind)
  LEFT JOIN executor_job_queue q ON q.kind = k.kind
  LEFT JOIN executor_jobs j ON j.id = q.job_id
 GROUP BY k.kind
 ORDER BY k.kind;
