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

-- name: arm_failpoint_quietly
-- The failpoint row without arm_failpoint's NOTIFY: workers read it when they (re)connect. (A run-time NOTIFY
-- currently deadlocks running workers: Worker._wait queries the connection inside psycopg's notifies().)
INSERT INTO failpoints AS f (name, action) VALUES (%(name)s, %(action)s)
ON CONFLICT (name) DO UPDATE SET action = EXCLUDED.action, hits = 0, armed_at = clock_timestamp()

-- name: disarm_failpoint_quietly
DELETE FROM failpoints WHERE name = %(name)s

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
