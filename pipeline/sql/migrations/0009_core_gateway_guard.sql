-- class: core
-- The gateway is the only writer of executor_jobs. A guard on the table catches every other insert:
--   gateway_mode = compat: the insert is redirected to the canonical path (a job.<type>.required event is
--     appended to the entity, and the core trigger materializes the job through the gateway), and a compat
--     warning records where it came from;
--   gateway_mode = strict: the insert is rejected with SQLSTATE PJ003 and nothing else in the transaction is
--     touched by the guard.
-- Privileges back this up (0006: no worker role holds INSERT on executor_jobs). The legacy path from
-- user_documents is removed: the projection is never authority.

CREATE FUNCTION executor_jobs_gateway_guard()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_mode     text;
    v_source   text := coalesce(NEW.materialized_via, 'direct_insert');
    v_event_id uuid;
BEGIN
    IF current_setting('pipeline.via_gateway', true) = 'on' THEN
        RETURN NEW;  -- the gateway's own insert: the hot path, so nothing else is read before this
    END IF;
    v_mode := pipeline_setting('gateway_mode', 'compat');
    IF v_mode = 'strict' THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ003',
            MESSAGE = format('direct insert into executor_jobs rejected (gateway_mode=strict): job_type=%s, '
                             'entity=%s, source=%s', coalesce(NEW.job_type, 'null'),
                             coalesce(NEW.entity_id::text, 'null'), v_source),
            HINT = 'materialize jobs by appending a job.<type>.required event (append_event), never by INSERT';
    END IF;
    IF NEW.entity_id IS NULL OR NOT EXISTS (SELECT 1 FROM document_entities e WHERE e.id = NEW.entity_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ004',
            MESSAGE = format('direct insert into executor_jobs cannot be redirected (gateway_mode=compat): '
                             'entity %s does not exist', coalesce(NEW.entity_id::text, 'null')),
            HINT = 'append a job.<type>.required event to an existing entity instead';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM job_types t WHERE t.name = NEW.job_type) THEN
        PERFORM materialize_job(NEW.job_type, NEW.entity_id, gen_random_uuid());  -- raises PJ001, clearly
    END IF;
    v_event_id := append_event(
        NEW.entity_id, 'job.' || NEW.job_type || '.required',
        coalesce(NEW.payload, '{}'::jsonb)
            || jsonb_build_object('_compat', jsonb_build_object('source', v_source, 'dedupe_key', NEW.dedupe_key)),
        NEW.correlation_id, NEW.trace_id, NEW.source_event_id);
    INSERT INTO compat_warnings (source, job_type, entity_id, dedupe_key, job_id, detail)
    SELECT v_source, NEW.job_type, NEW.entity_id, j.dedupe_key, j.id,
           jsonb_build_object('redirected_event_id', v_event_id, 'original_dedupe_key', NEW.dedupe_key,
                              'application_name', current_setting('application_name', true),
                              'user', session_user)
      FROM executor_jobs j WHERE j.source_event_id = v_event_id;
    RAISE WARNING 'direct insert into executor_jobs redirected through the gateway (gateway_mode=compat): '
                  'job_type=%, entity=%, source=%', NEW.job_type, NEW.entity_id, v_source;
    RETURN NULL;
END
$$;

CREATE TRIGGER executor_jobs_gateway_guard
    BEFORE INSERT ON executor_jobs
    FOR EACH ROW EXECUTE FUNCTION executor_jobs_gateway_guard();

DROP TRIGGER legacy_user_documents_enqueue ON user_documents;
DROP FUNCTION legacy_user_documents_enqueue();

REVOKE EXECUTE ON FUNCTION materialize_job(text, uuid, uuid, jsonb, uuid, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION executor_jobs_gateway_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION append_event(uuid, text, jsonb, uuid, text, uuid, uuid) TO pipeline_writer;
GRANT EXECUTE ON FUNCTION request_protection(uuid, text, text, uuid, text, uuid) TO pipeline_writer;
