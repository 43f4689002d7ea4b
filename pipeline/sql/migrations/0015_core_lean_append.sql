-- class: core
-- The append path does less per event. One append used to run: the event's validation twice (in append_event
-- and in the core trigger), a containment scan of the entity's whole event list for an id just generated, up
-- to five reads of the entity's (compressed) event lists in the trigger, the gateway as a set-returning
-- function run through the executor, and a second trigger (with a transition table) to give the job its
-- claim-queue row. A profile of four clients appending put more than half of each append in those.
-- Behaviour is unchanged: the same validation, errors, gateway contract and queue rows.
--   * event_problem(): the validation as one SQL expression, inlined into its callers (no call, no executor);
--     validate_event() keeps its signature, raises from it, and is called only for an event found malformed.
--   * append_event(): the containment check (an event id already there) runs only for an id the caller gave.
--   * The core trigger reads OLD.events and NEW.events once each, and calls the gateway as an expression.
--   * materialize_job() returns one materialized_job row instead of a set (callers that select its columns
--     read the same row), and writes the job and its queue row in one statement; the queue's insert trigger
--     now serves every other writer (WHEN the insert is not the gateway's).
--   * The projection reads each entity's last event once.

-- == Validation ===============================================================================================
-- What is wrong with an event, or NULL. STABLE (format() is), so Postgres inlines it into the expression that
-- calls it: pass it a variable, not an expression, since the body reads its argument many times.
CREATE FUNCTION event_problem(p_event jsonb)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_event) IS DISTINCT FROM 'object' THEN 'is not a JSON object'
        WHEN jsonb_typeof(p_event -> 'type') IS DISTINCT FROM 'string' OR (p_event ->> 'type') = ''
            THEN 'has no "type" (a non-empty string such as "document.protect.requested")'
        WHEN (p_event ->> 'type') !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'
            THEN format('has type %L, which is not dotted lower-case words', p_event ->> 'type')
        WHEN jsonb_typeof(p_event -> 'id') IS DISTINCT FROM 'string'
             OR (p_event ->> 'id') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN 'has no "id" (a lower-case uuid)'
        WHEN p_event ? 'payload' AND jsonb_typeof(p_event -> 'payload') IS DISTINCT FROM 'object'
            THEN format('has a %s "payload"; the payload must be a JSON object', jsonb_typeof(p_event -> 'payload'))
        WHEN p_event ? 'trace_id' AND jsonb_typeof(p_event -> 'trace_id') <> 'null'
             AND (p_event ->> 'trace_id') !~ '^[0-9a-f]{32}$'
            THEN 'has a "trace_id" that is not 32 lower-case hex digits (W3C trace-context)'
    END
$$;

