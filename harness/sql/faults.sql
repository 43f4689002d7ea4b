-- Named queries of the nemesis. Each fault reads back what it did, so a fault that never bit is seen. The
-- core trigger and the tables are the RFC's names; anything else a fault needs comes from the SUT file.

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

-- name: sample_entities
-- Entities of the run's flows (those with a request event), at random.
SELECT id::text FROM {entities} AS e WHERE events @> '[{"type": "document.protect.requested"}]'
 ORDER BY random() LIMIT %(count)s

-- name: reappend_same_event
-- A writer appending an event that is already there, same id (a retried append that bypasses the API).
UPDATE document_entities SET events = events || jsonb_build_array(events -> 0) WHERE id = %(entity_id)s::uuid

-- name: reappend_same_event_array
-- The same, for a pipeline that keeps events as a Postgres array of jsonb.
UPDATE document_entities SET events = events || events[1] WHERE id = %(entity_id)s::uuid

-- name: new_entity
INSERT INTO document_entities (id) VALUES (%(entity_id)s::uuid)

-- name: append_event
-- A well-formed event appended to the authority, as any writer may: the core trigger takes it from there.
UPDATE document_entities
   SET events = events || jsonb_build_array(jsonb_build_object(
       'id', %(event_id)s::text, 'type', %(type)s::text, 'at', clock_timestamp(), 'correlation_id', %(correlation_id)s::text,
       'trace_id', %(trace_id)s::text, 'causation_id', NULL, 'payload', %(payload)s::jsonb))
 WHERE id = %(entity_id)s::uuid

-- name: append_event_array
UPDATE document_entities
   SET events = events || jsonb_build_object(
       'id', %(event_id)s::text, 'type', %(type)s::text, 'at', clock_timestamp(), 'correlation_id', %(correlation_id)s::text,
       'trace_id', %(trace_id)s::text, 'causation_id', NULL, 'payload', %(payload)s::jsonb)
 WHERE id = %(entity_id)s::uuid

-- name: dead_jobs_for
SELECT count(*) FROM {jobs} AS j WHERE entity_id::text = ANY(%(ids)s) AND status = 'dead'

-- name: in_flight
-- Jobs of a kind held by a worker right now (and the database's clock): a kill or a pause proves something
-- only when there are some.
SELECT clock_timestamp() AS now, coalesce(array_agg(id), '{}') AS ids
  FROM {jobs} AS j WHERE status = 'running' AND kind = %(kind)s

-- name: db_now
SELECT clock_timestamp()

-- name: ran_again
-- Of the jobs held when a worker was killed, those that a run started after the kill (taken back from the
-- dead worker's lease).
SELECT count(DISTINCT r.job_id) FROM {runs} AS r WHERE r.job_id = ANY(%(ids)s) AND r.started_at > %(at)s

-- name: left_behind
-- Of the jobs held when a worker was killed, those whose run from before the kill never ended: the dead
-- worker's work, which nobody ended or took back by the final read.
SELECT count(DISTINCT r.job_id) FROM {runs} AS r
 WHERE r.job_id = ANY(%(ids)s) AND r.started_at <= %(at)s AND r.finished_at IS NULL

-- name: held_through
-- Of the jobs held when a worker was paused, those whose run from before the pause was still open when it
-- was resumed, or that were taken back from its lease meanwhile (a run started during the pause).
SELECT count(DISTINCT r.job_id) FROM {runs} AS r
 WHERE r.job_id = ANY(%(ids)s)
   AND ((r.started_at <= %(paused)s AND (r.finished_at IS NULL OR r.finished_at >= %(resumed)s))
        OR (r.started_at > %(paused)s AND r.started_at < %(resumed)s))

-- name: jobs_for_sources
SELECT count(*) FROM {jobs} AS j WHERE source_event_id::text = ANY(%(ids)s)
