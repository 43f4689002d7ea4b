-- Named queries of the web dashboard. It reads as pipeline_reader in read-only transactions: the views and
-- functions of migration 0010 (each bounded to a recent slice), never the whole history.

-- name: missing_objects
-- The observability schema the dashboard needs; rows name what is missing.
SELECT name FROM unnest(ARRAY['document_entities', 'executor_jobs', 'alert_state', 'alert_history', 'alert_rules',
                              'dashboard_recent_events', 'dashboard_jobs_per_entity', 'dashboard_job_runs',
                              'dashboard_runs_with_errors', 'dashboard_backlog', 'dashboard_workers']) name
 WHERE to_regclass(name) IS NULL
UNION ALL
SELECT 'function event_to_job_gap_series' WHERE to_regproc('event_to_job_gap_series') IS NULL
UNION ALL
SELECT 'role ' || %(role)s WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s)

-- name: set_role
SELECT set_config('role', %(role)s, false)

-- name: read_only
SET default_transaction_read_only = on

-- name: overview
SELECT pipeline_setting('alert_profile', 'production') AS profile,
       pipeline_setting('gap_delta_s_default', '60')::double precision AS delta_s,
       pipeline_setting('gap_window_s', '900')::double precision AS window_s,
       pipeline_setting('monitor_interval_s', '15')::double precision AS interval_s,
       pipeline_setting('gateway_mode', 'compat') AS gateway_mode,
       core_trigger_enabled() AS core_trigger_enabled,
       clock_timestamp() AS now

-- name: alerts
-- Every series of every rule: its state and value against its threshold.
SELECT s.rule, s.labels, s.state, s.value, r.op, s.threshold, s.for_s, s.active_since, s.fired_at,
       r.severity, r.runbook
  FROM alert_state s JOIN alert_rules r ON r.name = s.rule
 ORDER BY CASE s.state WHEN 'firing' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, s.rule, s.labels

-- name: alert_history
SELECT at, rule, labels, from_state, to_state, value, threshold FROM alert_history ORDER BY id DESC LIMIT 30

-- name: gap_stats
SELECT * FROM event_to_job_gap_stats()

-- name: gap_series
SELECT bucket_start, events, p50_s, p95_s, max_s, breached, delta_s
  FROM event_to_job_gap_series(%(window_s)s, %(bucket_s)s)

-- name: gap_breaches
SELECT entity_id, event_id, job_type, event_at, round(age_s::numeric, 1) AS age_s, delta_s
  FROM event_to_job_gap_breaches() LIMIT 20

-- name: backlog
SELECT kind, ready, round(oldest_ready_age_s::numeric, 2) AS oldest_ready_age_s, queued, retrying, running,
       expired_leases, dead
  FROM dashboard_backlog

-- name: recent_events
SELECT at, type, entity_id, event_id, correlation_id, trace_id FROM dashboard_recent_events LIMIT 40

-- name: jobs_per_entity
SELECT entity_id, jobs, succeeded, open, retrying, dead, path, last_change FROM dashboard_jobs_per_entity LIMIT 20

-- name: job_runs
SELECT job_id, job_type, entity_id, status, attempts, runs, failed_runs, last_error FROM dashboard_job_runs LIMIT 25

-- name: runs_with_errors
SELECT run_id, job_id, job_type, entity_id, attempt, worker, outcome, error, finished_at
  FROM dashboard_runs_with_errors LIMIT 25

-- name: workers
SELECT role, worker_id, live, round(silent_s::numeric, 1) AS silent_s, jobs_done, started_at FROM dashboard_workers
