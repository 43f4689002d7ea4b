-- class: core
-- The user_documents projection: a separate, best-effort trigger. It never blocks the append that fired it
-- (any error becomes a WARNING), and nothing on the decision path reads what it writes.

CREATE FUNCTION project_user_documents()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_last    jsonb := NEW.events -> -1;
    v_type    text := v_last ->> 'type';
    v_payload jsonb := coalesce(v_last -> 'payload', '{}'::jsonb);
BEGIN
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        -- One statement per append: the projection rides on every event, so it must stay cheap.
        INSERT INTO user_documents AS u (id, owner_id, status, last_event_type, last_event_at, content_sha256,
                                         tsa_serial, anchor_height)
        VALUES (NEW.id, NEW.owner_id,
                CASE v_type WHEN 'document.protect.requested' THEN 'protecting' WHEN 'document.anchored' THEN 'anchored'
                            WHEN 'document.failed' THEN 'failed' ELSE 'new' END,
                v_type, (v_last ->> 'at')::timestamptz,
                CASE WHEN v_type = 'job.protect.completed' THEN v_payload ->> 'sha256' END,
                CASE WHEN v_type = 'job.tsa.completed' THEN v_payload #>> '{token,serial}' END,
                CASE WHEN v_type = 'job.anchor.completed' THEN (v_payload #>> '{receipt,height}')::bigint END)
        ON CONFLICT (id) DO UPDATE
           SET status = CASE WHEN EXCLUDED.status = 'new' THEN u.status ELSE EXCLUDED.status END,
               last_event_type = EXCLUDED.last_event_type, last_event_at = EXCLUDED.last_event_at,
               content_sha256 = coalesce(EXCLUDED.content_sha256, u.content_sha256),
               tsa_serial = coalesce(EXCLUDED.tsa_serial, u.tsa_serial),
               anchor_height = coalesce(EXCLUDED.anchor_height, u.anchor_height),
               updated_at = clock_timestamp();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'user_documents projection skipped for entity %: % (%)', NEW.id, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

CREATE TRIGGER project_user_documents
    AFTER INSERT OR UPDATE OF events ON document_entities
    FOR EACH ROW EXECUTE FUNCTION project_user_documents();
