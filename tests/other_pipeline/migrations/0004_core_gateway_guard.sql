-- Phase 2: the gateway is the only way into executor_jobs. The legacy path of 0002 is retired, and a
-- guard stands in front of the table for any writer still inserting directly:
--   compat: the insert is redirected: a canonical job.<type>.required event carrying the compat marker
--           `legacy_redirect` is appended to the entity, the core trigger takes it through the gateway
--           (materialized_via = legacy-redirect), and a row of legacy_redirects names the job;
--   strict: the insert is refused (SQLSTATE 42501).

DROP TRIGGER legacy_enqueue_from_user_documents ON user_documents;
DROP FUNCTION legacy_enqueue_from_user_documents();

CREATE TABLE legacy_redirects (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    noted_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    origin    text NOT NULL,
    job_type  text NOT NULL,
    entity_id uuid NOT NULL,
    job_id    bigint REFERENCES executor_jobs (id)
);

CREATE FUNCTION guard_executor_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_event jsonb;
    v_job_id bigint;
BEGIN
    IF current_setting('pipeline.via_gateway', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF (SELECT c.gateway_mode FROM config c) = 'strict' THEN
        RAISE EXCEPTION 'executor_jobs is written only through the gateway (gateway_mode = strict): direct insert of a % job for entity % refused',
            NEW.job_type, NEW.entity_id
            USING ERRCODE = '42501', HINT = 'append a canonical event to document_entities.events instead';
    END IF;
    v_event := jsonb_build_object(
        'id', gen_random_uuid()::text, 'type', 'job.' || NEW.job_type || '.required',
        'correlation_id', gen_random_uuid()::text, 'trace_id', replace(gen_random_uuid()::text, '-', ''),
        'causation_id', NULL,
        'payload', coalesce(NEW.payload, '{}') || jsonb_build_object('legacy_redirect', jsonb_build_object(
            'origin', NEW.materialized_via, 'dedupe_key', NEW.dedupe_key)));
    INSERT INTO document_entities (id) VALUES (NEW.entity_id) ON CONFLICT (id) DO NOTHING;
    PERFORM append_events(NEW.entity_id, jsonb_build_array(v_event));
    SELECT j.id INTO v_job_id FROM executor_jobs j
     WHERE j.entity_id = NEW.entity_id AND j.source_event_id = (v_event ->> 'id')::uuid;
    INSERT INTO legacy_redirects (origin, job_type, entity_id, job_id)
    VALUES (coalesce(NEW.materialized_via, 'direct insert'), NEW.job_type, NEW.entity_id, v_job_id);
    RETURN NULL;
END $$;

CREATE TRIGGER guard_executor_jobs BEFORE INSERT ON executor_jobs
    FOR EACH ROW EXECUTE FUNCTION guard_executor_jobs();

-- The not-enqueued runbook's remedy: every event of the last p_window_s seconds that asks for a job and
-- has none goes through the gateway now (materialized_via = replay). Returns how many jobs it made.
CREATE FUNCTION replay_unmaterialized(p_window_s numeric) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_made integer := 0;
BEGIN
    FOR r IN
        SELECT d.id AS entity_id, x.e AS event, job_for_event(x.e ->> 'type') AS job_type
          FROM document_entities d CROSS JOIN LATERAL jsonb_array_elements(d.events) WITH ORDINALITY AS x (e, n)
         WHERE job_for_event(x.e ->> 'type') IS NOT NULL
           AND (x.e ->> 'at')::timestamptz > clock_timestamp() - p_window_s * interval '1 second'
         ORDER BY d.id, x.n
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM executor_jobs j
                               WHERE j.dedupe_key = r.entity_id::text || ':' || r.job_type || ':' || (r.event ->> 'id'));
        PERFORM enqueue_from_event(r.entity_id, r.job_type, r.event, 'replay');
        v_made := v_made + 1;
    END LOOP;
    RETURN v_made;
END $$;
