-- Named queries of `harness mutate`: the catalogue only. They read the definitions of the pipeline's own
-- functions and triggers from a disposable database migrated with its migrations. Format: `-- name: <query>`.

-- name: functions
-- The pipeline's own plpgsql and sql functions and procedures: not the system's, not an extension's.
SELECT p.oid::regprocedure::text AS identity, p.proname::text AS name, l.lanname::text AS language,
       pg_get_functiondef(p.oid) AS definition
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
   AND l.lanname IN ('plpgsql', 'sql') AND p.prokind IN ('f', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
 ORDER BY n.nspname, p.proname, p.oid::regprocedure::text

-- name: triggers
-- The pipeline's own triggers (not internal ones: foreign keys), with the state ALTER TABLE gave them.
SELECT t.tgname::text AS name, c.oid::regclass::text AS table_name, pg_get_triggerdef(t.oid) AS definition,
       t.tgenabled::text AS enabled, t.tgconstraint <> 0 AS is_constraint
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY c.oid::regclass::text, t.tgname

-- name: probe_function
-- The coverage run's probe, created by the instrumented copy's extra migration: it writes one server-log
-- line naming the statement about to run (RAISE LOG reaches the log at the default log_min_messages, and
-- never the client). Volatile, so it runs when the statement runs, never at plan time.
CREATE OR REPLACE FUNCTION public.harness_mutate_probe(p_probe text) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
AS $probe$BEGIN RAISE LOG 'harness-mutate-probe %', p_probe; END$probe$;
GRANT EXECUTE ON FUNCTION public.harness_mutate_probe(text) TO PUBLIC

-- name: plpgsql_probe
-- Put before a PL/pgSQL statement ({probe}: its probe id).
RAISE LOG 'harness-mutate-probe {probe}';

-- name: sql_probe
-- Put before a statement of an SQL function's body.
SELECT public.harness_mutate_probe('{probe}');
