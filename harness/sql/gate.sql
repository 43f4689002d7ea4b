-- Named queries of `harness gate`: the evidence each phase criterion reads. Format: `-- name: <query>`.

-- `{jobs}`, `{runs}`, `{entities}`, `{compat_warnings}` are the pipeline's canonical relations (the SUT
-- contract, harness/sut/adapter.py): the gate judges any pipeline through them.

-- name: flow_closed
SELECT events @> '[{"type": "document.anchored"}]' OR events @> '[{"type": "document.failed"}]'
  FROM {entities} AS e WHERE id = %(entity_id)s::uuid

-- name: via_of_entities
SELECT materialized_via, count(*) AS jobs FROM {jobs} AS j WHERE entity_id::text = ANY(%(ids)s) GROUP BY 1 ORDER BY 1

-- name: ids_missing
-- Jobs and runs of the given entities that lack a correlation or trace id.
SELECT (SELECT count(*) FROM {jobs} AS j WHERE entity_id::text = ANY(%(ids)s)
                                           AND (correlation_id IS NULL OR trace_id IS NULL)) AS jobs,
       (SELECT count(*) FROM {runs} AS r JOIN {jobs} AS j ON j.id = r.job_id
         WHERE j.entity_id::text = ANY(%(ids)s) AND (r.correlation_id IS NULL OR r.trace_id IS NULL)) AS runs

-- name: via_in_window
SELECT materialized_via, count(*) AS jobs FROM {jobs} AS j
 WHERE created_at > clock_timestamp() - make_interval(secs => %(window_s)s) GROUP BY 1 ORDER BY 1

-- name: compat_warnings_in_window
SELECT count(*) AS warnings, min(at) AS first, max(at) AS last FROM {compat_warnings} AS w
 WHERE at > clock_timestamp() - make_interval(secs => %(window_s)s)

-- name: relations_like
SELECT c.relname AS name, c.relkind AS kind FROM pg_class c
 WHERE c.relname LIKE %(pattern)s AND c.relkind IN ('r', 'v', 'm', 'p') AND pg_table_is_visible(c.oid)
 ORDER BY 1

-- name: functions_like
SELECT DISTINCT p.proname AS name FROM pg_proc p
 WHERE p.proname LIKE %(pattern)s AND pg_function_is_visible(p.oid) ORDER BY 1

-- name: alert_rules
SELECT name, coalesce(metric, '') AS metric FROM alert_rules ORDER BY name

-- name: execution_types
SELECT name FROM job_types WHERE kind = 'execution' ORDER BY name

-- name: pack_installed
-- The harness's observability pack (harness obs install): the KPI and the RFC's alerts for a pipeline that
-- has none of its own.
SELECT to_regclass('harness_obs.event_to_job_gap') IS NOT NULL AS kpi, to_regclass('harness_obs.rules') IS NOT NULL AS rules

-- name: pack_rules
SELECT name, name AS metric FROM harness_obs.rules ORDER BY name
