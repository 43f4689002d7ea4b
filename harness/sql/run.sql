-- Named queries of a chaos run: the workload's writes, the observer's samples, the drain and the final read.

-- name: request
SELECT request_protection(%(entity_id)s, %(document)s, 'workload', NULL, NULL, %(event_id)s)

-- name: replica_on
SET session_replication_role = replica

-- name: replica_off
SET session_replication_role = origin

-- name: sample
SELECT count(*) FILTER (WHERE status IN ('queued', 'retrying') AND run_at <= clock_timestamp()) AS backlog,
       coalesce(extract(epoch FROM clock_timestamp() - min(run_at)
                FILTER (WHERE status IN ('queued', 'retrying') AND run_at <= clock_timestamp())), 0) AS oldest_age_s,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'retrying') AS retrying,
       count(*) FILTER (WHERE status = 'dead') AS dead
  FROM executor_jobs

-- name: flows_closed
SELECT count(*) FROM document_entities
 WHERE events @> '[{"type": "document.anchored"}]' OR events @> '[{"type": "document.failed"}]'

-- name: alerts_firing
SELECT CASE WHEN to_regclass('alert_state') IS NULL THEN NULL
            ELSE (SELECT coalesce(array_agg(DISTINCT rule ORDER BY rule), '{}') FROM alert_state WHERE state = 'firing')
       END

-- name: alerts_active
-- Rules pending or firing: the drain waits for them to settle, so an alert about to fire is not cut off.
SELECT CASE WHEN to_regclass('alert_state') IS NULL THEN 0
            ELSE (SELECT count(*) FROM alert_state WHERE state IN ('pending', 'firing')) END

-- name: unfinished
-- Jobs not yet final. A retrying job counts, however far its backoff: the drain waits for it.
SELECT count(*) FROM executor_jobs WHERE status IN ('queued', 'running', 'retrying')

-- name: apply_profile
SELECT apply_alert_profile(%(profile)s)

-- name: has_profiles
SELECT to_regprocedure('apply_alert_profile(text)') IS NOT NULL

-- name: final_entities
SELECT id::text AS id, events FROM document_entities ORDER BY created_at, id

-- name: final_jobs
SELECT id, job_type, kind, entity_id::text AS entity_id, dedupe_key, status, attempts, max_attempts,
       source_event_id::text AS source_event_id, correlation_id::text AS correlation_id, trace_id,
       materialized_via, last_error, extract(epoch FROM created_at)::float8 AS created_at,
       extract(epoch FROM finished_at)::float8 AS finished_at
  FROM executor_jobs ORDER BY id

-- name: final_runs
SELECT id, job_id, attempt, worker, extract(epoch FROM started_at)::float8 AS started_at,
       extract(epoch FROM finished_at)::float8 AS finished_at, outcome, error,
       result_event_id::text AS result_event_id, correlation_id::text AS correlation_id, trace_id
  FROM executor_job_runs ORDER BY id

-- name: final_compat
SELECT id, extract(epoch FROM at)::float8 AS at, source, job_type, entity_id::text AS entity_id, job_id
  FROM compat_warnings ORDER BY id

-- name: has_alert_history
SELECT to_regclass('alert_history') IS NOT NULL

-- name: final_alerts
SELECT rule, to_state AS state, extract(epoch FROM at)::float8 AS at, value FROM alert_history ORDER BY at, id

-- name: final_job_types
SELECT name, kind FROM job_types

-- name: final_settings
SELECT key, value FROM pipeline_settings
