-- Named queries of the decision worker (fase1-executor). Only this role claims decision jobs.

-- name: claim
-- Only the columns the worker reads: every other one is parsed into Python for nothing (a payload is JSON).
SELECT job_id, run_id, entity_id FROM claim_initial_decision_jobs(%(worker)s, %(limit)s, %(lease_seconds)s)

-- name: lock_entities_events
-- The batch's entities with their events, locked in id order until the decisions commit: two decisions for one
-- entity never interleave, and two decision workers never deadlock.
SELECT entity_id, events FROM lock_entities_events(%(entity_ids)b::uuid[])

-- name: append_events
-- Every decided event of the batch in one statement, in the order given; ids chosen here, so the completions
-- can be sent in the same pipeline.
SELECT count(*) FROM append_events(%(entity_ids)b::uuid[], %(types)b::text[], %(payloads)b::jsonb[],
                                   %(correlation_ids)b::uuid[], %(trace_ids)b::text[],
                                   %(causation_ids)b::uuid[], %(event_ids)b::uuid[])
