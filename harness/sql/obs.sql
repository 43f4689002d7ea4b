-- Named queries on the harness's observability pack (schema harness_obs, harness/observability/pack.sql).

-- name: apply_profile
SELECT harness_obs.apply_profile(%(profile)s)

-- name: set
INSERT INTO harness_obs.settings (key, value) VALUES (%(key)s, %(value)s)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value

-- name: drop_rule
DELETE FROM harness_obs.rules WHERE name = %(rule)s

-- name: evaluate
SELECT rule, state, value FROM harness_obs.evaluate()

-- name: firing
SELECT rule FROM harness_obs.alert_state WHERE state = 'firing' ORDER BY rule

-- name: active
SELECT count(*) FROM harness_obs.alert_state WHERE state <> 'inactive'

-- name: history
SELECT rule, to_state AS state, from_state, extract(epoch FROM at)::float8 AS at, value, for_s,
       extract(epoch FROM active_since)::float8 AS active_since
  FROM harness_obs.alert_history ORDER BY at, id

-- name: states
SELECT s.rule, s.state, s.value, r.threshold, s.active_since, s.fired_at, r.summary
  FROM harness_obs.alert_state s JOIN harness_obs.rules r ON r.name = s.rule ORDER BY s.rule

-- name: installed
SELECT to_regprocedure('harness_obs.evaluate(timestamp with time zone)') IS NOT NULL
