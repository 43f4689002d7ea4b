-- Named queries of the nemesis. Each fault reads back what it did, so a fault that never bit is seen.

-- name: trigger_state
-- 'O' enabled, 'D' disabled, 'R'/'A' replica/always; no row: the trigger does not exist.
SELECT t.tgenabled::text FROM pg_trigger t
 WHERE t.tgrelid = 'document_entities'::regclass AND t.tgname = %(name)s AND NOT t.tgisinternal

-- name: trigger_def
SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
 WHERE t.tgrelid = 'document_entities'::regclass AND t.tgname = %(name)s

-- name: disable_core_trigger
ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change

-- name: enable_core_trigger
ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change

-- name: drop_core_trigger
DROP TRIGGER IF EXISTS on_document_entity_events_change ON document_entities

-- name: disable_projection_trigger
ALTER TABLE document_entities DISABLE TRIGGER project_user_documents

-- name: enable_projection_trigger
ALTER TABLE document_entities ENABLE TRIGGER project_user_documents

-- name: replay_available
SELECT to_regprocedure('replay_unmaterialized_events(double precision)') IS NOT NULL

-- name: replay_missed
-- The runbook's remedy after the core trigger was off: materialize every event that has no job.
SELECT replay_unmaterialized_events(%(window_s)s)

-- name: arm_failpoint
SELECT arm_failpoint(%(name)s, %(action)s)

-- name: failpoint_hits
SELECT coalesce((SELECT hits FROM failpoints WHERE name = %(name)s), 0)

-- name: disarm_failpoint
SELECT disarm_failpoint(%(name)s)

-- name: gateway_mode
SELECT pipeline_setting('gateway_mode', 'compat')

-- name: set_gateway_mode
UPDATE pipeline_settings SET value = %(mode)s WHERE key = 'gateway_mode'

-- name: sample_entities
SELECT id FROM document_entities ORDER BY random() LIMIT %(count)s

-- name: legacy_insert
-- The statement the legacy path ran: a job straight into the queue, no canonical event behind it.
INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, payload, source_event_id, materialized_via)
VALUES ('protect', 'execution', %(entity_id)s::uuid, 'legacy:' || %(entity_id)s::text || ':' || gen_random_uuid(),
        jsonb_build_object('document', 'legacy copy of ' || %(entity_id)s::text), gen_random_uuid(),
        'legacy:user_documents')

-- name: reappend_same_event
-- A writer appending an event that is already there, same id (a retried append that bypasses the API).
UPDATE document_entities SET events = events || jsonb_build_array(events -> 0) WHERE id = %(entity_id)s

-- name: request_again
SELECT request_protection(%(entity_id)s, 'the same document, asked again')

-- name: poison_entity
INSERT INTO document_entities (id, owner_id) VALUES (%(entity_id)s, 'nemesis:poison')

-- name: poison_event
-- A job whose payload no handler can process, however often it is retried.
SELECT append_event(%(entity_id)s, 'job.protect.required', '{"document": {"not": "a string"}}')

-- name: dead_jobs_for
SELECT count(*) FROM executor_jobs WHERE entity_id = ANY(%(ids)s) AND status = 'dead'
