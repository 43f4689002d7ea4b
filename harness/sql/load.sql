-- Named queries of `harness load`: what a load run requested, read back from the pipeline's database.

-- name: requested
-- Every entity the load's users created (each request is a new entity owned by the run's owner).
SELECT id::text FROM document_entities WHERE owner_id = %(owner)s

-- name: gaps
-- event_to_job_gap in ms of every job.<type>.required event of those entities: how long its job took to
-- exist (the RFC's KPI); NULL when it has no job.
SELECT extract(epoch FROM j.created_at - (x ->> 'at')::timestamptz) * 1000
  FROM document_entities e
 CROSS JOIN LATERAL jsonb_array_elements(e.events) x
  LEFT JOIN LATERAL (SELECT min(j.created_at) AS created_at FROM executor_jobs j
                      WHERE j.entity_id = e.id AND j.source_event_id = (x ->> 'id')::uuid) j ON true
 WHERE e.owner_id = %(owner)s AND x ->> 'type' ~ '^job\.[a-z0-9_]+\.required$'
