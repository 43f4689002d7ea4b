-- Named queries of the executor (orchestrator). Only this role claims execution jobs.

-- name: claim
SELECT * FROM claim_orchestrator_jobs(%(worker)s, %(limit)s, %(lease_seconds)s)
