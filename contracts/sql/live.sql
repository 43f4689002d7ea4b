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

-- == The reference's probe statements =======================================================================
-- Defaults of the config keys of the same purpose (contracts/config.py STATEMENTS); a pipeline with other
-- shapes gives its own in its contracts config. Each runs inside a transaction that is always rolled back.

-- name: gateway_mode
-- gateway_mode_read: the gateway mode in force (compat or strict).
SELECT coalesce((SELECT value FROM pipeline_settings WHERE key = 'gateway_mode'), 'compat') AS mode

-- name: set_gateway_mode_local
-- gateway_mode_set: switch the mode, inside the probe's rolled-back transaction only.
UPDATE pipeline_settings SET value = %(mode)s WHERE key = 'gateway_mode'

-- name: compat_warnings_of_entity
-- compat_warnings_read: the compat warnings recorded for one entity, one row each.
SELECT * FROM compat_warnings WHERE entity_id = %(entity_id)s

-- name: seed_entity
-- entity_insert: a fresh entity for a probe.
INSERT INTO document_entities (id, owner_id) VALUES (%(entity_id)s, 'contracts-probe')

-- name: materialize
-- gateway_call: the gateway, called once for one source event ({gateway}: the first of gateway_functions).
SELECT * FROM {gateway}(%(job_type)s, %(entity_id)s, %(source_event_id)s, jsonb_build_object(), NULL, NULL,
                       'contracts_probe')

-- name: claim
-- [claim_calls]: one claim function ({claim}) called once by a probe worker.
SELECT * FROM {claim}(%(worker)s, %(limit)s)

-- name: append_probe_event
-- event_append (PGC011): one well-formed event appended to an entity as any writer would (a raw append to
-- events), so the core trigger, and nothing else, decides what it becomes.
UPDATE document_entities
   SET events = events || jsonb_build_array(jsonb_build_object(
           'id', %(event_id)s::text, 'type', %(type)s::text, 'at', clock_timestamp(),
           'correlation_id', %(correlation_id)s::text, 'trace_id', %(trace_id)s::text, 'causation_id', NULL,
           'payload', jsonb_build_object('contracts_probe', true)))
 WHERE id = %(entity_id)s

-- == The checker's own probe statements: only the RFC's relations and the SUT contract's columns ==========

-- name: probe_settings
-- Every probe runs in a transaction that is always rolled back; these bound how long it may wait.
SELECT set_config('lock_timeout', '5s', true), set_config('statement_timeout', '30s', true)

-- name: queue_columns
-- The columns of executor_jobs: the probes use the optional ones (kind, run_at, materialized_via) only
-- where they exist.
SELECT a.attname AS name FROM pg_attribute a
 WHERE a.attrelid = to_regclass('executor_jobs') AND a.attnum > 0 AND NOT a.attisdropped

-- name: prioritize
-- The seeded jobs go first in claim order, so a busy queue cannot hide them from the probe.
UPDATE executor_jobs SET run_at = '-infinity' WHERE id = ANY(%(ids)s)

-- name: kinds_of_jobs
SELECT j.id, j.job_type, t.kind FROM executor_jobs j JOIN job_types t ON t.name = j.job_type
 WHERE j.id = ANY(%(ids)s)

-- name: direct_insert
-- The PGC006 probe: the one direct insert the contracts make, in a rolled-back transaction, with the SUT
-- contract's columns and the optional kind and materialized_via (the reference's queue requires both). The
-- variants below leave out whichever of those executor_jobs does not have.
INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, materialized_via)
VALUES (%(job_type)s, (SELECT t.kind FROM job_types t WHERE t.name = %(job_type)s), %(entity_id)s,
        %(dedupe_key)s, %(source_event_id)s, 'contracts_probe_direct')

-- name: direct_insert_without_kind
INSERT INTO executor_jobs (job_type, entity_id, dedupe_key, source_event_id, materialized_via)
VALUES (%(job_type)s, %(entity_id)s, %(dedupe_key)s, %(source_event_id)s, 'contracts_probe_direct')

-- name: direct_insert_without_via
INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id)
VALUES (%(job_type)s, (SELECT t.kind FROM job_types t WHERE t.name = %(job_type)s), %(entity_id)s,
        %(dedupe_key)s, %(source_event_id)s)

-- name: direct_insert_without_kind_or_via
INSERT INTO executor_jobs (job_type, entity_id, dedupe_key, source_event_id)
VALUES (%(job_type)s, %(entity_id)s, %(dedupe_key)s, %(source_event_id)s)

