-- Named queries of the monitor, which evaluates the alert rules and does nothing else.

-- name: evaluate
-- One evaluation of every rule (Prometheus semantics, history written by the function); every series' state.
SELECT e.rule, e.labels, e.metric, e.state, e.value, e.threshold, e.for_s, e.changed, r.severity
  FROM evaluate_alerts() e JOIN alert_rules r ON r.name = e.rule

-- name: interval
-- Seconds between evaluations (a setting, so a profile change applies without a restart).
SELECT pipeline_setting('monitor_interval_s', '15')::double precision AS interval_s,
       pipeline_setting('alert_profile', 'production') AS profile

-- name: gap_stats
SELECT s.*, pipeline_setting('gap_window_s', '900')::double precision AS window_s FROM event_to_job_gap_stats() s

-- name: jobs_by_status
-- Open and dead jobs by kind and status: the claim queue holds exactly those (finished jobs are not counted).
SELECT j.kind, j.status, count(*) AS jobs
  FROM executor_job_queue q JOIN executor_jobs j ON j.id = q.job_id
 GROUP BY j.kind, j.status
