-- class: core
-- The hot path's plans no longer depend on how big the planner last saw a table. Every statement of these
-- functions reaches its rows by key (primary keys, the queue's partial indexes, transition tables), but the
-- planner may still price a sequential scan cheaper while a table is small: the claim's UPDATE of
-- executor_jobs became a hash join over a scan of the whole table up to at least 6,000 jobs, and
-- complete_jobs' run lookup a scan of executor_job_runs for every job while that table's statistics said it
-- was nearly empty. Since 0013 each session keeps one generic plan, so a plan made while a table was small
-- (a fresh pipeline, or statistics taken just after a TRUNCATE) kept scanning the grown table until the next
-- autoanalyze happened to invalidate it: in a measured run, half a benchmark's claims scanned every job. On a
-- server with default autovacuum settings (PG 15, one-minute naptime), `harness e2e --flows 1000` ran at
-- 151-165 flows/s with p99 5.7-6.3 s before this migration and 267-418 flows/s, p99 1.9-3.4 s, after it.
-- enable_seqscan = off makes a scan the planner's last resort inside these functions only; a statement with
-- no usable index still runs (a disabled path is priced, not forbidden). Functions these call (mark_job_dead,
-- the SQL helpers) inherit the setting for the length of the call.

ALTER FUNCTION claim_jobs_of_kind(text, text, int, double precision, timestamptz) SET enable_seqscan = off;
ALTER FUNCTION reap_expired_leases(text, timestamptz) SET enable_seqscan = off;
ALTER FUNCTION complete_jobs(bigint[], bigint[], jsonb[], uuid[], timestamptz) SET enable_seqscan = off;
ALTER FUNCTION lock_job_for_run(bigint, bigint) SET enable_seqscan = off;
ALTER FUNCTION fail_job(bigint, bigint, text, boolean, timestamptz) SET enable_seqscan = off;
ALTER FUNCTION release_job(bigint, bigint, timestamptz) SET enable_seqscan = off;
ALTER FUNCTION append_event(uuid, text, jsonb, uuid, text, uuid, uuid) SET enable_seqscan = off;
ALTER FUNCTION append_events(uuid[], text[], jsonb[], uuid[], text[], uuid[], uuid[]) SET enable_seqscan = off;
ALTER FUNCTION lock_entities_events(uuid[]) SET enable_seqscan = off;
ALTER FUNCTION request_protection(uuid, text, text, uuid, text, uuid) SET enable_seqscan = off;
ALTER FUNCTION materialize_job(text, uuid, uuid, jsonb, uuid, text, text) SET enable_seqscan = off;
ALTER FUNCTION on_document_entity_events_change() SET enable_seqscan = off;
ALTER FUNCTION project_user_documents_set() SET enable_seqscan = off;
ALTER FUNCTION executor_job_queue_sync() SET enable_seqscan = off;
ALTER FUNCTION executor_jobs_gateway_guard() SET enable_seqscan = off;
