-- The RFC's blocking fix (phase 1): the gateway's local variable no longer shares the column's name, so
-- `ON CONFLICT (dedupe_key)` names the column and a second call for one source event returns the first job.
-- The SUT file's migration set `without-dedupe-fix` leaves this migration out.

CREATE OR REPLACE FUNCTION enqueue_from_event(p_entity_id uuid, p_job_type text, p_event jsonb, p_via text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_dedupe_key text := p_entity_id::text || ':' || p_job_type || ':' || (p_event ->> 'id');
    v_id bigint;
BEGIN
    PERFORM set_config('pipeline.via_gateway', 'on', true);
    INSERT INTO executor_jobs (job_type, entity_id, dedupe_key, source_event_id, payload, max_attempts,
                               correlation_id, trace_id, materialized_via)
    VALUES (p_job_type, p_entity_id, v_dedupe_key, (p_event ->> 'id')::uuid, coalesce(p_event -> 'payload', '{}'),
            (SELECT c.max_attempts FROM config c), p_event ->> 'correlation_id', p_event ->> 'trace_id', p_via)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id INTO v_id;
    PERFORM set_config('pipeline.via_gateway', '', true);
    IF v_id IS NULL THEN
        SELECT j.id INTO v_id FROM executor_jobs j WHERE j.dedupe_key = v_dedupe_key;
    ELSE
        PERFORM pg_notify((SELECT t.kind FROM job_types t WHERE t.name = p_job_type) || '_jobs', '');
    END IF;
    RETURN v_id;
END $$;
