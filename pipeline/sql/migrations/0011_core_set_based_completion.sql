-- class: core
-- The hot path, set-based. Measured on 2 cores (PG 18, `harness bench`): a job's canonical step cost ~640 us
-- of server time, and almost none of it was logic. It was per-statement overhead: each DML statement pays
-- executor start-up, its CHECK constraints re-read from the catalog's node strings (~20 us per statement on a
-- table with CHECKs, whatever their number), a foreign-key probe per row, and index upkeep. A batch of ten
-- completions ran forty such statements. Here a batch is completed by one call that writes each table once,
-- so those costs are paid per batch, not per job:
--   complete_jobs(job_ids[], run_ids[], results[], result_event_ids[])  fences every run, finishes the jobs
--     and their runs, and appends every canonical `job.<type>.completed` event of the batch, one UPDATE per
--     table; the core trigger still sees each appended event and materializes the next job through the
--     gateway. complete_job() is now that call with one element.
-- Also here:
--   * the fence checks the job's attempt against the run's: a finishing call that waited for the row lock
--     while the job was reaped and re-claimed re-reads the job row (EvalPlanQual) and sees the newer attempt,
--     so it is fenced off; the run row alone was read from the statement's snapshot and could not tell;
--   * no foreign keys on the queue: executor_jobs.job_type is checked by the gateway against job_types (and
--     by the guard for any other insert), and runs are inserted only by the claim, next to their locked job.
--     Each key cost a probe query per row, and the job_types one took a KEY SHARE lock on one hot row per
--     insert, which concurrent inserters turn into multixacts;
--   * fillfactor on the tables whose rows are rewritten in place (events appended, runs finished, the
--     projection updated) so those updates stay HOT: no index entries for the new version;
--   * the guard's WHEN clause skips the trigger call altogether for the gateway's own inserts;
--   * the user_documents projection runs once per statement, not once per appended row.

ALTER TABLE executor_jobs DROP CONSTRAINT IF EXISTS executor_jobs_job_type_fkey;
ALTER TABLE executor_job_runs DROP CONSTRAINT IF EXISTS executor_job_runs_job_id_fkey;

ALTER TABLE document_entities SET (fillfactor = 70);
ALTER TABLE executor_job_runs SET (fillfactor = 80);
ALTER TABLE user_documents SET (fillfactor = 70);

