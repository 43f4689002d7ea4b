-- Named queries of `harness load`: what a load run requested, read back from the pipeline's database.

-- name: requested
-- Every entity the load's users created: owned by the run's owner where the pipeline keeps an owner, else
-- every entity with a request (the load runs on a database of its own).
SELECT id::text FROM {entities} AS e
 WHERE (owner = %(owner)s OR (%(any_owner)s AND events @> '[{"type": "document.protect.requested"}]'))

-- name: gaps
-- event_to_job_gap in ms of every job.<type>.required event of those entities: how long its job took to
-- exist (the RFC's KPI); NULL when it has no job.
SELECT extract(epoch FROM j.created_at - (x ->> 'at')::timestamptz) * 1000
  FROM {entities} AS e
 CROSS JOIN LATERAL jsonb_array_elements(e.events) x
  LEFT JOIN LATERAL (SELECT min(j.created_at) AS created_at FROM {jobs} AS j
                      WHERE j.entity_id = e.id AND j.source_event_id::text = x ->> 'id') j ON true
 WHERE e.id::text = ANY(%(ids)s) AND x ->> 'type' ~ '^job\.[a-z0-9_]+\.required$'
