-- Named queries of the scheduler, which only wakes the workers.

-- name: due_kinds
-- Kinds with work that is due (a retry whose backoff ended, a lease that expired, a job not yet taken), read
-- from the claim queue through its partial indexes: an earliest-first probe per kind and state.
SELECT k.kind FROM (VALUES ('decision'), ('execution')) k (kind)
 WHERE EXISTS (SELECT 1 FROM executor_job_queue q
                WHERE q.kind = k.kind AND q.state = 'ready' AND q.due_at <= clock_timestamp())
    OR EXISTS (SELECT 1 FROM executor_job_queue q
                WHERE q.kind = k.kind AND q.state = 'leased' AND q.due_at < clock_timestamp())

-- name: wake
SELECT pg_notify('executor_jobs_' || %(kind)s, 'scheduler')
