"""What a scenario's timeline shows, taken from the recorded run alone, each time in seconds since the
workload started: fault windows, alert transitions per series, observer samples and workload requests.

Kept apart from the drawing so the data a person sees can be tested without parsing SVG, and so the rules
for reading a record (samples from `record.samples` or from observer ops, alert times as epoch or ISO) live
in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.history import Op, OpType, pairs
from harness.records import RunRecord

NON_WORKLOAD = ("nemesis", "observer")
GAP_KEYS = ("event_to_job_gap_s", "gap_s")  # the event-to-job gap KPI, when the observer samples it
QUEUE_AGE_KEY = "oldest_age_s"  # the oldest queued job's age: the fallback, and not the same thing


def epoch(value: Any) -> float | None:
    """An alert's `at` as epoch seconds, whether it came as a number, a datetime or ISO text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Series:
    """The timeline's data, each time in seconds since the workload started."""

    faults: list[
        tuple[float, float | None, str, bool | None, str]
    ]  # start, end, label, took_effect, evidence
    alerts: dict[str, list[tuple[float, str, Any]]]  # series -> [(t, state, value)]
    samples: list[tuple[float, Mapping[str, Any]]]
    requests: list[tuple[float, str, str]]  # t, outcome (ok/fail/info/open), description
    workload_end: float
    gap_limit: float | None  # the scenario's gap SLO, when `gap` is the KPI it bounds
    backlog: list[tuple[float, float]]
    open_flows: list[tuple[float, float]]  # flows acknowledged and not yet closed
    gap: list[tuple[float, float]]
    gap_name: str


def samples_of(record: RunRecord) -> list[tuple[float, Mapping[str, Any]]]:
    """Observer samples as (wall, values): record.samples when the runner filled them, else the ops."""
    found: list[tuple[float, Mapping[str, Any]]] = []
    for sample in record.samples:
        wall = epoch(sample.get("wall", sample.get("at")))
        if wall is not None:
            found.append((wall, sample))
    if found:
        return found
    for op in record.ops:
        if op.process == "observer" and op.f == "sample" and isinstance(op.value, Mapping):
            found.append((op.wall, op.value))
    return found


def _series_name(row: Mapping[str, Any]) -> str:
    labels = row.get("labels") or row.get("series")
    if isinstance(labels, Mapping) and labels:
        return f"{row.get('rule', '?')}{{{','.join(f'{k}={v}' for k, v in sorted(labels.items()))}}}"
    if labels and not isinstance(labels, Mapping):
        return f"{row.get('rule', '?')}{{{labels}}}"
    return str(row.get("rule", "?"))


def _request_text(invoke: Op, done: Op | None) -> str:
    end = f"{done.type} after {done.time - invoke.time:.3f}s" if done else "never completed"
    error = f": {done.error}" if done is not None and done.error else ""
    return f"{invoke.process} {invoke.f} {invoke.value if invoke.value is not None else ''} -> {end}{error}"


def series_of(record: RunRecord) -> Series:
    """Everything the timeline draws, from the record alone."""
    t0 = record.workload_start_wall
    faults = [
        (
            w.start_wall - t0,
            None if w.end_wall is None else w.end_wall - t0,
            w.label,
            w.took_effect,
            w.evidence,
        )
        for w in record.faults
    ]
    alerts: dict[str, list[tuple[float, str, Any]]] = {}
    for row in record.final.alert_history:
        at = epoch(row.get("at"))
        if at is not None:
            alerts.setdefault(_series_name(row), []).append(
                (at - t0, str(row.get("state", "?")), row.get("value"))
            )
    for rows in alerts.values():
        rows.sort(key=lambda r: r[0])
    requests = []
    workload = [op for op in record.ops if op.process not in NON_WORKLOAD]
    for invoke, done in pairs(workload):
        outcome = "open" if done is None else str(done.type)
        requests.append((invoke.wall - t0, outcome, _request_text(invoke, done)))
    if not requests:  # a recorder that writes only completions: tick those
        requests = [
            (op.wall - t0, str(op.type), f"{op.process} {op.f}")
            for op in workload
            if op.type != OpType.INVOKE
        ]
    samples = [(wall - t0, values) for wall, values in samples_of(record)]
    gap_key = next((k for k in GAP_KEYS if numbers(samples, k)), None)
    return Series(
        faults=faults,
        alerts=alerts,
        samples=samples,
        requests=requests,
        workload_end=record.workload_end_wall - t0,
        gap_limit=record.scenario.expect.gap_p99_s if gap_key else None,
        backlog=numbers(samples, "backlog"),
        open_flows=open_flows(workload, samples, t0),
        gap=numbers(samples, gap_key or QUEUE_AGE_KEY),
        gap_name="event-to-job gap" if gap_key else "oldest queued job",
    )


def open_flows(
    workload: list[Op], samples: list[tuple[float, Mapping[str, Any]]], t0: float
) -> list[tuple[float, float]]:
    """Flows the workload saw acknowledged minus the flows closed, at each sample.

    The job backlog stays flat when jobs are never made (a disabled core trigger): open flows still climb,
    which is the picture a person needs. Acknowledged means an `ok` request, counted once per entity when
    the op names one, so duplicate requests do not count twice.
    """
    acknowledged: list[tuple[float, object]] = []
    for op in workload:
        if op.type is OpType.OK:
            entity = op.value.get("entity_id") if isinstance(op.value, Mapping) else None
            acknowledged.append((op.wall - t0, entity if entity is not None else ("op", op.index)))
    closed = numbers(samples, "flows_closed")
    if not acknowledged or not closed:
        return []
    acknowledged.sort(key=lambda a: a[0])
    found, seen, i = [], set(), 0
    for t, count in closed:
        while i < len(acknowledged) and acknowledged[i][0] <= t:
            seen.add(acknowledged[i][1])
            i += 1
        found.append((t, max(0.0, len(seen) - count)))
    return found


def numbers(samples: list[tuple[float, Mapping[str, Any]]], key: str) -> list[tuple[float, float]]:
    found = []
    for t, values in samples:
        value = values.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            found.append((t, float(value)))
    return found
