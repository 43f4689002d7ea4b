-- Named queries of the executor (orchestrator). Only this role claims execution jobs.

-- name: claim
-- Only the columns the worker reads: every other one is parsed into Python for nothing.
SELECT job_id, run_id, job_type, payload FROM claim_orchestrator_jobs(%(worker)s, %(limit)s, %(lease_seconds)s)
