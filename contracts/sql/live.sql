-- Named queries of the live-schema contracts. Format: a `-- name: <query>` line, then one statement.
-- Catalog reads honour the search_path (pg_table_is_visible / pg_function_is_visible), as the pipeline does.

-- name: server
SELECT current_database() AS database, current_user AS "user", current_setting('server_version') AS version

-- name: triggers
-- Every user trigger on the named tables, with its state: O origin (enabled), A always, R replica only,
-- D disabled.
SELECT t.tgname AS name, c.relname AS "table", t.tgenabled AS enabled, p.proname AS function, t.tgfoid AS function_oid
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE NOT t.tgisinternal AND c.relname = ANY(%(tables)s) AND pg_table_is_visible(c.oid)
 ORDER BY c.relname, t.tgname

-- name: function
SELECT p.oid, p.proname AS name, p.prosecdef AS security_definer, p.proconfig AS config, l.lanname AS language,
       pg_get_functiondef(p.oid) AS definition
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.proname = %(name)s AND p.prokind = 'f' AND pg_function_is_visible(p.oid)
 ORDER BY p.oid

-- name: job_types
SELECT name, kind FROM job_types ORDER BY name

-- name: gateway_mode
SELECT coalesce((SELECT value FROM pipeline_settings WHERE key = 'gateway_mode'), 'compat') AS mode

-- name: role_privileges
SELECT r.rolname AS role, has_table_privilege(r.oid, 'executor_jobs', 'INSERT') AS can_insert
  FROM pg_roles r WHERE r.rolname = ANY(%(roles)s) ORDER BY r.rolname

-- name: probe_settings
-- Every probe runs in a transaction that is always rolled back; these bound how long it may wait.
SELECT set_config('lock_timeout', '5s', true), set_config('statement_timeout', '30s', true)

-- name: seed_entity
INSERT INTO document_entities (id, owner_id) VALUES (%(entity_id)s, 'contracts-probe')

-- name: materialize
SELECT * FROM {gateway}(%(job_type)s, %(entity_id)s, %(source_event_id)s, jsonb_build_object(), NULL, NULL,
                       'contracts_probe')

-- name: prioritize
-- The seeded jobs go first in claim order, so a busy queue cannot hide them from the probe.
UPDATE executor_jobs SET run_at = '-infinity' WHERE id = ANY(%(ids)s)

-- name: claim_decision
SELECT * FROM claim_initial_decision_jobs('contracts-probe', %(limit)s)

-- name: claim_execution
SELECT * FROM claim_orchestrator_jobs('contracts-probe', %(limit)s)

-- name: kinds_of_jobs
SELECT j.id, j.job_type, t.kind FROM executor_jobs j JOIN job_types t ON t.name = j.job_type
 WHERE j.id = ANY(%(ids)s)

-- name: set_gateway_mode_local
UPDATE pipeline_settings SET value = %(mode)s WHERE key = 'gateway_mode'

-- name: direct_insert
-- The PGC006 probe: the one direct insert the contracts make, in a rolled-back transaction.
INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, materialized_via)
VALUES (%(job_type)s, 'execution', %(entity_id)s, %(dedupe_key)s, %(source_event_id)s, 'contracts_probe_direct')

-- name: after_direct_insert
SELECT (SELECT count(*) FROM executor_jobs WHERE dedupe_key = %(dedupe_key)s) AS direct_rows,
       (SELECT count(*) FROM executor_jobs WHERE entity_id = %(entity_id)s
                                             AND materialized_via = 'compat_redirect') AS redirected_rows,
       (SELECT count(*) FROM compat_warnings WHERE entity_id = %(entity_id)s) AS warnings
