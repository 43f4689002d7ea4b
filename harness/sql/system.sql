-- Named queries the harness runs against a pipeline's SQL contract: reading one entity's path, and whether
-- flows closed. `{entities}`, `{jobs}`, `{runs}` are the contract's canonical relations.

-- name: entity_exists
SELECT EXISTS (SELECT 1 FROM {entities} AS e WHERE id = %(entity_id)s::uuid)

-- name: entity_events
SELECT events FROM {entities} AS e WHERE id = %(entity_id)s::uuid

-- name: entity_jobs
SELECT id, job_type, kind, status, attempts, max_attempts, dedupe_key, source_event_id, correlation_id, trace_id,
       materialized_via, last_error, created_at, finished_at
  FROM {jobs} AS j WHERE entity_id = %(entity_id)s::uuid ORDER BY id

-- name: entity_runs
SELECT r.id, r.job_id, r.attempt, r.worker, r.started_at, r.finished_at, r.outcome, r.error, r.result_event_id,
       r.correlation_id, r.trace_id
  FROM {runs} AS r JOIN {jobs} AS j ON j.id = r.job_id
 WHERE j.entity_id = %(entity_id)s::uuid ORDER BY r.id

-- name: flows_closed
-- Entities among the given ids whose flow has ended, with the request time and the closing time.
SELECT e.id AS entity_id, req.at AS requested_at, fin.type AS closed_as, fin.at AS closed_at
  FROM {entities} AS e
  CROSS JOIN LATERAL (SELECT (x ->> 'at')::timestamptz AS at FROM jsonb_array_elements(e.events) x
                       WHERE x ->> 'type' = 'document.protect.requested' LIMIT 1) req
  CROSS JOIN LATERAL (SELECT x ->> 'type' AS type, (x ->> 'at')::timestamptz AS at FROM jsonb_array_elements(e.events) x
                       WHERE x ->> 'type' IN ('document.anchored', 'document.failed') LIMIT 1) fin
 WHERE e.id::text = ANY(%(ids)s)

-- name: count_closed
SELECT count(*) FROM {entities} AS e
 WHERE id::text = ANY(%(ids)s)
   AND (events @> '[{"type": "document.anchored"}]' OR events @> '[{"type": "document.failed"}]')

-- name: live_workers
-- Workers that have announced themselves (the pipeline's heartbeats).
SELECT count(*) FROM worker_heartbeats WHERE pid = ANY(%(pids)s)
