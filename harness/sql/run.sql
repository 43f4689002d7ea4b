-- Named queries of a chaos run: the observer's samples, the drain and the final read. `{jobs}`, `{runs}`,
-- `{entities}`, ... are the SUT contract's canonical relations (harness/sut/adapter.py puts them in).

-- name: replica_on
SET session_replication_role = replica

-- name: replica_off
SET session_replication_role = origin

-- name: sample
SELECT count(*) FILTER (WHERE status IN ('queued', 'retrying') AND coalesce(run_at, created_at) <= clock_timestamp()) AS backlog,
       coalesce(extract(epoch FROM clock_timestamp() - min(coalesce(run_at, created_at))
                FILTER (WHERE status IN ('queued', 'retrying') AND coalesce(run_at, created_at) <= clock_timestamp())), 0) AS oldest_age_s,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'retrying') AS retrying,
       count(*) FILTER (WHERE status = 'dead') AS dead
  FROM {jobs} AS j

-- name: flows_closed
SELECT count(*) FROM {entities} AS e
 WHERE events @> '[{"type": "document.anchored"}]' OR events @> '[{"type": "document.failed"}]'

-- name: alerts_firing
SELECT coalesce(array_agg(DISTINCT rule ORDER BY rule), '{}') AS firing FROM {alert_state} AS s WHERE state = 'firing'

-- name: alerts_active
-- Rules pending or firing: the drain waits for them to settle, so an alert about to fire is not cut off.
SELECT count(*) FROM {alert_state} AS s WHERE state IN ('pending', 'firing')

-- name: unfinished
-- Jobs not yet final. A retrying job counts, however far its backoff: the drain waits for it.
SELECT count(*) FROM {jobs} AS j WHERE status IN ('queued', 'running', 'retrying')

-- name: final_entities
SELECT id::text AS id, events FROM {entities} AS e ORDER BY created_at, id

-- name: final_jobs
SELECT id, job_type, kind, entity_id::text AS entity_id, dedupe_key, status, attempts, max_attempts,
       source_event_id::text AS source_event_id, correlation_id::text AS correlation_id, trace_id::text AS trace_id,
       materialized_via, last_error, extract(epoch FROM created_at)::float8 AS created_at,
       extract(epoch FROM finished_at)::float8 AS finished_at,
       extract(epoch FROM lease_expires_at)::float8 AS lease_expires_at
  FROM {jobs} AS j ORDER BY id

-- name: final_runs
SELECT id, job_id, attempt, worker, extract(epoch FROM started_at)::float8 AS started_at,
       extract(epoch FROM finished_at)::float8 AS finished_at, outcome, error,
       result_event_id::text AS result_event_id, correlation_id::text AS correlation_id, trace_id::text AS trace_id
  FROM {runs} AS r ORDER BY id

-- name: final_compat
SELECT id, extract(epoch FROM at)::float8 AS at, source, job_type, entity_id::text AS entity_id, job_id
  FROM {compat_warnings} AS w ORDER BY id

-- name: final_alerts
SELECT rule, state, from_state, extract(epoch FROM at)::float8 AS at, value::float8 AS value, for_s::float8 AS for_s,
       extract(epoch FROM active_since)::float8 AS active_since
  FROM {alert_history} AS h ORDER BY at, id

-- name: final_job_types
SELECT name, kind FROM {job_types} AS t

-- name: final_settings
SELECT key, value::text AS value FROM {settings} AS s

-- name: read_at
SELECT extract(epoch FROM clock_timestamp())::float8

-- name: final_kpi
-- The pipeline's own event_to_job_gap KPI ([reads] kpi): one row per job.<type>.required event it knows.
SELECT entity_id::text AS entity_id, event_id::text AS event_id, status::text AS status FROM {kpi} AS k

-- name: progress
-- What moves while a pipeline works: jobs by status, runs started and ended. Unchanged for a while with work
-- left and nothing scheduled for later means nothing will move any more. Scheduled: a retry's backoff, and a
-- running job whose lease has not expired yet (a killed worker's job moves again only once its lease ends).
SELECT (SELECT count(*) FILTER (WHERE status IN ('queued', 'running', 'retrying')) FROM {jobs} AS j) AS unfinished,
       (SELECT count(*) FROM {jobs} AS j) AS jobs,
       (SELECT count(*) FILTER (WHERE status IN ('succeeded', 'dead')) FROM {jobs} AS j) AS final,
       (SELECT count(*) FROM {runs} AS r) AS runs,
       (SELECT count(*) FILTER (WHERE finished_at IS NOT NULL) FROM {runs} AS r) AS runs_ended,
       (SELECT count(*) FILTER (WHERE (status IN ('queued', 'retrying') AND run_at > clock_timestamp())
                                   OR (status = 'running' AND lease_expires_at > clock_timestamp()))
          FROM {jobs} AS j) AS scheduled_later
