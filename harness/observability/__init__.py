"""The observability the harness provides when a pipeline has none of its own: the RFC's `event_to_job_gap`
KPI and alert evaluation over the RFC's tables (`pack.sql`, installable in production too), and the alert
sources a run reads: the pipeline's own alerts, or the pack's."""
