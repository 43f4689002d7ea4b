-- Named queries of the SUT contract's discovery: the catalogue only, never the data, so they are safe on a
-- production database. Format: `-- name: <query>` headers.

-- name: columns
-- The columns of a table or view visible on the search path, in order (none: it does not exist).
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a
 WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum

-- name: trigger
SELECT t.tgname::text, t.tgenabled::text FROM pg_trigger t
 WHERE t.tgrelid = to_regclass(%(table)s) AND t.tgname = %(name)s AND NOT t.tgisinternal

-- name: function
SELECT p.oid::regprocedure::text FROM pg_proc p
 WHERE p.proname = %(name)s AND pg_function_is_visible(p.oid)

-- name: projection_triggers
-- Triggers on document_entities, other than the core one, whose function's body writes user_documents.
SELECT t.tgname::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = to_regclass('document_entities') AND NOT t.tgisinternal
   AND t.tgname <> 'on_document_entity_events_change' AND p.prosrc ~* '\muser_documents\M'
 ORDER BY t.tgname
