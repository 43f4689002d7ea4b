-- Named queries used by every worker role. Format: a `-- name: <query>` line, then the statement.

-- name: set_role
-- Drop to the worker's own database role, so privileges back the rules (no INSERT on executor_jobs).
SELECT set_config('role', %(role)s, false)

-- name: has_role
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s) AND pg_has_role(current_user, %(role)s, 'MEMBER')

-- name: heartbeat
SELECT worker_heartbeat(%(worker_id)s, %(role)s, %(pid)s, %(host)s, %(jobs_done)s)

-- name: load_failpoints
SELECT name, action FROM failpoints

-- name: failpoint_hit
SELECT failpoint_hit(%(name)s, %(action)s)

-- name: complete_job
SELECT complete_job(%(job_id)s, %(run_id)s, %(result)s, %(result_event_id)s)

-- name: complete_jobs
-- A batch's completions in one statement: each table is written once for the whole batch. The arrays go in
-- binary (%b): in text, every JSON result is escaped again as an array element, which cost the worker more
-- than the round trip (measured: 278 vs 118 us per call for ten results).
SELECT job_id FROM complete_jobs(%(job_ids)b::bigint[], %(run_ids)b::bigint[], %(results)b::jsonb[],
                                 %(result_event_ids)b::uuid[])

-- name: fail_job
SELECT fail_job(%(job_id)s, %(run_id)s, %(error)s, %(retryable)s)

-- name: release_job
SELECT release_job(%(job_id)s, %(run_id)s)
