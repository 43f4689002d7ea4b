"""monitor: evaluates the alert rules on a fixed interval and does nothing else.

A process of its own, not a duty of the scheduler: an alert about the scheduler (or any other role) must not
depend on that role being alive. Each evaluation is one call of `evaluate_alerts()` (the Prometheus state
machine and its history live in SQL); the monitor then refreshes the snapshot that `/metrics` serves. The
interval is the `monitor_interval_s` setting, re-read after every evaluation; `apply_alert_profile()`
notifies `pipeline_settings`, which makes the next evaluation happen at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline.observability.metrics import AlertSeries, Series, Snapshot, SnapshotCollector
from pipeline.sql import queries
from pipeline.worker.base import Worker, WorkerConfig

log = logging.getLogger("pipeline.worker.monitor")
Q = queries("monitor")


class Monitor(Worker):
    role = "monitor"
    default_db_role = "pipeline_monitor"
    channels = ("pipeline_settings",)

    def __init__(self, config: WorkerConfig, collector: SnapshotCollector | None = None) -> None:
        super().__init__(config)
        self.collector = collector or SnapshotCollector()
        self.evaluations = 0
        self._next_eval = 0.0

    def step(self) -> bool:
        if time.monotonic() < self._next_eval:
            return False
        conn = self.work
        assert conn is not None
        started = time.monotonic()
        rows = conn.execute(Q["evaluate"]).fetchall()
        conn.commit()
        settings = conn.execute(Q["interval"]).fetchone() or {}
        gap = conn.execute(Q["gap_stats"]).fetchone() or {}
        jobs = conn.execute(Q["jobs_by_status"]).fetchall()
        conn.commit()
        self.evaluations += 1
        took = time.monotonic() - started
        self.collector.update(
            _snapshot(rows, gap, jobs, self.evaluations, took, str(settings.get("profile", "")))
        )
        for row in rows:
            if row["changed"]:
                log.warning(
                    "event=alert_transition rule=%s labels=%s state=%s value=%s threshold=%s",
                    row["rule"],
                    row["labels"],
                    row["state"],
                    row["value"],
                    row["threshold"],
                )
        interval = float(settings.get("interval_s") or 15.0)
        self._next_eval = started + max(interval, 0.05)
        return False

    def _wait(self, timeout_s: float) -> None:
        """Sleep until the next evaluation is due (or a settings change wakes us)."""
        super()._wait(max(0.01, min(timeout_s, self._next_eval - time.monotonic())))

    def _on_notify(self, channel: str) -> None:
        if channel == "pipeline_settings":
            self._next_eval = 0.0  # a profile was applied: evaluate with the new numbers now
        else:
            super()._on_notify(channel)


_QUANTILES = (("0.5", "p50_s"), ("0.95", "p95_s"), ("0.99", "p99_s"), ("1", "max_s"))


def _labels(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (value or {}).items()))


def _snapshot(
    rows: list[dict[str, Any]],
    gap: dict[str, Any],
    jobs: list[dict[str, Any]],
    evaluations: int,
    took: float,
    profile: str,
) -> Snapshot:
    return Snapshot(
        series=tuple(Series(r["metric"], _labels(r["labels"]), float(r["value"])) for r in rows),
        alerts=tuple(AlertSeries(r["rule"], _labels(r["labels"]), r["state"], r["severity"]) for r in rows),
        gap_quantiles=tuple((q, gap.get(column)) for q, column in _QUANTILES),
        gap_counts=tuple((s, int(gap.get(s) or 0)) for s in ("materialized", "late", "pending", "breached")),
        jobs=tuple((j["kind"], j["status"], int(j["jobs"])) for j in jobs),
        evaluated_at=time.time(),
        evaluations=evaluations,
        eval_seconds=took,
        profile=profile,
    )
