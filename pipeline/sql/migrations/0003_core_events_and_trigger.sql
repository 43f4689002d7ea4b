-- class: core
-- Events: validation, the append API, and the core trigger `on_document_entity_events_change`, which turns
-- every newly appended event that needs work into a job through the gateway (`materialize_job`).
--
-- SQLSTATEs raised by the pipeline (class PJ, so callers can tell them from Postgres' own):
--   PJ001 unknown job type          PJ002 malformed event          PJ003 direct insert rejected (strict)
--   PJ004 unknown entity            PJ005 events are append-only   PJ006 gateway called without identity

-- Raises PJ002 naming the event's position and the rule it breaks. Runs for every appended event, whoever
-- appended it (the append API, a raw UPDATE, a legacy writer), because it is called from the core trigger.
CREATE FUNCTION validate_event(p_event jsonb, p_position int DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_where text := CASE WHEN p_position IS NULL THEN 'event' ELSE format('events[%s]', p_position) END;
    v_problem text;
BEGIN
    IF jsonb_typeof(p_event) IS DISTINCT FROM 'object' THEN
        v_problem := 'is not a JSON object';
    ELSIF jsonb_typeof(p_event -> 'type') IS DISTINCT FROM 'string' OR (p_event ->> 'type') = '' THEN
        v_problem := 'has no "type" (a non-empty string such as "document.protect.requested")';
    ELSIF (p_event ->> 'type') !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' THEN
        v_problem := format('has type %L, which is not dotted lower-case words', p_event ->> 'type');
    ELSIF jsonb_typeof(p_event -> 'id') IS DISTINCT FROM 'string'
          OR (p_event ->> 'id') !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        v_problem := 'has no "id" (a lower-case uuid)';
    ELSIF p_event ? 'payload' AND jsonb_typeof(p_event -> 'payload') IS DISTINCT FROM 'object' THEN
        v_problem := format('has a %s "payload"; the payload must be a JSON object',
                            jsonb_typeof(p_event -> 'payload'));
    ELSIF p_event ? 'trace_id' AND jsonb_typeof(p_event -> 'trace_id') <> 'null'
          AND (p_event ->> 'trace_id') !~ '^[0-9a-f]{32}$' THEN
        v_problem := 'has a "trace_id" that is not 32 lower-case hex digits (W3C trace-context)';
    END IF;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ002',
            MESSAGE = format('malformed event: %s %s', v_where, v_problem),
            HINT = 'append events with append_event(entity_id, type, payload, ...), which fills id, at and trace_id';
    END IF;
END
$$;

-- A fresh W3C trace id (32 lower-case hex digits, not all zero).
CREATE FUNCTION new_trace_id()
RETURNS text
LANGUAGE sql VOLATILE
AS $$ SELECT replace(gen_random_uuid()::text, '-', '') $$;

-- The append API: one canonical event appended to an entity. Returns the event id, or NULL when an event
-- with the same id is already there (a retried append is a no-op, not a second event).
CREATE FUNCTION append_event(
    p_entity_id      uuid,
    p_type           text,
    p_payload        jsonb DEFAULT '{}'::jsonb,
    p_correlation_id uuid DEFAULT NULL,
    p_trace_id       text DEFAULT NULL,
    p_causation_id   uuid DEFAULT NULL,
    p_event_id       uuid DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
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
    PERFORM validate_event(v_event);
    UPDATE document_entities e
       SET events = e.events || jsonb_build_array(v_event), updated_at = clock_timestamp()
     WHERE e.id = p_entity_id
       AND NOT e.events @> jsonb_build_array(jsonb_build_object('id', v_id));
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

-- Starts a flow: creates the entity if needed and appends document.protect.requested under one correlation
-- id and trace id. A second request for the same document is appended too (the events are the authority),
-- under the flow's own correlation and trace ids unless the caller gives others: it is the same intent, and
-- the decision worker starts nothing new for it.
CREATE FUNCTION request_protection(
    p_entity_id      uuid,
    p_document       text,
    p_owner_id       text DEFAULT NULL,
    p_correlation_id uuid DEFAULT NULL,
    p_trace_id       text DEFAULT NULL,
    p_event_id       uuid DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_first jsonb;
BEGIN
    INSERT INTO document_entities (id, owner_id) VALUES (p_entity_id, p_owner_id) ON CONFLICT (id) DO NOTHING;
    SELECT x INTO v_first
      FROM document_entities e, jsonb_array_elements(e.events) x
     WHERE e.id = p_entity_id AND x ->> 'type' = 'document.protect.requested'
     LIMIT 1;
    RETURN append_event(p_entity_id, 'document.protect.requested',
                        jsonb_build_object('document', p_document),
                        coalesce(p_correlation_id, (v_first ->> 'correlation_id')::uuid, gen_random_uuid()),
                        coalesce(p_trace_id, v_first ->> 'trace_id', new_trace_id()), NULL, p_event_id);
END
$$;

-- The core trigger (always on). For each event appended by this statement: validate it, then ask the gateway
-- for the job it needs. `job.<type>.required` materializes that job; `document.<x>.requested` and the
-- outcome of an execution job (`job.<type>.completed|failed`) materialize a decision job.
CREATE FUNCTION on_document_entity_events_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_old_len  int := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE jsonb_array_length(OLD.events) END;
    v_new_len  int := jsonb_array_length(NEW.events);
    v_event    jsonb;
    v_type     text;
    v_parts    text[];
    v_job_type text;
    v_via      text;
BEGIN
    IF v_new_len < v_old_len
       OR (v_old_len > 0 AND (NEW.events -> (v_old_len - 1)) IS DISTINCT FROM (OLD.events -> (v_old_len - 1))) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ005',
            MESSAGE = format('events of entity %s are append-only: an update removed or edited past events', NEW.id),
            HINT = 'append new events with append_event(); never rewrite document_entities.events';
    END IF;
    FOR i IN v_old_len .. v_new_len - 1 LOOP
        v_event := NEW.events -> i;
        PERFORM validate_event(v_event, i);
        v_type := v_event ->> 'type';
        v_job_type := NULL;
        -- The type is validated dotted lower-case words, so splitting on dots reads it exactly (and costs far
        -- less than a capturing regex on every event).
        v_parts := string_to_array(v_type, '.');
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
            PERFORM materialize_job(v_job_type, NEW.id, (v_event ->> 'id')::uuid,
                                    coalesce(v_event -> 'payload', '{}'::jsonb),
                                    (v_event ->> 'correlation_id')::uuid, v_event ->> 'trace_id', v_via);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER on_document_entity_events_change
    AFTER INSERT OR UPDATE OF events ON document_entities
    FOR EACH ROW EXECUTE FUNCTION on_document_entity_events_change();