-- name: after_direct_insert
-- What became of it: rows kept as inserted (its dedupe key), and the other jobs of its fresh entity (only a
-- redirect through the gateway can have made them), with how they say they were made.
SELECT (SELECT count(*) FROM executor_jobs WHERE dedupe_key = %(dedupe_key)s) AS direct_rows,
       (SELECT count(*) FROM executor_jobs WHERE entity_id = %(entity_id)s
                                             AND dedupe_key <> %(dedupe_key)s) AS redirected_rows,
       (SELECT coalesce(array_agg(DISTINCT coalesce(to_jsonb(j) ->> 'materialized_via', '?')), '{}')
          FROM executor_jobs j WHERE j.entity_id = %(entity_id)s AND j.dedupe_key <> %(dedupe_key)s) AS via

-- name: role_insert_paths
-- PGC008: every role a worker role reaches (itself, roles it is a member of directly or indirectly, with or
-- without INHERIT) and whether that role can INSERT into executor_jobs by any grant: table or column level,
-- to it or to PUBLIC, as owner, superuser or through a predefined role (has_any_column_privilege counts all
-- of them). `inherits`: the worker holds that role's privileges without asking; `can_set`: it may SET ROLE
-- to it.
WITH queue AS (SELECT to_regclass('executor_jobs') AS oid)
SELECT w.rolname AS worker, r.rolname AS via, w.oid = r.oid AS itself, r.rolsuper AS superuser,
       pg_has_role(w.oid, r.oid, 'USAGE') AS inherits, pg_has_role(w.oid, r.oid, 'SET') AS can_set,
       coalesce(has_any_column_privilege(r.oid, q.oid, 'INSERT'), false) AS can_insert,
       coalesce(has_table_privilege(r.oid, q.oid, 'INSERT'), false) AS table_level,
       (SELECT c.relowner = r.oid FROM pg_class c WHERE c.oid = q.oid) AS owner,
       EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                WHERE c.oid = q.oid AND a.privilege_type = 'INSERT' AND a.grantee = 0) AS public_grant,
       (SELECT array_agg(DISTINCT att.attname::text ORDER BY att.attname::text)
          FROM pg_attribute att, aclexplode(att.attacl) a
         WHERE att.attrelid = q.oid AND a.privilege_type = 'INSERT' AND a.grantee IN (r.oid, 0)) AS columns
  FROM pg_roles w
  JOIN pg_roles r ON r.oid = w.oid OR pg_has_role(w.oid, r.oid, 'MEMBER')
 CROSS JOIN queue q
 WHERE w.rolname = ANY(%(roles)s)
 ORDER BY w.rolname, w.oid <> r.oid, r.rolname

-- name: replica_defaults
-- PGC010: session_replication_role given as a default: for this database or every database, for a role or
-- every role (ALTER DATABASE/ROLE ... SET), read from pg_db_role_setting.
SELECT coalesce(d.datname, '') AS database, coalesce(r.rolname, '') AS role, c.setting
  FROM pg_db_role_setting s
  LEFT JOIN pg_database d ON d.oid = s.setdatabase
  LEFT JOIN pg_roles r ON r.oid = s.setrole
 CROSS JOIN LATERAL unnest(s.setconfig) AS c (setting)
 WHERE (s.setdatabase = 0 OR d.datname = current_database())
   AND split_part(c.setting, '=', 1) = 'session_replication_role'
 ORDER BY 1, 2

-- name: replica_setting
-- PGC010: the value a session of the checker starts with (reset_val) and where it comes from.
SELECT setting, reset_val, source, boot_val FROM pg_settings WHERE name = 'session_replication_role'

-- name: jobs_of_event
-- PGC011: the jobs materialized from one appended event (materialized_via where the queue has it).
SELECT j.job_type, coalesce(to_jsonb(j) ->> 'materialized_via', '?') AS materialized_via
  FROM executor_jobs j WHERE j.source_event_id = %(event_id)s ORDER BY j.id

-- name: user_functions
-- PGC012: every SQL and plpgsql function and procedure of the database outside the system schemas and
-- extensions, with what it runs as (SECURITY DEFINER: its owner) and whether that role can insert into
-- executor_jobs.
SELECT p.oid, n.nspname AS schema, p.proname AS name, l.lanname AS language, p.prosecdef AS security_definer,
       pg_get_userbyid(p.proowner) AS owner, pg_get_functiondef(p.oid) AS definition,
       coalesce(has_any_column_privilege(p.proowner, to_regclass('executor_jobs'), 'INSERT'), false)
           AS owner_can_insert
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%%'
   AND p.prokind IN ('f', 'p') AND l.lanname IN ('sql', 'plpgsql')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY n.nspname, p.proname, p.oid

-- name: view
SELECT c.relname AS name, pg_get_viewdef(c.oid) AS definition
  FROM pg_class c WHERE c.relname = %(name)s AND c.relkind IN ('v', 'm') AND pg_table_is_visible(c.oid)
