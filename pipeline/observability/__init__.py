"""Observability of the reference pipeline: the monitor's metrics snapshot and its Prometheus exporter.

The rules themselves (conditions, `for`, thresholds, profiles) and their evaluation live in SQL
(`sql/migrations/0010_core_observability.sql`), so psql, the monitor, the dashboard and the tests share one
behaviour; this package only turns the monitor's evaluations into `/metrics`.
"""
