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
        INSERT INTO user_documents AS u (id, owner_id, status, last_event_type, last_event_at)
        VALUES (NEW.id, NEW.owner_id, 'new', v_type, (v_last ->> 'at')::timestamptz)
        ON CONFLICT (id) DO UPDATE
           SET last_event_type = EXCLUDED.last_event_type, last_event_at = EXCLUDED.last_event_at,
               updated_at = clock_timestamp();
        UPDATE user_documents u
           SET status = CASE
                   WHEN v_type = 'document.protect.requested' THEN 'protecting'
                   WHEN v_type = 'document.anchored' THEN 'anchored'
                   WHEN v_type = 'document.failed' THEN 'failed'
                   ELSE u.status END,
               content_sha256 = coalesce(CASE WHEN v_type = 'job.protect.completed' THEN v_payload ->> 'sha256' END,
                                         u.content_sha256),
               tsa_serial = coalesce(CASE WHEN v_type = 'job.tsa.completed' THEN v_payload #>> '{token,serial}' END,
                                     u.tsa_serial),
               anchor_height = coalesce(CASE WHEN v_type = 'job.anchor.completed'
                                             THEN (v_payload #>> '{receipt,height}')::bigint END, u.anchor_height)
         WHERE u.id = NEW.id;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'user_documents projection skipped for entity %: % (%)', NEW.id, SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$$;

CREATE TRIGGER project_user_documents
    AFTER INSERT OR UPDATE OF events ON document_entities
    FOR EACH ROW EXECUTE FUNCTION project_user_documents();
