-- The path that came before the RFC: a new user_documents row started the protection by writing a job
-- straight into executor_jobs, with no canonical event behind it (the dual authority the RFC removes).
-- Kept as history; 0004 drops it and puts the gateway guard in front of executor_jobs.

CREATE FUNCTION legacy_enqueue_from_user_documents() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO executor_jobs (job_type, entity_id, dedupe_key, source_event_id, payload, materialized_via)
    VALUES ('protect', NEW.entity_id, 'legacy:' || NEW.entity_id::text, gen_random_uuid(),
            jsonb_build_object('document', NEW.document), 'legacy:user_documents');
    RETURN NULL;
END $$;

CREATE TRIGGER legacy_enqueue_from_user_documents AFTER INSERT ON user_documents
    FOR EACH ROW EXECUTE FUNCTION legacy_enqueue_from_user_documents();
