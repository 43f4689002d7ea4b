-- Named queries of the scheduler, which only wakes the workers.

-- name: due_kinds
-- Kinds with work that became ready by time (a retry whose backoff ended, a lease that expired).
SELECT kind FROM executor_jobs
 WHERE (status = 'retrying' AND run_at <= clock_timestamp())
    OR (status = 'running' AND lease_expires_at < clock_timestamp())
 GROUP BY kind

-- name: wake
SELECT pg_notify('executor_jobs_' || %(kind)s, 'scheduler')
