"""traces_complete: every flow's path event -> job -> run -> result is whole, as `harness trace` judges it.

The judgement is harness.trace.build_trace, the same function behind `harness trace` and `harness e2e`, so
the checker and the command a person runs next can never disagree. Judged: every entity with a
document.*.requested event and every entity the workload asked for; an entity with neither (a nemesis's
scratch entity) has no flow to trace. When the run did not drain, problems that only say "not finished
yet" make the verdict unknown rather than invalid.
"""

from __future__ import annotations

from harness.checkers.rows import REQUEST_EVENT, Row, plain, requests, short
from harness.model import Anomaly, CheckResult, RunRecord, Verdict
from harness.trace import build_trace

NAME = "traces_complete"
# Problems a longer drain could still have fixed (wording of harness.trace).
_LATE = ("flow not closed", ": still ", "no run recorded")


def check(record: RunRecord) -> CheckResult:
    """One broken-trace anomaly per entity whose trace has problems, listing them all."""
    final = record.final
    requested = {r.entity_id for r in requests(record)}
    jobs: dict[str, list[Row]] = {}
    for job in final.jobs:
        jobs.setdefault(str(job["entity_id"]), []).append(job)
    runs: dict[int, list[Row]] = {}
    for run in final.runs:
        runs.setdefault(int(run["job_id"]), []).append(run)
    anomalies: list[Anomaly] = []
    judged = skipped = 0
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
        entity_runs = [r for j in entity_jobs for r in runs.get(int(j["id"]), [])]
        trace = build_trace(entity_id, events, entity_jobs, entity_runs)
        if trace.complete:
            continue
        late_only = late_only and all(any(m in p for m in _LATE) for p in trace.problems)
        anomalies.append(
            Anomaly(
                "broken-trace",
                f"entity {short(entity_id)} (trace {trace.trace_id}): " + "; ".join(trace.problems),
                (entity_id,),
                tuple({"entity_id": entity_id, "problem": plain(p)} for p in trace.problems),
            )
        )
    counts = {
        "entities": len(final.entities),
        "judged": judged,
        "skipped_no_flow": skipped,
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
