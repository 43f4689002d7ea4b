-- class: core
-- Claims, completion, failure and release. Every function that depends on time takes an optional p_now, so
-- lease expiry and backoff are tested without waiting.

-- Closes the runs of jobs whose lease expired and makes the jobs claimable again (or dead, with their
-- job.<type>.failed event, when the expired attempt was the last). A crashed worker's job is never lost.
CREATE FUNCTION reap_expired_leases(p_kind text, p_now timestamptz DEFAULT NULL)
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
        SELECT * FROM executor_jobs j
         WHERE j.status = 'running' AND j.lease_expires_at < v_now AND j.kind = p_kind
         ORDER BY j.lease_expires_at
         FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE executor_job_runs r
           SET finished_at = v_now, outcome = 'lease_expired',
               error = format('lease of %s expired at %s', v_job.lease_owner, v_job.lease_expires_at)
         WHERE r.job_id = v_job.id AND r.finished_at IS NULL;
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

-- Dead is final: the job's outcome is told as a canonical job.<type>.failed event (execution jobs only).
CREATE FUNCTION mark_job_dead(p_job executor_jobs, p_reason text, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE executor_jobs j
       SET status = 'dead', finished_at = p_now, lease_owner = NULL, lease_expires_at = NULL,
           last_error = p_reason, updated_at = p_now
     WHERE j.id = p_job.id;
    IF p_job.kind = 'execution' THEN
        PERFORM append_event(p_job.entity_id, 'job.' || p_job.job_type || '.failed',
                             jsonb_build_object('job_id', p_job.id, 'reason', p_reason, 'attempts', p_job.attempts),
                             p_job.correlation_id, p_job.trace_id, p_job.source_event_id,
                             result_event_id_for(p_job.id, 'failed'));
    END IF;
END
$$;

-- The canonical result event of a job has an id derived from the job, so it can be appended once only.
CREATE FUNCTION result_event_id_for(p_job_id bigint, p_outcome text)
RETURNS uuid
LANGUAGE sql IMMUTABLE
AS $$ SELECT md5('executor_job:' || p_job_id || ':' || p_outcome)::uuid $$;

-- The one claim implementation; the two public claim functions below pin its kind. Takes up to p_limit ready
-- jobs of that kind (FOR UPDATE SKIP LOCKED, so concurrent claimers never take the same job), leases them,
-- counts the attempt and opens a run row for each.
CREATE FUNCTION claim_jobs_of_kind(
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
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_lease interval := make_interval(secs => coalesce(p_lease_seconds,
                                                       pipeline_setting('lease_seconds', '30')::double precision));
BEGIN
    IF EXISTS (SELECT 1 FROM executor_jobs j
                WHERE j.status = 'running' AND j.lease_expires_at < v_now AND j.kind = p_kind) THEN
        PERFORM reap_expired_leases(p_kind, v_now);
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT j.id FROM executor_jobs j
         WHERE j.kind = p_kind AND j.status IN ('queued', 'retrying') AND j.run_at <= v_now
         ORDER BY j.run_at, j.id
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE executor_jobs j
           SET status = 'running', attempts = j.attempts + 1, lease_owner = p_worker,
               lease_expires_at = v_now + v_lease, updated_at = v_now
          FROM picked
         WHERE j.id = picked.id
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

-- Decision jobs only: the fase1-executor's claim.
CREATE FUNCTION claim_initial_decision_jobs(
    p_worker text, p_limit int DEFAULT 1, p_lease_seconds double precision DEFAULT NULL,
    p_now timestamptz DEFAULT NULL
)
RETURNS TABLE (
    job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt int,
    max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamptz
)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM claim_jobs_of_kind('decision', p_worker, p_limit, p_lease_seconds, p_now) $$;

-- Execution jobs only: the orchestrator's claim.
CREATE FUNCTION claim_orchestrator_jobs(
    p_worker text, p_limit int DEFAULT 1, p_lease_seconds double precision DEFAULT NULL,
    p_now timestamptz DEFAULT NULL
)
RETURNS TABLE (
    job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt int,
    max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamptz
)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM claim_jobs_of_kind('execution', p_worker, p_limit, p_lease_seconds, p_now) $$;

-- Locks a job for a finishing call and says whether p_run_id still holds it. A worker whose lease expired and
-- whose job was re-claimed is fenced off: its late completion or failure changes nothing.
CREATE FUNCTION lock_job_for_run(p_job_id bigint, p_run_id bigint)
RETURNS executor_jobs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_job executor_jobs%ROWTYPE;
BEGIN
    -- One statement: every completion, failure and release passes through this fence.
    SELECT j.* INTO v_job
      FROM executor_jobs j
      JOIN executor_job_runs r ON r.id = p_run_id AND r.job_id = j.id AND r.finished_at IS NULL
     WHERE j.id = p_job_id AND j.status = 'running'
       FOR UPDATE OF j;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN v_job;
END
$$;

-- Completes a job and its run in the caller's transaction. For an execution job it appends the canonical
-- job.<type>.completed event (its id derived from the job, so never twice). Returns the result event id, or
-- NULL when the run no longer holds the job (fenced off).
CREATE FUNCTION complete_job(
    p_job_id bigint, p_run_id bigint, p_result jsonb DEFAULT '{}'::jsonb,
    p_result_event_id uuid DEFAULT NULL, p_now timestamptz DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_job   executor_jobs%ROWTYPE;
    v_event uuid := p_result_event_id;
BEGIN
    v_job := lock_job_for_run(p_job_id, p_run_id);
    IF v_job.id IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_job.kind = 'execution' THEN
        v_event := result_event_id_for(v_job.id, 'completed');
        PERFORM append_event(v_job.entity_id, 'job.' || v_job.job_type || '.completed',
                             coalesce(p_result, '{}'::jsonb) || jsonb_build_object('job_id', v_job.id),
                             v_job.correlation_id, v_job.trace_id, v_job.source_event_id, v_event);
    END IF;
    UPDATE executor_job_runs r
       SET finished_at = v_now, outcome = 'succeeded', result_event_id = v_event
     WHERE r.id = p_run_id;
    UPDATE executor_jobs j
       SET status = 'succeeded', finished_at = v_now, lease_owner = NULL, lease_expires_at = NULL,
           last_error = NULL, updated_at = v_now
     WHERE j.id = p_job_id;
    RETURN coalesce(v_event, '00000000-0000-0000-0000-000000000000'::uuid);
END
$$;

-- Fails a run. A retryable failure before the last attempt schedules a retry with exponential backoff and
-- equal jitter (half fixed, half random, so retries of a burst spread out); otherwise the job is dead.
-- Returns the job's new status, or NULL when the run no longer holds the job.
CREATE FUNCTION fail_job(
    p_job_id bigint, p_run_id bigint, p_error text, p_retryable boolean DEFAULT true,
    p_now timestamptz DEFAULT NULL
)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_job   executor_jobs%ROWTYPE;
    v_delay double precision;
BEGIN
    v_job := lock_job_for_run(p_job_id, p_run_id);
    IF v_job.id IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE executor_job_runs r SET finished_at = v_now, outcome = 'failed', error = p_error WHERE r.id = p_run_id;
    IF p_retryable AND v_job.attempts < v_job.max_attempts THEN
        v_delay := least(pipeline_setting('retry_cap_ms', '60000')::double precision,
                         pipeline_setting('retry_base_ms', '500')::double precision * 2 ^ (v_job.attempts - 1));
        v_delay := v_delay / 2 + random() * v_delay / 2;
        UPDATE executor_jobs j
           SET status = 'retrying', run_at = v_now + make_interval(secs => v_delay / 1000.0),
               lease_owner = NULL, lease_expires_at = NULL, last_error = p_error, updated_at = v_now
         WHERE j.id = p_job_id;
        RETURN 'retrying';
    END IF;
    PERFORM mark_job_dead(v_job, p_error, v_now);
    RETURN 'dead';
END
$$;

-- Gives a claimed job back without counting the attempt (a worker told to stop before it started the work).
CREATE FUNCTION release_job(p_job_id bigint, p_run_id bigint, p_now timestamptz DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_job executor_jobs%ROWTYPE;
BEGIN
    v_job := lock_job_for_run(p_job_id, p_run_id);
    IF v_job.id IS NULL THEN
        RETURN false;
    END IF;
    UPDATE executor_job_runs r SET finished_at = v_now, outcome = 'released' WHERE r.id = p_run_id;
    UPDATE executor_jobs j
       SET status = 'queued', attempts = greatest(j.attempts - 1, 0), run_at = v_now, lease_owner = NULL,
           lease_expires_at = NULL, updated_at = v_now
     WHERE j.id = p_job_id;
    RETURN true;
END
$$;

-- Worker liveness, read by the monitor ("a role with no live worker").
CREATE FUNCTION worker_heartbeat(p_worker_id text, p_role text, p_pid int, p_host text, p_jobs_done bigint)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    INSERT INTO worker_heartbeats AS h (worker_id, role, pid, host, jobs_done)
    VALUES (p_worker_id, p_role, p_pid, p_host, p_jobs_done)
    ON CONFLICT (worker_id) DO UPDATE SET last_seen = clock_timestamp(), jobs_done = EXCLUDED.jobs_done
$$;

-- Failpoints armed at run time. Workers reload them when notified.
CREATE FUNCTION arm_failpoint(p_name text, p_action text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    INSERT INTO failpoints AS f (name, action) VALUES (p_name, p_action)
    ON CONFLICT (name) DO UPDATE SET action = EXCLUDED.action, hits = 0, armed_at = clock_timestamp();
    SELECT pg_notify('pipeline_failpoints', p_name);
$$;

CREATE FUNCTION disarm_failpoint(p_name text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    DELETE FROM failpoints WHERE name = p_name;
    SELECT pg_notify('pipeline_failpoints', p_name);
$$;

-- Counts a hit and returns the count, so "fire N times" holds across worker restarts. A failpoint armed by
-- environment at worker start is recorded on its first hit.
CREATE FUNCTION failpoint_hit(p_name text, p_action text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    INSERT INTO failpoints AS f (name, action, hits, last_hit_at)
    VALUES (p_name, coalesce(p_action, 'unknown'), 1, clock_timestamp())
    ON CONFLICT (name) DO UPDATE SET hits = f.hits + 1, last_hit_at = clock_timestamp()
    RETURNING hits
$$;

-- The decision worker reads an entity's events under a row lock held until its transaction ends, so two
-- decisions for one entity never interleave (the second sees what the first appended). A function, so the
-- decider role needs no UPDATE privilege on the table.
CREATE FUNCTION lock_entity_events(p_entity_id uuid)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_events jsonb;
BEGIN
    SELECT e.events INTO v_events FROM document_entities e WHERE e.id = p_entity_id FOR UPDATE;
    RETURN v_events;
END
$$;
