"""The monitor's Prometheus `/metrics`: the last evaluation's values, served without touching the database.

Each alert rule watches one metric, and the value the SQL evaluator compared with the threshold is exactly
the value exported under that metric's name (`alert_rules.metric`), so the Prometheus rule file that
`harness alerts export` writes over these metrics means the same as the SQL evaluation. A scrape reads an
immutable snapshot that the monitor replaces after every evaluation: scrapes never wait for, or load, the
database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

STATE_VALUE = {"inactive": 0.0, "pending": 1.0, "firing": 2.0}

HELP = {
    "pipeline_core_trigger_enabled": "1 when the core trigger on_document_entity_events_change exists and fires "
    "for ordinary sessions, else 0",
    "pipeline_event_to_job_gap_breaches": "job.*.required events older than their Delta with no job (gap window)",
    "pipeline_backlog_ready_jobs": "jobs ready to be claimed now (queued or retrying, run_at passed)",
    "pipeline_backlog_oldest_ready_age_seconds": "how long the oldest ready job has waited to be claimed",
    "pipeline_job_runs_failed_recent": "runs that failed or lost their lease within alert.retry_storm.window_s",
    "pipeline_jobs_dead_recent": "jobs that died within alert.dead_jobs.window_s",
    "pipeline_compat_warnings_recent": "compat warnings within alert.compat_warnings_present.window_s",
    "pipeline_live_workers": "workers of a role whose heartbeat is younger than heartbeat_stale_s",
}


@dataclass(frozen=True)
class Series:
    """One value of one metric, with its labels (e.g. role) as sorted pairs."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class AlertSeries:
    """The state of one series of one rule after an evaluation."""

    rule: str
    labels: tuple[tuple[str, str], ...]
    state: str
    severity: str


@dataclass(frozen=True)
class Snapshot:
    """Everything a scrape shows, from one evaluation."""

    series: tuple[Series, ...] = ()
    alerts: tuple[AlertSeries, ...] = ()
    gap_quantiles: tuple[tuple[str, float | None], ...] = ()
    gap_counts: tuple[tuple[str, int], ...] = ()
    jobs: tuple[tuple[str, str, int], ...] = ()
    evaluated_at: float | None = None
    evaluations: int = 0
    eval_seconds: float = 0.0
    profile: str = ""


class SnapshotCollector(Collector):
    """A prometheus_client collector rendering the latest Snapshot."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()
        self._lock = threading.Lock()

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield from _rule_metrics(snap.series)
        alerts = GaugeMetricFamily(
            "pipeline_alert_state",
            "state of each alert series: 0 inactive, 1 pending, 2 firing",
            labels=["alertname", "severity", "series"],
        )
        for alert in snap.alerts:
            series = ",".join(f"{k}={v}" for k, v in alert.labels)
            alerts.add_metric([alert.rule, alert.severity, series], STATE_VALUE.get(alert.state, 0.0))
        yield alerts
        quantiles = GaugeMetricFamily(
            "pipeline_event_to_job_gap_seconds",
            "event_to_job_gap over the gap window "
            "(materialized events): time from a job.*.required event to its job",
            labels=["quantile"],
        )
        for quantile, value in snap.gap_quantiles:
            if value is not None:
                quantiles.add_metric([quantile], value)
        yield quantiles
        counts = GaugeMetricFamily(
            "pipeline_event_to_job_gap_events",
            "job.*.required events in the gap window, by status",
            labels=["status"],
        )
        for status, count in snap.gap_counts:
            counts.add_metric([status], float(count))
        yield counts
        jobs = GaugeMetricFamily(
            "pipeline_jobs", "open and dead jobs by kind and status", labels=["kind", "status"]
        )
        for kind, status, count in snap.jobs:
            jobs.add_metric([kind, status], float(count))
        yield jobs
        evals = GaugeMetricFamily(
            "pipeline_monitor_evaluations", "alert evaluations since the monitor started"
        )
        evals.add_metric([], float(snap.evaluations))
        yield evals
        if snap.evaluated_at is not None:
            last = GaugeMetricFamily(
                "pipeline_monitor_last_evaluation_timestamp_seconds", "unix time of the last alert evaluation"
            )
            last.add_metric([], snap.evaluated_at)
            yield last
            took = GaugeMetricFamily(
                "pipeline_monitor_evaluation_seconds", "how long the last evaluation took"
            )
            took.add_metric([], snap.eval_seconds)
            yield took


def _rule_metrics(series: Sequence[Series]) -> Iterator[Metric]:
    by_metric: dict[str, list[Series]] = {}
    for one in series:
        by_metric.setdefault(one.metric, []).append(one)
    for metric, values in sorted(by_metric.items()):
        names = sorted({k for one in values for k, _ in one.labels})
        family = GaugeMetricFamily(
            metric, HELP.get(metric, f"the value alert rules compare ({metric})"), labels=names
        )
        for one in values:
            labels = dict(one.labels)
            family.add_metric([labels.get(name, "") for name in names], one.value)
        yield family


def serve(collector: SnapshotCollector, port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (port 0 picks a free one) in a daemon thread; returns the bound port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
