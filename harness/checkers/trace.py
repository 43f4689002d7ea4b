"""The path of one entity, event -> job -> run -> result, and whether it is complete.

`build_trace` is a pure function of rows already read (events, jobs, runs), so the same judgement serves
`harness trace`, `harness e2e` and the trace checker over a stored run. A trace is complete when every event
that needs work has its job, every job has a run, every finished execution job has exactly one canonical
result event recorded on its successful run, everything carries the flow's correlation and trace ids, and
the flow is closed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_JOB_EVENT = re.compile(r"^job\.([a-z][a-z0-9_]*)\.(required|completed|failed)$")
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    event: Row
    jobs: tuple[Row, ...]
    runs: tuple[Row, ...]


@dataclass(frozen=True)
class Trace:
    entity_id: str
    correlation_id: str | None
    trace_id: str | None
    closed_as: str | None
    steps: tuple[Step, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "closed_as": self.closed_as,
            "complete": self.complete,
            "problems": list(self.problems),
            "steps": [
                {
                    "event": _plain(s.event),
                    "jobs": [_plain(j) for j in s.jobs],
                    "runs": [_plain(r) for r in s.runs],
                }
                for s in self.steps
            ],
        }


def _plain(row: Row) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, (str, int, float, bool, dict, list, type(None))) else str(v))
        for k, v in row.items()
    }


def needs_job(event_type: str, execution_types: set[str]) -> bool:
    match = _JOB_EVENT.match(event_type)
    if match:
        return match.group(2) == "required" or match.group(1) in execution_types
    return bool(re.match(r"^document\.[a-z0-9_]+\.requested$", event_type))


def build_trace(entity_id: str, events: Sequence[Row], jobs: Sequence[Row], runs: Sequence[Row]) -> Trace:
    problems: list[str] = []
    request = next((e for e in events if str(e.get("type", "")).endswith(".requested")), None)
    correlation = str(request["correlation_id"]) if request and request.get("correlation_id") else None
    trace_id = request.get("trace_id") if request else None
    closed = next(
        (e["type"] for e in events if e.get("type") in ("document.anchored", "document.failed")), None
    )
    if request is None:
        problems.append("no document.*.requested event: the flow has no start")
    if closed is None:
        problems.append("flow not closed: no document.anchored or document.failed event")
    execution_types = {str(j["job_type"]) for j in jobs if j.get("kind") == "execution"}
    execution_types |= {
        m.group(1)
        for e in events
        if (m := _JOB_EVENT.match(str(e.get("type", "")))) and m.group(2) == "required"
    }
    jobs_by_source: dict[str, list[Row]] = {}
    for job in jobs:
        jobs_by_source.setdefault(str(job["source_event_id"]), []).append(job)
    runs_by_job: dict[int, list[Row]] = {}
    for run in runs:
        runs_by_job.setdefault(int(run["job_id"]), []).append(run)
    event_ids = [str(e.get("id")) for e in events]
    results_by_job: dict[int, list[Row]] = {}
    for event in events:
        payload = event.get("payload") or {}
        if (
            _JOB_EVENT.match(str(event.get("type", "")))
            and "job_id" in payload
            and not event["type"].endswith(".required")
        ):
            results_by_job.setdefault(int(payload["job_id"]), []).append(event)

    steps = []
    seen_ids: set[str] = set()
    for event in events:
        etype, eid = str(event.get("type", "")), str(event.get("id"))
        if eid in seen_ids:
            continue  # a duplicated append of the same event: one step, judged once
        seen_ids.add(eid)
        for key, expected in (("correlation_id", correlation), ("trace_id", trace_id)):
            if expected is not None and event.get(key) is not None and str(event.get(key)) != expected:
                problems.append(
                    f"event {etype} {eid}: {key} {event.get(key)} differs from the flow's {expected}"
                )
        step_jobs = jobs_by_source.get(eid, [])
        step_runs = [r for j in step_jobs for r in runs_by_job.get(int(j["id"]), [])]
        steps.append(Step(event, tuple(step_jobs), tuple(step_runs)))
        if not needs_job(etype, execution_types):
            continue
        if not step_jobs:
            problems.append(f"event {etype} {eid}: no job materialized for it")
            continue
        if len(step_jobs) > 1:
            problems.append(
                f"event {etype} {eid}: {len(step_jobs)} jobs materialized (ids "
                f"{', '.join(str(j['id']) for j in step_jobs)}); expected one"
            )
        for job in step_jobs:
            problems.extend(
                _judge_job(
                    job,
                    runs_by_job.get(int(job["id"]), []),
                    results_by_job,
                    correlation,
                    trace_id,
                    set(event_ids),
                )
            )
    return Trace(entity_id, correlation, trace_id, closed, tuple(steps), tuple(problems))


def _judge_job(
    job: Row,
    runs: list[Row],
    results_by_job: dict[int, list[Row]],
    correlation: str | None,
    trace_id: str | None,
    event_ids: set[str],
) -> list[str]:
    problems = []
    label = f"job {job['id']} ({job['job_type']})"
    for key, expected in (("correlation_id", correlation), ("trace_id", trace_id)):
        if expected is not None and str(job.get(key)) != expected:
            problems.append(f"{label}: {key} {job.get(key)} differs from the flow's {expected}")
    if not runs:
        problems.append(f"{label}: status {job['status']}, no run recorded")
        return problems
    succeeded = [r for r in runs if r.get("outcome") == "succeeded"]
    if job["status"] == "succeeded" and len(succeeded) != 1:
        problems.append(f"{label}: succeeded with {len(succeeded)} successful runs; expected exactly one")
    if job["status"] not in ("succeeded", "dead"):
        problems.append(f"{label}: still {job['status']} after {len(runs)} run(s)")
    if job.get("kind") == "execution":
        results = results_by_job.get(int(job["id"]), [])
        completed = [e for e in results if str(e["type"]).endswith(".completed")]
        failed = [e for e in results if str(e["type"]).endswith(".failed")]
        if job["status"] == "succeeded":
            if len(completed) != 1:
                problems.append(f"{label}: {len(completed)} canonical result events; expected exactly one")
            elif succeeded and str(succeeded[0].get("result_event_id")) != str(completed[0]["id"]):
                problems.append(
                    f"{label}: run {succeeded[0]['id']} records result event "
                    f"{succeeded[0].get('result_event_id')}, but the result event is {completed[0]['id']}"
                )
        if job["status"] == "dead" and len(failed) != 1:
            problems.append(
                f"{label}: dead with {len(failed)} job.{job['job_type']}.failed events; expected one"
            )
    for run in runs:
        if (
            run.get("result_event_id")
            and str(run["result_event_id"]) not in event_ids
            and job.get("kind") == "execution"
        ):
            problems.append(
                f"{label}: run {run['id']} names result event {run['result_event_id']}, which is not there"
            )
    return problems


def render(trace: Trace) -> str:
    """The trace as text: one block per event, with its jobs and runs beneath."""
    lines = [f"entity {trace.entity_id}  correlation {trace.correlation_id}  trace {trace.trace_id}"]
    for step in trace.steps:
        event = step.event
        at = str(event.get("at", ""))[11:23]
        lines.append(f"  {at}  {event.get('type')}  event {event.get('id')}")
        for job in step.jobs:
            lines.append(
                f"      -> job {job['id']} {job['job_type']} via {job.get('materialized_via')}: "
                f"{job['status']} after {job.get('attempts')} attempt(s)"
            )
            for run in (r for r in step.runs if r["job_id"] == job["id"]):
                took = ""
                if run.get("finished_at") and run.get("started_at"):
                    took = f" in {(run['finished_at'] - run['started_at']).total_seconds() * 1000:.1f} ms"
                error = f" error: {run['error']}" if run.get("error") else ""
                result = f" -> result event {run['result_event_id']}" if run.get("result_event_id") else ""
                lines.append(
                    f"         run {run['id']} attempt {run['attempt']} by {run['worker']}: "
                    f"{run.get('outcome') or 'open'}{took}{result}{error}"
                )
    verdict = "complete" if trace.complete else "INCOMPLETE"
    lines.append(f"  trace {verdict}; flow closed as {trace.closed_as or '(open)'}")
    lines.extend(f"  problem: {p}" for p in trace.problems)
    return "\n".join(lines)
