"""traces_complete: every flow's path event -> job -> run -> result is whole, as `harness trace` judges it.

The judgement is harness.checkers.trace.build_trace, the same function behind `harness trace` and `harness e2e`, so
the checker and the command a person runs next can never disagree. Judged: every entity with a
document.*.requested event and every entity the workload asked for; an entity with neither (a nemesis's
scratch entity, a poison job's) has no flow to trace.

An entity's events can hold side paths that are not its flow and legitimately carry other ids: a second
request for the same document (its own correlation id; the decision worker starts nothing) and a legacy
insert redirected by the compat guard (a `_compat` required event with the legacy writer's ids, its job
and that job's outcome). Each side path is traced on its own, so a broken job on it is still found, but
it is not asked to start or close a flow, and its ids are not compared with the flow's. When the run did
not drain, problems that only say "not finished yet" of an entity with a job still open make the verdict
unknown rather than invalid; with no job open, nothing will ever finish it.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checkers.rows import FINAL_STATUSES, REQUEST_EVENT, Row, plain, requests, result_job_id, short
from harness.checkers.trace import build_trace
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "traces_complete"
# Problems a longer drain could still have fixed, and problems only a flow (not a side path) can have; both
# in the wording of harness.checkers.trace.
_LATE = ("flow not closed", ": still ", "no run recorded")
_FLOW_ONLY = ("no document.*.requested event", "flow not closed")


def split_paths(
    events: Sequence[Row], jobs: Sequence[Row], marker: str | None = None
) -> dict[str, list[Row]]:
    """Root event id -> its side path's events ("" holds the flow itself), in append order."""
    jobs_of: dict[str, list[int]] = {}
    for job in jobs:
        jobs_of.setdefault(str(job["source_event_id"]), []).append(int(job["id"]))
    first_request = next(
        (str(e.get("id")) for e in events if REQUEST_EVENT.match(str(e.get("type", "")))), None
    )
    root_of_job: dict[int, str] = {}
    paths: dict[str, list[Row]] = {"": []}
    root_of_event: dict[str, str] = {}
    for event in events:
        eid = str(event.get("id"))
        root = root_of_event.get(eid)
        if root is None:
            job_id = result_job_id(event)
            is_root = (REQUEST_EVENT.match(str(event.get("type", ""))) and eid != first_request) or bool(
                marker and marker in (event.get("payload") or {})
            )
            root = eid if is_root else root_of_job.get(job_id, "") if job_id is not None else ""
            root_of_event[eid] = root
            for job_id in jobs_of.get(eid, ()):
                root_of_job[job_id] = root
        paths.setdefault(root, []).append(event)
    return paths


def check(record: RunRecord) -> CheckResult:
    """One broken-trace anomaly per entity whose flow or side paths have problems, listing them all."""
    final = record.final
    requested = {r.entity_id for r in requests(record)}
    jobs: dict[str, list[Row]] = {}
    for job in final.jobs:
        jobs.setdefault(str(job["entity_id"]), []).append(job)
    runs: dict[int, list[Row]] = {}
    for run in final.runs:
        runs.setdefault(int(run["job_id"]), []).append(run)
    anomalies: list[Anomaly] = []
    judged = skipped = side_paths = 0
    late_only = True
    for entity in sorted(final.entities, key=lambda e: str(e["id"])):
        entity_id = str(entity["id"])
        events = list(entity.get("events") or ())
        if entity_id not in requested and not any(
            REQUEST_EVENT.match(str(e.get("type", ""))) for e in events
        ):
            skipped += 1
            continue
        judged += 1
        entity_jobs = jobs.get(entity_id, [])
        problems: list[str] = []
        trace_id = None
        for root, path in split_paths(
            events, entity_jobs, record.sut.conventions.get("compat_marker")
        ).items():
            ids = {str(e.get("id")) for e in path}
            path_jobs = [j for j in entity_jobs if str(j["source_event_id"]) in ids]
            path_runs = [r for j in path_jobs for r in runs.get(int(j["id"]), [])]
            trace = build_trace(entity_id, path, path_jobs, path_runs)
            if not root:
                trace_id = trace.trace_id
                problems.extend(trace.problems)
                continue
            side_paths += 1
            head = f"side path from {path[0].get('type')} {short(root)}: "
            problems.extend(head + p for p in trace.problems if not p.startswith(_FLOW_ONLY))
        if not problems:
            continue
        still_open = any(j.get("status") not in FINAL_STATUSES for j in entity_jobs)
        late_only = late_only and still_open and all(any(m in p for m in _LATE) for p in problems)
        anomalies.append(
            Anomaly(
                "broken-trace",
                f"entity {short(entity_id)} (trace {trace_id}): " + "; ".join(problems),
                (entity_id,),
                tuple({"entity_id": entity_id, "problem": plain(p)} for p in problems),
            )
        )
    counts = {
        "entities": len(final.entities),
        "judged": judged,
        "skipped_no_flow": skipped,
        "side_paths": side_paths,
        "broken": len(anomalies),
    }
    if not anomalies:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    if not record.drained and late_only:
        return CheckResult(
            NAME,
            Verdict.UNKNOWN,
            tuple(anomalies),
            counts,
            error=f"{len(anomalies)} trace(s) only unfinished, but the queue did not drain before the final "
            "read: they may be late rather than broken",
        )
    return CheckResult(NAME, Verdict.INVALID, tuple(anomalies), counts)
