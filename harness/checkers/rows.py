"""Reading a recorded run the way every checker needs it: distinct events, jobs by source, times as text.

Checkers judge rows the runner already read, so they share one reading of them: an event appended twice with
the same id is one event (the nemesis does that on purpose); times are printed in UTC with milliseconds so an
explanation reads the same on every machine and on every re-check; ids are shortened in sentences and kept
whole in the witness rows, which are what a person greps for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness.checkers.trace import needs_job as _needs_job
from harness.history import OpType, pairs
from harness.records import FaultWindow, FinalState, RunRecord

Row = Mapping[str, Any]

JOB_EVENT = re.compile(r"^job\.([a-z][a-z0-9_]*)\.(required|completed|failed)$")
REQUEST_EVENT = re.compile(r"^document\.[a-z0-9_]+\.requested$")
ANCHORED, FAILED = "document.anchored", "document.failed"
CLOSING = (ANCHORED, FAILED)
FINAL_STATUSES = ("succeeded", "dead")
HEAL_GRACE_S = 2.0  # after a heal, the system gets this long to catch up before its numbers count again


# -- times and ids in sentences -------------------------------------------------------------------------------
def epoch(value: Any) -> float | None:
    """Seconds since the epoch from what the runner stored: a float, an ISO-8601 string, or a datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else parsed.replace(tzinfo=UTC).timestamp()


def clock(wall: float | None) -> str:
    """12:00:01.203 (UTC): enough to line a row up with the timeline, the same on every machine."""
    if wall is None:
        return "?"
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S.%f")[:-3]


def short(ident: Any) -> str:
    """The first 8 characters of an id, as people say them; the witness rows keep it whole."""
    text = str(ident)
    return text[:8] + "…" if len(text) > 9 else text


def plain(value: Any) -> Any:
    """A JSON-ready copy, so witness rows survive the report and a re-check compares equal."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# -- the final state ------------------------------------------------------------------------------------------
def execution_types(final: FinalState) -> frozenset[str]:
    """Execution job types: the whitelist's, else what the jobs and the required events say."""
    names = {name for name, kind in final.job_types.items() if kind == "execution"}
    if not final.job_types:
        names |= {str(j["job_type"]) for j in final.jobs if j.get("kind") == "execution"}
        for entity in final.entities:
            for event in entity.get("events") or ():
                match = JOB_EVENT.match(str(event.get("type", "")))
                if match and match.group(2) == "required":
                    names.add(match.group(1))
    return frozenset(names)


def needs_job(event_type: str, exec_types: frozenset[str]) -> bool:
    """The core trigger's rule (the same as `harness trace` uses): which events must materialize a job."""
    return _needs_job(event_type, set(exec_types))


def distinct_events(events: Iterable[Row]) -> list[Row]:
    """Each event once, at its first position: a second append of the same id is the same event."""
    seen: set[str] = set()
    result = []
    for event in events:
        key = str(event.get("id"))
        if key not in seen:
            seen.add(key)
            result.append(event)
    return result


def entity_events(final: FinalState) -> dict[str, list[Row]]:
    """Entity id -> its distinct events, in append order."""
    return {str(e["id"]): distinct_events(e.get("events") or ()) for e in final.entities}


def jobs_by_source(final: FinalState) -> dict[tuple[str, str], list[Row]]:
    """(entity id, source event id) -> the jobs born from that event."""
    index: dict[tuple[str, str], list[Row]] = {}
    for job in final.jobs:
        index.setdefault((str(job["entity_id"]), str(job["source_event_id"])), []).append(job)
    return index


def runs_by_job(final: FinalState) -> dict[int, list[Row]]:
    index: dict[int, list[Row]] = {}
    for run in final.runs:
        index.setdefault(int(run["job_id"]), []).append(run)
    return index


def result_job_id(event: Row) -> int | None:
    """payload.job_id of a job outcome event, as an int (None when absent or not a number)."""
    value = (event.get("payload") or {}).get("job_id")
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def event_row(entity_id: str, event: Row) -> dict[str, Any]:
    return {
        "entity_id": str(entity_id),
        "event_id": str(event.get("id")),
        "type": str(event.get("type")),
        "at": plain(event.get("at")),
    }


