-- Named queries of `harness bench`: the raw-SQL baselines and the seeding they need.

-- name: new_entities
INSERT INTO document_entities (id) SELECT gen_random_uuid() FROM generate_series(1, %(count)s) RETURNING id

-- name: new_numbered_entities
-- Entities whose ids a load client can compute (md5 of 'bench-' and a number from 0), for pgbench.
INSERT INTO document_entities (id) SELECT md5('bench-' || n)::uuid FROM generate_series(0, %(count)s - 1) n

-- name: prefill_events
-- Gives every entity %(count)s events shaped like append_event's that need no job, so the appends after it
-- rewrite long lists. (One list for all: event ids need only be unique within an entity.)
UPDATE document_entities
   SET events = (SELECT jsonb_agg(jsonb_build_object(
                            'id', gen_random_uuid(), 'type', 'document.note.added', 'at', clock_timestamp(),
                            'correlation_id', NULL, 'trace_id', new_trace_id(), 'causation_id', NULL,
                            'payload', jsonb_build_object('note', 'bench')))
                   FROM generate_series(1, %(count)s))

-- name: require_protect
SELECT append_event(%(entity_id)s, 'job.protect.required', '{"document": "bench"}')

-- name: started_requests
-- Entities whose flow has started (a request, then its protect job required), each created with both events:
-- the core trigger gives each a decide_request job whose decision appends nothing, and a protect job nobody
-- claims while the decision worker is measured.
INSERT INTO document_entities (id, events)
SELECT gen_random_uuid(),
       jsonb_build_array(
           jsonb_build_object('id', gen_random_uuid(), 'type', 'document.protect.requested', 'at', clock_timestamp(),
                              'correlation_id', c, 'trace_id', new_trace_id(), 'causation_id', NULL,
                              'payload', jsonb_build_object('document', 'bench')),
           jsonb_build_object('id', gen_random_uuid(), 'type', 'job.protect.required', 'at', clock_timestamp(),
                              'correlation_id', c, 'trace_id', new_trace_id(), 'causation_id', NULL,
                              'payload', jsonb_build_object('document', 'bench')))
  FROM generate_series(1, %(count)s), LATERAL (SELECT gen_random_uuid() AS c) corr

-- name: claim_execution
SELECT job_id, run_id FROM claim_orchestrator_jobs('bench-raw', %(limit)s)

-- name: claim_decision
SELECT job_id, run_id, entity_id FROM claim_initial_decision_jobs('bench-raw', %(limit)s)

-- name: complete
-- A batch's completions in one statement, as the workers write them.
SELECT count(*) FROM complete_jobs(%(job_ids)s::bigint[], %(run_ids)s::bigint[],
                                   array_fill('{"sha256": "bench"}'::jsonb, ARRAY[cardinality(%(job_ids)s::bigint[])]))

-- name: work_left
-- Whether work of a kind is left, read from the reference pipeline's claim queue: the probe polls while the
-- worker is measured, so it must not load the server (a count over the table did, by a few percent).
SELECT EXISTS (SELECT 1 FROM executor_job_queue WHERE kind = %(kind)s AND state IN ('ready', 'leased'))

-- name: work_remaining
-- The jobs of a kind not done yet, counted once when the clock starts: the worker starts draining as soon as
-- it is connected, a moment before the harness sees it announce itself.
SELECT count(*) FROM executor_job_queue WHERE kind = %(kind)s AND state IN ('ready', 'leased')

-- name: worker_backends
-- The backends of one worker process, found by the name it gives its connections: role@host:pid, with a
-- /suffix on all but the first; the name parameter is a LIKE pattern for the first: any text, a colon, the pid.
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database()
   AND (application_name LIKE %(name)s OR application_name LIKE %(name)s || '/%%')

-- name: reset_queue
TRUNCATE executor_job_runs, executor_jobs, document_entities, user_documents, compat_warnings

-- name: autovacuum_naptime_s
-- How often autovacuum wakes, in seconds: the claim queue stays lean only if it wakes often.
SELECT setting::int FROM pg_settings WHERE name = 'autovacuum_naptime'

-- name: lock_entities
-- The decision worker's lock and read of its batch's entities.
SELECT count(*) FROM lock_entities_events(%(entity_ids)s::uuid[])
