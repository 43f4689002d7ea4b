-- class: core
-- Fix for the ambiguous dedupe-key reference (0007): name the conflict target by its constraint and qualify
-- every column, so no plpgsql variable or result column can shadow it. Also the gateway's full contract:
-- the whitelist check, identity checks, a clear error for an unknown type, and the wake-up notification.

CREATE OR REPLACE FUNCTION materialize_job(
    p_job_type       text,
    p_entity_id      uuid,
    p_source_event_id uuid,
    p_payload        jsonb DEFAULT '{}'::jsonb,
    p_correlation_id uuid DEFAULT NULL,
    p_trace_id       text DEFAULT NULL,
    p_via            text DEFAULT 'direct_call'
)
RETURNS TABLE (job_id bigint, dedupe_key text, created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_type job_types%ROWTYPE;
    v_key  text;
    v_id   bigint;
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
    v_key := p_entity_id::text || ':' || p_job_type || ':' || p_source_event_id::text;
    PERFORM set_config('pipeline.via_gateway', 'on', true);
    INSERT INTO executor_jobs AS j (job_type, kind, entity_id, dedupe_key, max_attempts, payload,
                                    source_event_id, correlation_id, trace_id, materialized_via)
    VALUES (p_job_type, v_type.kind, p_entity_id, v_key, v_type.max_attempts, coalesce(p_payload, '{}'::jsonb),
            p_source_event_id, p_correlation_id, p_trace_id, p_via)
    ON CONFLICT ON CONSTRAINT executor_jobs_dedupe_key_key DO NOTHING
    RETURNING j.id INTO v_id;
    PERFORM set_config('pipeline.via_gateway', 'off', true);
    IF v_id IS NULL THEN
        SELECT j.id INTO v_id FROM executor_jobs j WHERE j.dedupe_key = v_key;
        created := false;
    ELSE
        created := true;
        PERFORM pg_notify('executor_jobs_' || v_type.kind, '');
    END IF;
    job_id := v_id;
    dedupe_key := v_key;
    RETURN NEXT;
END
$$;