DROP TRIGGER executor_jobs_gateway_guard ON executor_jobs;
CREATE TRIGGER executor_jobs_gateway_guard
    BEFORE INSERT ON executor_jobs
    FOR EACH ROW WHEN (current_setting('pipeline.via_gateway', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION executor_jobs_gateway_guard();

-- The fence of every finishing call (complete, fail, release): the job, locked, when p_run_id still holds it.
-- Both rows are looked up by primary key only, whatever the statistics say. The run is read in a subquery the
-- planner cannot flatten or push the open-run test into: otherwise "finished_at IS NULL" invites the BRIN
-- index on finished_at, whose ranges all claim to hold NULLs (a run is summarized while it is still open), and
-- a completion read tens of thousands of runs (measured: 13 ms per batch after two minutes under load).
CREATE OR REPLACE FUNCTION lock_job_for_run(p_job_id bigint, p_run_id bigint)
RETURNS executor_jobs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_job executor_jobs%ROWTYPE;
BEGIN
    SELECT j.* INTO v_job
      FROM (SELECT r.job_id, r.attempt, r.finished_at FROM executor_job_runs r WHERE r.id = p_run_id OFFSET 0) r
      JOIN executor_jobs j ON j.id = r.job_id
     WHERE j.id = p_job_id AND r.finished_at IS NULL AND j.status = 'running' AND j.attempts = r.attempt
       FOR UPDATE OF j;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN v_job;
END
$$;

-- Completes a batch of (job, run) pairs in the caller's transaction. For each pair whose run still holds its
-- job: the run and the job are finished, and an execution job's canonical job.<type>.completed event is
-- appended to its entity (id derived from the job, payload = its result plus job_id). A decision job
-- appends nothing; its run records p_result_event_ids[i] (the first event the decision appended). Returns
-- one row per completed pair; a pair whose run was fenced off (lease expired, re-claimed) is absent.
CREATE FUNCTION complete_jobs(
    p_job_ids          bigint[],
    p_run_ids          bigint[],
    p_results          jsonb[] DEFAULT NULL,
    p_result_event_ids uuid[] DEFAULT NULL,
    p_now              timestamptz DEFAULT NULL
)
RETURNS TABLE (job_id bigint, run_id bigint, result_event_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    IF cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_run_ids) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('complete_jobs got %s job ids and %s run ids; they must pair up',
                             coalesce(cardinality(p_job_ids), 0), coalesce(cardinality(p_run_ids), 0)),
            HINT = 'pass the job_id and run_id of each claimed row, in the same order';
    END IF;
    -- Entities first, in id order, so two workers completing jobs of the same entities never deadlock.
    PERFORM 1 FROM document_entities e
     WHERE e.id IN (SELECT j.entity_id FROM executor_jobs j WHERE j.id = ANY (p_job_ids) AND j.kind = 'execution')
     ORDER BY e.id
       FOR UPDATE OF e;
    RETURN QUERY
    WITH input AS (
        SELECT u.job_id, u.run_id, coalesce(u.result, '{}'::jsonb) AS result, u.event_id
          FROM unnest(p_job_ids, p_run_ids, p_results, p_result_event_ids) AS u (job_id, run_id, result, event_id)
    ), held AS (
        -- Each run by primary key, in a subquery the planner keeps whole (see lock_job_for_run).
        SELECT i.job_id, i.run_id, i.result, i.event_id, r.attempt
          FROM input i
         CROSS JOIN LATERAL (SELECT x.job_id, x.attempt, x.finished_at FROM executor_job_runs x
                              WHERE x.id = i.run_id OFFSET 0) r
         WHERE r.job_id = i.job_id AND r.finished_at IS NULL
    ), done AS (
        UPDATE executor_jobs j
           SET status = 'succeeded', finished_at = v_now, lease_owner = NULL, lease_expires_at = NULL,
               last_error = NULL, updated_at = v_now
          FROM held i
         WHERE j.id = i.job_id AND j.status = 'running' AND j.attempts = i.attempt
     RETURNING j.id, j.kind, j.job_type, j.entity_id, j.correlation_id, j.trace_id, j.source_event_id,
               i.run_id, i.result,
               CASE WHEN j.kind = 'execution' THEN result_event_id_for(j.id, 'completed') ELSE i.event_id END
                   AS event_id
    ), runs AS (
        UPDATE executor_job_runs r
           SET finished_at = v_now, outcome = 'succeeded', result_event_id = d.event_id
          FROM done d
         WHERE r.id = d.run_id
    ), appended AS (
        UPDATE document_entities e
           SET events = e.events || n.events, updated_at = v_now
          FROM (SELECT d.entity_id,
                       jsonb_agg(jsonb_build_object(
                           'id', d.event_id, 'type', 'job.' || d.job_type || '.completed', 'at', v_now,
                           'correlation_id', d.correlation_id, 'trace_id', coalesce(d.trace_id, new_trace_id()),
                           'causation_id', d.source_event_id,
                           'payload', d.result || jsonb_build_object('job_id', d.id)) ORDER BY d.id) AS events
                  FROM done d
                 WHERE d.kind = 'execution'
                 GROUP BY d.entity_id) n
         WHERE e.id = n.entity_id
    )
    SELECT d.id, d.run_id, coalesce(d.event_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM done d;
END
$$;

-- One completion: complete_jobs with one pair. The result event id, or NULL when the run was fenced off.
CREATE OR REPLACE FUNCTION complete_job(
    p_job_id bigint, p_run_id bigint, p_result jsonb DEFAULT '{}'::jsonb,
    p_result_event_id uuid DEFAULT NULL, p_now timestamptz DEFAULT NULL
)
RETURNS uuid
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT c.result_event_id
      FROM complete_jobs(ARRAY[p_job_id], ARRAY[p_run_id], ARRAY[p_result], ARRAY[p_result_event_id], p_now) c
$$;

REVOKE EXECUTE ON FUNCTION complete_jobs(bigint[], bigint[], jsonb[], uuid[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION complete_jobs(bigint[], bigint[], jsonb[], uuid[], timestamptz)
    TO pipeline_decider, pipeline_executor;

-- == The projection, per statement ===========================================================================
-- The user_documents projection (0005) ran once per appended row, each run a subtransaction and an upsert;
-- a completion of ten jobs paid that ten times. It now runs once per statement over the rows the statement
-- wrote (a transition table), still best-effort: any error becomes a WARNING and the append goes on. Two
-- triggers, because a trigger with a transition table fires for one kind of statement only; the one that
-- matters is project_user_documents (appends are UPDATEs), the insert one serves writers that create an
-- entity with its events.
CREATE FUNCTION project_user_documents_set()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    BEGIN
        INSERT INTO user_documents AS u (id, owner_id, status, last_event_type, last_event_at, content_sha256,
                                         tsa_serial, anchor_height)
        SELECT n.id, n.owner_id,
               CASE l.type WHEN 'document.protect.requested' THEN 'protecting' WHEN 'document.anchored' THEN 'anchored'
                           WHEN 'document.failed' THEN 'failed' ELSE 'new' END,
               l.type, (l.event ->> 'at')::timestamptz,
               CASE WHEN l.type = 'job.protect.completed' THEN l.event #>> '{payload,sha256}' END,
               CASE WHEN l.type = 'job.tsa.completed' THEN l.event #>> '{payload,token,serial}' END,
               CASE WHEN l.type = 'job.anchor.completed' THEN (l.event #>> '{payload,receipt,height}')::bigint END
          FROM new_entities n
         CROSS JOIN LATERAL (SELECT n.events -> -1 AS event, n.events -> -1 ->> 'type' AS type) l
         WHERE l.event IS NOT NULL
        ON CONFLICT (id) DO UPDATE
           SET status = CASE WHEN EXCLUDED.status = 'new' THEN u.status ELSE EXCLUDED.status END,
               last_event_type = EXCLUDED.last_event_type, last_event_at = EXCLUDED.last_event_at,
               content_sha256 = coalesce(EXCLUDED.content_sha256, u.content_sha256),
               tsa_serial = coalesce(EXCLUDED.tsa_serial, u.tsa_serial),
               anchor_height = coalesce(EXCLUDED.anchor_height, u.anchor_height),
               updated_at = clock_timestamp();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'user_documents projection skipped for % entities: % (%)',
            (SELECT count(*) FROM new_entities), SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

DROP TRIGGER project_user_documents ON document_entities;
DROP FUNCTION project_user_documents();
CREATE TRIGGER project_user_documents
    AFTER UPDATE ON document_entities REFERENCING NEW TABLE AS new_entities
    FOR EACH STATEMENT EXECUTE FUNCTION project_user_documents_set();
CREATE TRIGGER project_user_documents_on_insert
    AFTER INSERT ON document_entities REFERENCING NEW TABLE AS new_entities
    FOR EACH STATEMENT EXECUTE FUNCTION project_user_documents_set();
