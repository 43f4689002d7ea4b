-- Named queries of `harness drill`: planting and healing the faults behind the runbooks, and watching alerts.

-- name: apply_alert_profile
SELECT apply_alert_profile(%(profile)s)

-- name: db_now
SELECT clock_timestamp()

-- name: disable_core_trigger
ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change

-- name: enable_core_trigger
ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change

-- name: replay
SELECT replay_unmaterialized_events(%(window_s)s)

-- name: arm_failpoint
SELECT arm_failpoint(%(name)s, %(action)s)

-- name: disarm_failpoint
SELECT disarm_failpoint(%(name)s)

-- name: first_firing
-- The first of the given rules to fire at or after a time (the drill's detection).
SELECT rule, labels, at, value FROM alert_history
 WHERE to_state = 'firing' AND at >= %(since)s AND rule = ANY(%(rules)s)
 ORDER BY at, id LIMIT 1

-- name: active_alerts
SELECT rule, labels, state, value, active_since, fired_at FROM alert_state
 WHERE state IN ('pending', 'firing') ORDER BY rule, labels

-- name: transitions_since
SELECT at, rule, labels, from_state, to_state, value FROM alert_history WHERE at >= %(since)s ORDER BY id
