-- Named queries of the decision worker (fase1-executor). Only this role claims decision jobs.

-- name: claim
SELECT * FROM claim_initial_decision_jobs(%(worker)s, %(limit)s, %(lease_seconds)s)

-- name: lock_entity_events
-- The entity's events, locked until the decision commits: two decisions for one entity never interleave.
SELECT lock_entity_events(%(entity_id)s)

-- name: append_event
SELECT append_event(%(entity_id)s, %(type)s, %(payload)s, %(correlation_id)s, %(trace_id)s, %(causation_id)s)
