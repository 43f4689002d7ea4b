-- The single entry point into executor_jobs (enqueue_from_event), the core trigger that feeds it from
-- appended events, the request entry point, the claims of each role and how a job is settled.
--
-- NOTE: this first gateway names its local variable `dedupe_key`, like the column: PL/pgSQL cannot tell
-- which one `ON CONFLICT (dedupe_key)` means and every call fails with 42702 (the RFC's blocking "dedupe
-- key ambiguo"). 0005 carries the fix; migrations are append-only, so the bug stays here as history.

-- Which job an event asks for: a request and an execution outcome ask for a decision; job.<t>.required
-- asks for a job of type t (the whitelist's foreign key refuses any other type).
CREATE FUNCTION job_for_event(p_type text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_type ~ '^document\.[a-z0-9_]+\.requested$' THEN 'decide'
        WHEN p_type ~ '^job\.[a-z0-9_]+\.required$' THEN split_part(p_type, '.', 2)
        WHEN p_type ~ '^job\.[a-z0-9_]+\.(completed|failed)$'
             AND EXISTS (SELECT 1 FROM job_types t WHERE t.name = split_part(p_type, '.', 2) AND t.kind = 'execution')
            THEN 'decide'
    END
$$;

CREATE FUNCTION enqueue_from_event(p_entity_id uuid, p_job_type text, p_event jsonb, p_via text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dedupe_key text := p_entity_id::text || ':' || p_job_type || ':' || (p_event ->> 'id');
    v_id bigint;
BEGIN
    PERFORM set_config('pipeline.via_gateway', 'on', true);
    INSERT INTO executor_jobs (job_type, entity_id, dedupe_key, source_event_id, payload, max_attempts,
                               correlation_id, trace_id, materialized_via)
    VALUES (p_job_type, p_entity_id, dedupe_key, (p_event ->> 'id')::uuid, coalesce(p_event -> 'payload', '{}'),
            (SELECT c.max_attempts FROM config c), p_event ->> 'correlation_id', p_event ->> 'trace_id', p_via)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id INTO v_id;
    PERFORM set_config('pipeline.via_gateway', '', true);
    IF v_id IS NULL THEN
        SELECT j.id INTO v_id FROM executor_jobs j WHERE j.dedupe_key = dedupe_key;
    ELSE
        PERFORM pg_notify((SELECT t.kind FROM job_types t WHERE t.name = p_job_type) || '_jobs', '');
    END IF;
    RETURN v_id;
END $$;

-- The core trigger: every event appended (positions past the old array's end) that asks for a job goes
-- through the gateway, in the appending transaction. A required event carrying the compat marker was
-- written by the gateway guard for a legacy insert (0004): its job says so.
CREATE FUNCTION materialize_appended_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_from integer := 0;
    v_event jsonb;
    v_job_type text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        v_from := jsonb_array_length(OLD.events);
    END IF;
    FOR v_event IN
        SELECT x.e FROM jsonb_array_elements(NEW.events) WITH ORDINALITY AS x (e, n) WHERE x.n > v_from ORDER BY x.n
    LOOP
        v_job_type := job_for_event(v_event ->> 'type');
        IF v_job_type IS NOT NULL THEN
            PERFORM enqueue_from_event(NEW.id, v_job_type, v_event,
                CASE WHEN v_event -> 'payload' ? 'legacy_redirect' THEN 'legacy-redirect' ELSE 'trigger' END);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER on_document_entity_events_change AFTER INSERT OR UPDATE OF events ON document_entities
    FOR EACH ROW EXECUTE FUNCTION materialize_appended_events();

-- Appends events to an entity, each stamped with the time of the append.
CREATE FUNCTION append_events(p_entity_id uuid, p_events jsonb) RETURNS void
LANGUAGE sql AS $$
    UPDATE document_entities
       SET events = events || (SELECT coalesce(jsonb_agg(e || jsonb_build_object('at', clock_timestamp()) ORDER BY n), '[]')
                                 FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x (e, n))
     WHERE id = p_entity_id
$$;

-- The request entry point: store the entity if new, then append document.protect.requested. Asking again
-- with the same event id changes nothing; a new id on a known entity is a second request for the same
-- document (the decision worker recognises it and starts nothing).
CREATE FUNCTION submit_document(p_entity_id uuid, p_document text, p_event_id uuid DEFAULT NULL,
                                p_owner text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_event_id uuid := coalesce(p_event_id, gen_random_uuid());
    v_events jsonb;
BEGIN
    INSERT INTO document_entities (id, owner_id) VALUES (p_entity_id, p_owner) ON CONFLICT (id) DO NOTHING;
    SELECT events INTO v_events FROM document_entities WHERE id = p_entity_id FOR UPDATE;
    IF v_events @> jsonb_build_array(jsonb_build_object('id', v_event_id::text)) THEN
        RETURN v_event_id;
    END IF;
    PERFORM append_events(p_entity_id, jsonb_build_array(jsonb_build_object(
        'id', v_event_id::text, 'type', 'document.protect.requested',
        'correlation_id', gen_random_uuid()::text, 'trace_id', replace(gen_random_uuid()::text, '-', ''),
        'causation_id', NULL, 'payload', jsonb_build_object('document', p_document))));
    RETURN v_event_id;
END $$;

-- Leasing: ready jobs of the given types, and running ones whose lease expired (their worker died or
-- lost the database): the attempt in flight is closed as expired and the job is taken again. One instant
-- (`now`) ends the lost attempt and starts the new one, so two attempts never overlap.
CREATE FUNCTION lease_jobs(p_types text[], p_worker text, p_limit integer)
RETURNS TABLE (job_id bigint, job_type text, entity_id uuid, attempt integer, max_attempts integer,
               payload jsonb, source_event_id uuid, correlation_id text, trace_id text)
LANGUAGE sql AS $$
    WITH now AS (
        SELECT clock_timestamp() AS at
    ), picked AS (
        SELECT j.id, j.status, j.attempts FROM executor_jobs j, now
         WHERE j.job_type = ANY (p_types)
           AND ((j.status IN ('queued', 'retrying') AND j.run_at <= now.at)
                OR (j.status = 'running' AND j.lease_expires_at < now.at))
         ORDER BY j.run_at, j.id
         LIMIT p_limit
         FOR UPDATE OF j SKIP LOCKED
    ), expired AS (
        UPDATE job_attempts a
           SET result = 'expired', ended_at = now.at, error = 'lease of ' || a.worker_name || ' expired'
          FROM picked p, now
         WHERE p.status = 'running' AND a.job_id = p.id AND a.attempt_no = p.attempts AND a.result IS NULL
    ), taken AS (
        UPDATE executor_jobs j
           SET status = 'running', attempts = j.attempts + 1, lease_owner = p_worker,
               lease_expires_at = now.at + (SELECT c.lease_seconds FROM config c) * interval '1 second'
          FROM picked p, now
         WHERE j.id = p.id
        RETURNING j.*
    ), opened AS (
        INSERT INTO job_attempts (job_id, attempt_no, worker_name, started_at, correlation_id, trace_id)
        SELECT t.id, t.attempts, p_worker, now.at, t.correlation_id, t.trace_id FROM taken t, now
    )
    SELECT t.id, t.job_type, t.entity_id, t.attempts, t.max_attempts, t.payload, t.source_event_id,
           t.correlation_id, t.trace_id
      FROM taken t ORDER BY t.id
$$;

CREATE FUNCTION claim_initial_decision_jobs(p_worker text, p_limit integer)
RETURNS TABLE (job_id bigint, job_type text, entity_id uuid, attempt integer, max_attempts integer,
               payload jsonb, source_event_id uuid, correlation_id text, trace_id text)
LANGUAGE sql AS $$
    SELECT * FROM lease_jobs(ARRAY(SELECT t.name FROM job_types t WHERE t.kind = 'decision'), p_worker, p_limit)
$$;

CREATE FUNCTION claim_orchestrator_jobs(p_worker text, p_limit integer)
RETURNS TABLE (job_id bigint, job_type text, entity_id uuid, attempt integer, max_attempts integer,
               payload jsonb, source_event_id uuid, correlation_id text, trace_id text)
LANGUAGE sql AS $$
    SELECT * FROM lease_jobs(ARRAY(SELECT t.name FROM job_types t WHERE t.kind = 'execution'), p_worker, p_limit)
$$;

-- Settling an attempt. Each takes the entity's row lock first (the workers lock it before reading the
-- history, so the order is always entity, then job) and acts only while the caller still holds the job:
-- same worker, same attempt, still running. A worker whose lease expired and was taken over is fenced off.
CREATE FUNCTION complete_job(p_job_id bigint, p_attempt integer, p_worker text, p_events jsonb,
                             p_result_event uuid DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_entity uuid;
BEGIN
    PERFORM 1 FROM document_entities e WHERE e.id = (SELECT j.entity_id FROM executor_jobs j WHERE j.id = p_job_id)
        FOR UPDATE;
    UPDATE executor_jobs
       SET status = 'succeeded', finished_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL
     WHERE id = p_job_id AND status = 'running' AND attempts = p_attempt AND lease_owner = p_worker
    RETURNING entity_id INTO v_entity;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF jsonb_array_length(p_events) > 0 THEN
        PERFORM append_events(v_entity, p_events);
    END IF;
    UPDATE job_attempts SET result = 'done', ended_at = clock_timestamp(), result_event = p_result_event
     WHERE job_id = p_job_id AND attempt_no = p_attempt;
    RETURN true;
END $$;

-- A failed attempt: retried after an exponential backoff (retry_base_ms doubling, capped), or dead once
-- its attempts are used up or the failure is permanent (a payload no handler can process). A dead
-- execution job tells its death canonically: job.<type>.failed. Returns retrying, dead or fenced.
CREATE FUNCTION fail_job(p_job_id bigint, p_attempt integer, p_worker text, p_error text, p_permanent boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    j executor_jobs%ROWTYPE;
    c config%ROWTYPE;
    v_event jsonb;
BEGIN
    PERFORM 1 FROM document_entities e WHERE e.id = (SELECT x.entity_id FROM executor_jobs x WHERE x.id = p_job_id)
        FOR UPDATE;
    SELECT * INTO j FROM executor_jobs x
     WHERE x.id = p_job_id AND x.status = 'running' AND x.attempts = p_attempt AND x.lease_owner = p_worker
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'fenced';
    END IF;
    SELECT * INTO c FROM config;
    IF p_permanent OR j.attempts >= j.max_attempts THEN
        IF (SELECT t.kind FROM job_types t WHERE t.name = j.job_type) = 'execution' THEN
            v_event := jsonb_build_object(
                'id', gen_random_uuid()::text, 'type', 'job.' || j.job_type || '.failed',
                'correlation_id', j.correlation_id, 'trace_id', j.trace_id, 'causation_id', j.source_event_id::text,
                'payload', jsonb_build_object('job_id', j.id, 'error', p_error, 'attempts', j.attempts));
            PERFORM append_events(j.entity_id, jsonb_build_array(v_event));
        END IF;
        UPDATE executor_jobs
           SET status = 'dead', last_error = p_error, finished_at = clock_timestamp(), lease_owner = NULL,
               lease_expires_at = NULL
         WHERE id = p_job_id;
        UPDATE job_attempts SET result = 'error', ended_at = clock_timestamp(), error = p_error,
               result_event = (v_event ->> 'id')::uuid
         WHERE job_id = p_job_id AND attempt_no = p_attempt;
        RETURN 'dead';
    END IF;
    UPDATE executor_jobs
       SET status = 'retrying', last_error = p_error, lease_owner = NULL, lease_expires_at = NULL,
           run_at = clock_timestamp()
                    + least(c.retry_base_ms * power(2, j.attempts - 1), c.retry_cap_ms) * interval '1 millisecond'
     WHERE id = p_job_id;
    UPDATE job_attempts SET result = 'error', ended_at = clock_timestamp(), error = p_error
     WHERE job_id = p_job_id AND attempt_no = p_attempt;
    RETURN 'retrying';
END $$;

-- A worker stopping (SIGTERM) gives back what it claimed and did not start: ready again at once.
CREATE FUNCTION release_job(p_job_id bigint, p_attempt integer, p_worker text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE executor_jobs SET status = 'queued', run_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL
     WHERE id = p_job_id AND status = 'running' AND attempts = p_attempt AND lease_owner = p_worker;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE job_attempts SET result = 'released', ended_at = clock_timestamp()
     WHERE job_id = p_job_id AND attempt_no = p_attempt;
    RETURN true;
END $$;
