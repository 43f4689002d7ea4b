"""gap_slo: event_to_job_gap p99 outside fault windows within the scenario's SLO.

event_to_job_gap is the RFC's KPI: for a job.<type>.required event at T, how long until its job exists. The
core trigger makes it near zero; a fault may stretch it (that is what the alert is for), so only events
outside every fault window, and more than a grace after each heal, count toward the SLO. The percentile is
interpolated like Postgres' percentile_cont, so it matches the pipeline's own event_to_job_gap_stats.
Events with no job at all are no_lost_job's business, not a gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.checkers.rows import (
    HEAL_GRACE_S,
    JOB_EVENT,
    clock,
    entity_events,
    epoch,
    event_row,
    faults_at,
    jobs_by_source,
    short,
)
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "gap_slo"
WORST = 5


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (Postgres percentile_cont)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def check(record: RunRecord) -> CheckResult:
    """slo-breach naming the worst events when p99 > expect.gap_p99_s."""
    limit = record.scenario.expect.gap_p99_s
    by_source = jobs_by_source(record.final)
    measured: list[tuple[float, str, dict[str, object], int]] = []  # gap, entity, event row, job id
    in_faults = unmaterialized = 0
    for entity_id, events in entity_events(record.final).items():
        for event in events:
            match = JOB_EVENT.match(str(event.get("type", "")))
            if not match or match.group(2) != "required":
                continue
            jobs = by_source.get((entity_id, str(event.get("id"))), [])
            at = epoch(event.get("at"))
            created = [c for c in (epoch(j.get("created_at")) for j in jobs) if c is not None]
            if at is None or not created:
                unmaterialized += 1
                continue
            if faults_at(record, at, HEAL_GRACE_S):
                in_faults += 1
                continue
            job = min(jobs, key=lambda j: epoch(j.get("created_at")) or math.inf)
            measured.append((min(created) - at, entity_id, event_row(entity_id, event), int(job["id"])))
    gaps = [m[0] for m in measured]
    counts: dict[str, object] = {
        "events": len(measured),
        "in_fault_windows": in_faults,
        "unmaterialized": unmaterialized,
        "p50_s": _round(percentile(gaps, 0.5)),
        "p99_s": _round(percentile(gaps, 0.99)),
        "max_s": _round(max(gaps)) if gaps else None,
        "limit_p99_s": limit,
    }
    if limit is None:
        return CheckResult(NAME, Verdict.VALID, (), {**counts, "skipped": "no gap_p99_s expectation"})
    if not measured:
        return CheckResult(
            NAME,
            Verdict.UNKNOWN,
            (),
            counts,
            error="no job.*.required event outside the fault windows (plus a "
            f"{HEAL_GRACE_S:g} s grace after each heal) has a job: nothing to measure the gap SLO on",
        )
    p99 = percentile(gaps, 0.99)
    if p99 <= limit:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    worst = sorted(measured, key=lambda m: (-m[0], m[1]))[:WORST]
    listed = ", ".join(
        f"{row['type']} {short(row['event_id'])} (entity {short(entity)}) at {clock(epoch(row['at']))} "
        f"-> job {job_id} after {gap:.3f} s"
        for gap, entity, row, job_id in worst
    )
    anomaly = Anomaly(
        "slo-breach",
        f"event_to_job_gap p99 {p99:.3f} s over {len(measured)} events outside fault windows exceeds the SLO "
        f"{limit:g} s; worst: {listed}",
        tuple(dict.fromkeys(entity for _, entity, _, _ in worst)),
        tuple({**row, "job_id": job_id, "gap_s": round(gap, 6)} for gap, _, row, job_id in worst),
    )
    return CheckResult(NAME, Verdict.INVALID, (anomaly,), counts)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)