def job_row(job: Row) -> dict[str, Any]:
    keys = (
        "id",
        "job_type",
        "kind",
        "entity_id",
        "status",
        "attempts",
        "source_event_id",
        "materialized_via",
    )
    return {("job_id" if k == "id" else k): plain(job.get(k)) for k in keys}


def run_row(run: Row) -> dict[str, Any]:
    keys = ("id", "job_id", "attempt", "worker", "outcome", "result_event_id", "error")
    return {("run_id" if k == "id" else k): plain(run.get(k)) for k in keys}


# -- fault windows --------------------------------------------------------------------------------------------
def faults_at(record: RunRecord, wall: float | None, grace_s: float = 0.0) -> list[FaultWindow]:
    """The fault windows open at `wall` (or healed less than `grace_s` before it)."""
    if wall is None:
        return []
    return [w for w in record.faults if w.covers(wall, grace_s)]


def describe_fault(window: FaultWindow) -> str:
    end = clock(window.end_wall) if window.end_wall is not None else "never healed"
    return f"fault {window.label} {clock(window.start_wall)}-{end}"


def during(record: RunRecord, wall: float | None, grace_s: float = 1.0, lead_s: float = 1.0) -> str:
    """'; during fault X 12:00:00.900-12:00:06.000' for each window open at `wall` (or healed less than
    `grace_s` before), and '; 10 ms before fault X ...' for each that started less than `lead_s` after it:
    an acknowledged write 10 ms before a crash is the row a reader wants next to the crash."""
    if wall is None:
        return ""
    parts = [f"; during {describe_fault(w)}" for w in faults_at(record, wall, grace_s)]
    parts += [
        f"; {(w.start_wall - wall) * 1000:.0f} ms before {describe_fault(w)}"
        for w in record.faults
        if 0 < w.start_wall - wall <= lead_s
    ]
    return "".join(parts)


# -- the workload's requests ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One request op of the workload with its outcome (None: it never completed, so unknown)."""

    entity_id: str
    event_id: str | None
    kind: str
    outcome: OpType | None
    wall: float
    index: int
    error: str | None = None

    @property
    def unknown(self) -> bool:
        return self.outcome is None or self.outcome is OpType.INFO


def requests(record: RunRecord) -> list[Request]:
    """The workload's request ops (process client-*, f request), each with its completion."""
    found = []
    for invoke, done in pairs(record.ops, "client"):
        if invoke.f != "request":
            continue
        value: dict[str, Any] = dict(invoke.value) if isinstance(invoke.value, Mapping) else {}
        if done is not None and isinstance(done.value, Mapping):
            value.update(done.value)
        if "entity_id" not in value:
            continue
        event_id = value.get("event_id")
        found.append(
            Request(
                entity_id=str(value["entity_id"]),
                event_id=str(event_id) if event_id is not None else None,
                kind=str(value.get("kind", "new")),
                outcome=done.type if done is not None else None,
                wall=invoke.wall,
                index=invoke.index,
                error=done.error if done is not None else None,
            )
        )
    return found


def alert_keys_seen(record: RunRecord) -> bool:
    """Whether the run recorded alert state at all: an alert history, or samples that carry alerts_firing
    (the observer samples None there when the pipeline has no alert state table)."""
    if record.final.alert_history:
        return True
    return any(s.get("alerts_firing") is not None for s in observer_samples(record))


def observer_samples(record: RunRecord) -> list[Mapping[str, Any]]:
    """Observer samples with their wall time: the observer ops (they carry the clock), else record.samples."""
    from_ops: list[Mapping[str, Any]] = [
        {"wall": op.wall, **op.value}
        for op in record.ops
        if op.process == "observer" and op.f == "sample" and isinstance(op.value, Mapping)
    ]
    return from_ops or [s for s in record.samples if isinstance(s, Mapping)]
