-- class: core
-- The hot path plans once per session. A plpgsql statement with parameters is planned afresh on every call
-- until Postgres judges a generic plan no costlier than the custom ones, and for the claim (LIMIT $n) and the
-- set-based completion (unnest of array parameters) it never does: each call paid the planner again, about
-- half the time of a one-job claim-and-complete (measured: 441 -> 824 jobs/s at batch 1 with generic plans).
-- Every statement of these functions has one right plan whatever its parameters (primary keys, the queue's
-- partial indexes, subqueries kept whole where statistics mislead, see 0011), so they are told to use it.
-- A SET clause holds for nested calls and the triggers they fire; the trigger functions carry it too, for
-- writers that fire them directly.

ALTER FUNCTION claim_jobs_of_kind(text, text, int, double precision, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION reap_expired_leases(text, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION complete_jobs(bigint[], bigint[], jsonb[], uuid[], timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION lock_job_for_run(bigint, bigint) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION fail_job(bigint, bigint, text, boolean, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION release_job(bigint, bigint, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION append_event(uuid, text, jsonb, uuid, text, uuid, uuid) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION request_protection(uuid, text, text, uuid, text, uuid) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION materialize_job(text, uuid, uuid, jsonb, uuid, text, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION on_document_entity_events_change() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION project_user_documents_set() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION executor_job_queue_sync() SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION executor_jobs_gateway_guard() SET plan_cache_mode = force_generic_plan;
