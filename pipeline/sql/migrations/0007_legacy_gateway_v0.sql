-- class: legacy
-- Historic, kept for the record (migrations are append-only). This is the first job gateway, written while
-- jobs were still created straight from user_documents. It carries the ambiguous dedupe-key reference: its
-- result column is named `dedupe_key` like the table's column, so `ON CONFLICT (dedupe_key)` raises
--   ERROR 42702: column reference "dedupe_key" is ambiguous
-- on every call, and no job is ever materialized. 0008 fixes it. Applying migrations up to this one
-- reproduces the bug.

CREATE FUNCTION materialize_job(
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
    v_kind text;
BEGIN
    SELECT t.kind INTO v_kind FROM job_types t WHERE t.name = p_job_type;
    dedupe_key := p_entity_id::text || ':' || p_job_type || ':' || p_source_event_id::text;
    INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, payload, source_event_id,
                               correlation_id, trace_id, materialized_via)
    VALUES (p_job_type, v_kind, p_entity_id, dedupe_key, p_payload, p_source_event_id,
            p_correlation_id, p_trace_id, p_via)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id INTO job_id;
    created := job_id IS NOT NULL;
    RETURN NEXT;
END
$$;

-- The legacy path: a document marked protect_requested in user_documents became a protect job directly,
-- with no canonical event behind it (dual authority). Disabled by 0009.
CREATE FUNCTION legacy_user_documents_enqueue()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, materialized_via)
    VALUES ('protect', 'execution', NEW.id, 'legacy:' || NEW.id || ':' || gen_random_uuid(), gen_random_uuid(),
            'legacy:user_documents');
    RETURN NULL;
END
$$;

CREATE TRIGGER legacy_user_documents_enqueue
    AFTER UPDATE OF status ON user_documents
    FOR EACH ROW WHEN (NEW.status = 'protect_requested' AND OLD.status IS DISTINCT FROM 'protect_requested')
    EXECUTE FUNCTION legacy_user_documents_enqueue();