CREATE OR REPLACE FUNCTION validate_event(p_event jsonb, p_position int DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_problem text := event_problem(p_event);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ002',
            MESSAGE = format('malformed event: %s %s',
                             CASE WHEN p_position IS NULL THEN 'event' ELSE format('events[%s]', p_position) END,
                             v_problem),
            HINT = 'append events with append_event(entity_id, type, payload, ...), which fills id, at and trace_id';
    END IF;
END
$$;

-- == The append API ===========================================================================================
CREATE OR REPLACE FUNCTION append_event(
    p_entity_id      uuid,
    p_type           text,
    p_payload        jsonb DEFAULT '{}'::jsonb,
    p_correlation_id uuid DEFAULT NULL,
    p_trace_id       text DEFAULT NULL,
    p_causation_id   uuid DEFAULT NULL,
    p_event_id       uuid DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_id    uuid := coalesce(p_event_id, gen_random_uuid());
    v_event jsonb;
BEGIN
    v_event := jsonb_build_object(
        'id', v_id,
        'type', p_type,
        'at', clock_timestamp(),
        'correlation_id', p_correlation_id,
        'trace_id', coalesce(p_trace_id, new_trace_id()),
        'causation_id', p_causation_id,
        'payload', coalesce(p_payload, '{}'::jsonb));
    -- Checked here too, not only by the core trigger, so a malformed event is refused even while an operator
    -- (or a fault) has that trigger disabled.
    -- The expression on every append; validate_event (which raises) only for a malformed one.
    IF event_problem(v_event) IS NOT NULL THEN
        PERFORM validate_event(v_event);
    END IF;
    -- Only an id the caller chose can already be there (a retried append): a fresh one skips reading the list.
    UPDATE document_entities e
       SET events = e.events || jsonb_build_array(v_event), updated_at = clock_timestamp()
     WHERE e.id = p_entity_id
       AND (p_event_id IS NULL OR NOT e.events @> jsonb_build_array(jsonb_build_object('id', v_id)));
    IF FOUND THEN
        RETURN v_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM document_entities e WHERE e.id = p_entity_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ004',
            MESSAGE = format('unknown entity %s: no document_entities row with that id', p_entity_id),
            HINT = 'create the entity first (request_protection creates it), or check the id';
    END IF;
    RETURN NULL;
END
$$;

-- == The gateway ==============================================================================================
-- One row, not a set: the core trigger calls it as an expression (no executor run of its own), and
-- `SELECT job_id, created FROM materialize_job(...)` reads the same columns as before.
CREATE TYPE materialized_job AS (job_id bigint, dedupe_key text, created boolean);

DROP FUNCTION materialize_job(text, uuid, uuid, jsonb, uuid, text, text);
CREATE FUNCTION materialize_job(
    p_job_type        text,
    p_entity_id       uuid,
    p_source_event_id uuid,
    p_payload         jsonb DEFAULT '{}'::jsonb,
    p_correlation_id  uuid DEFAULT NULL,
    p_trace_id        text DEFAULT NULL,
    p_via             text DEFAULT 'direct_call'
)
RETURNS materialized_job
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_type   job_types%ROWTYPE;
    v_result materialized_job;
    v_unused text;
BEGIN
    SELECT * INTO v_type FROM job_types t WHERE t.name = p_job_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ001',
            MESSAGE = format('unknown job type %L: not in the job_types whitelist (known: %s)', p_job_type,
                             (SELECT string_agg(t.name, ', ' ORDER BY t.name) FROM job_types t)),
            HINT = 'use a listed type, or add the type to job_types in a core migration';
    END IF;
    IF p_entity_id IS NULL OR p_source_event_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ006',
            MESSAGE = format('materialize_job(%L) needs an entity id and a source event id (got %s, %s)',
                             p_job_type, coalesce(p_entity_id::text, 'null'),
                             coalesce(p_source_event_id::text, 'null')),
            HINT = 'every job is born from a canonical event: append job.<type>.required to the entity instead';
    END IF;
    v_result.dedupe_key := p_entity_id::text || ':' || p_job_type || ':' || p_source_event_id::text;
    -- Assignments, not PERFORM: an expression skips the executor run a PERFORM pays.
    v_unused := set_config('pipeline.via_gateway', 'on', true);
    -- The job and its claim-queue row in one statement (the queue's insert trigger skips the gateway's own
    -- inserts; its state and due time come from the same functions the trigger uses).
    WITH job AS (
        INSERT INTO executor_jobs AS j (job_type, kind, entity_id, dedupe_key, max_attempts, payload,
                                        source_event_id, correlation_id, trace_id, materialized_via)
        VALUES (p_job_type, v_type.kind, p_entity_id, v_result.dedupe_key, v_type.max_attempts,
                coalesce(p_payload, '{}'::jsonb), p_source_event_id, p_correlation_id, p_trace_id, p_via)
        ON CONFLICT ON CONSTRAINT executor_jobs_dedupe_key_key DO NOTHING
        RETURNING j.id, j.kind, j.status, j.run_at, j.lease_expires_at, j.finished_at, j.updated_at
    )
    INSERT INTO executor_job_queue AS q (job_id, kind, state, due_at)
    SELECT job.id, job.kind, job_queue_state_for(job.status),
           job_queue_due_at_for(job.status, job.run_at, job.lease_expires_at, job.finished_at, job.updated_at)
      FROM job
    RETURNING q.job_id INTO v_result.job_id;
    v_unused := set_config('pipeline.via_gateway', 'off', true);
    v_result.created := v_result.job_id IS NOT NULL;
    IF v_result.created THEN
        v_unused := pg_notify('executor_jobs_' || v_type.kind, '');
    ELSE
        SELECT j.id INTO v_result.job_id FROM executor_jobs j WHERE j.dedupe_key = v_result.dedupe_key;
    END IF;
    RETURN v_result;
END
$$;
REVOKE EXECUTE ON FUNCTION materialize_job(text, uuid, uuid, jsonb, uuid, text, text) FROM PUBLIC;

DROP TRIGGER executor_job_queue_on_insert ON executor_jobs;
CREATE TRIGGER executor_job_queue_on_insert
    AFTER INSERT ON executor_jobs REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT
    WHEN (current_setting('pipeline.via_gateway', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION executor_job_queue_sync();
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_insert;

-- == The core trigger =========================================================================================
-- Same rules as 0003. The event lists are read into variables once: each NEW.events or OLD.events in an
-- expression fetched (and decompressed) the stored value again, and a flow's list outgrows the 2 kB at which
-- Postgres compresses it.
CREATE OR REPLACE FUNCTION on_document_entity_events_change()
RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    -- `x || '[]'` returns x itself, decompressed: the variable then holds the plain value.
    v_new      jsonb := NEW.events || '[]'::jsonb;
    v_old      jsonb := CASE WHEN TG_OP = 'INSERT' THEN '[]'::jsonb ELSE OLD.events || '[]'::jsonb END;
    v_old_len  int := jsonb_array_length(v_old);
    v_new_len  int := jsonb_array_length(v_new);
    v_event    jsonb;
    v_parts    text[];
    v_job_type text;
    v_via      text;
    v_job      materialized_job;
BEGIN
    IF v_new_len < v_old_len
       OR (v_old_len > 0 AND (v_new -> (v_old_len - 1)) IS DISTINCT FROM (v_old -> (v_old_len - 1))) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ005',
            MESSAGE = format('events of entity %s are append-only: an update removed or edited past events', NEW.id),
            HINT = 'append new events with append_event(); never rewrite document_entities.events';
    END IF;
    FOR i IN v_old_len .. v_new_len - 1 LOOP
        v_event := v_new -> i;
        IF event_problem(v_event) IS NOT NULL THEN
            PERFORM validate_event(v_event, i);  -- raises PJ002 naming the position
        END IF;
        v_job_type := NULL;
        -- The type is validated dotted lower-case words, so splitting on dots reads it exactly.
        v_parts := string_to_array(v_event ->> 'type', '.');
        IF cardinality(v_parts) = 3 AND v_parts[1] = 'job' THEN
            IF v_parts[3] = 'required' THEN
                v_job_type := v_parts[2];
            ELSIF v_parts[3] IN ('completed', 'failed') THEN
                -- Outcomes of execution jobs wake the decision worker; outcomes of decision jobs do not, so a
                -- poison decision job cannot feed itself.
                IF EXISTS (SELECT 1 FROM job_types t WHERE t.name = v_parts[2] AND t.kind = 'execution') THEN
                    v_job_type := 'decide_outcome';
                END IF;
            END IF;
        ELSIF cardinality(v_parts) = 3 AND v_parts[1] = 'document' AND v_parts[3] = 'requested' THEN
            v_job_type := 'decide_request';
        END IF;
        IF v_job_type IS NOT NULL THEN
            v_via := CASE WHEN v_event #> '{payload,_compat}' IS NOT NULL THEN 'compat_redirect' ELSE 'trigger' END;
            v_job := materialize_job(v_job_type, NEW.id, (v_event ->> 'id')::uuid,
                                     coalesce(v_event -> 'payload', '{}'::jsonb),
                                     (v_event ->> 'correlation_id')::uuid, v_event ->> 'trace_id', v_via);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- == The projection ===========================================================================================
-- As 0011, but each entity's last event is read once (`n.events -> -1` twice read the list twice).
CREATE OR REPLACE FUNCTION project_user_documents_set()
RETURNS trigger
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
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
         CROSS JOIN LATERAL (SELECT n.events -> -1 AS event OFFSET 0) last
         CROSS JOIN LATERAL (SELECT last.event, last.event ->> 'type' AS type) l
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
