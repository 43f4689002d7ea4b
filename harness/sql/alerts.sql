-- Named queries of `harness alerts export`: the pipeline's alert rules with the numbers of a profile.

-- name: has_rules
SELECT to_regclass('alert_rules_current') IS NOT NULL

-- name: profiles
SELECT DISTINCT profile FROM alert_profiles ORDER BY profile

-- name: apply_profile
-- Run inside a transaction that is rolled back: the export never changes the database.
SELECT apply_alert_profile(%(profile)s)

-- name: rules
SELECT name, metric, op, threshold, for_s, severity, summary, runbook, promql,
       pipeline_setting('monitor_interval_s', '15')::double precision AS interval_s,
       pipeline_setting('alert_profile', 'production') AS profile,
       CASE WHEN name = 'worker_role_absent'
            THEN string_to_array(pipeline_setting('monitor_expected_roles', ''), ',') END AS roles
  FROM alert_rules_current ORDER BY name
