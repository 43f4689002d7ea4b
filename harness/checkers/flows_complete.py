"""flows_complete: every acknowledged flow ends anchored or failed-with-its-reason after healing.

Queue accounting in Jepsen's total-queue words: a request the workload saw committed (`ok`) is
*acknowledged*; one whose outcome is unknown (`info`) and whose event did land is *recovered* and judged the
same way; an acknowledged request whose event is not in the final read is *lost*; a request the workload was
told certainly failed but whose event is there is *unexpected*. A flow is *closed* by document.anchored or
document.failed, and a failure must be explained by a job.<type>.failed event. Requests that certainly
failed are only counted here: refusing valid work is requests_accepted's finding. When the run did not
drain, a flow with a job still open may be merely late: the verdict is then unknown, not invalid, unless
something else is certainly wrong. A flow with no open job (its decision job dead, say) will never close:
that is certain whether the run drained or not.
"""

from __future__ import annotations

from harness.checkers.rows import (
    ANCHORED,
    CLOSING,
    FAILED,
    FINAL_STATUSES,
    JOB_EVENT,
    REQUEST_EVENT,
    Request,
    Row,
    clock,
    during,
    entity_events,
    epoch,
    event_row,
    job_row,
    requests,
    short,
)
from harness.history import OpType
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "flows_complete"


def check(record: RunRecord) -> CheckResult:
    """Judge every entity the workload requested; see the module docstring for the vocabulary."""
    events = entity_events(record.final)
    anomalies: list[Anomaly] = []
    by_entity: dict[str, list[Request]] = {}
    for request in requests(record):
        by_entity.setdefault(request.entity_id, []).append(request)

    acknowledged = recovered = refused = 0
    must_close: list[str] = []
    for entity_id, reqs in sorted(by_entity.items()):
        present = {str(e.get("id")) for e in events.get(entity_id, ())}
        requested = [e for e in events.get(entity_id, ()) if REQUEST_EVENT.match(str(e.get("type", "")))]
        landed = False
        for req in reqs:
            there = req.event_id in present if req.event_id else bool(requested)
            if req.outcome is OpType.OK:
                acknowledged += 1
                landed = True
                if not there:
                    anomalies.append(_lost(record, req))
            elif req.unknown:
                if there:
                    recovered += 1
                    landed = True
            elif req.outcome is OpType.FAIL:
                if there and req.event_id:
                    landed = True
                    anomalies.append(_unexpected(record, req))
                else:
                    refused += 1
        if landed and entity_id in events:
            must_close.append(entity_id)

    closed = anchored = failed = late = 0
    for entity_id in must_close:
        evs = events[entity_id]
        closing = [e for e in evs if e.get("type") in CLOSING]
        if not closing:
            anomaly, may_be_late = _incomplete(record, entity_id, evs)
            anomalies.append(anomaly)
            late += may_be_late
            continue
        closed += 1
        anchored += any(e.get("type") == ANCHORED for e in closing)
        failed += any(e.get("type") == FAILED for e in closing)
        if len(closing) > 1:
            anomalies.append(
                Anomaly(
                    "closed-twice",
                    f"entity {short(entity_id)} closed {len(closing)} times ("
                    + ", ".join(f"{e.get('type')} at {clock(epoch(e.get('at')))}" for e in closing)
                    + "): the flow was decided twice",
                    (entity_id,),
                    tuple(event_row(entity_id, e) for e in closing),
                )
            )
        allowed = record.scenario.expect.outcomes
        for event in closing:
            if event.get("type") == FAILED and "failed" not in allowed:
                anomalies.append(_unexpected_outcome(record, entity_id, event, evs))
            if event.get("type") == FAILED and not _explained(event, evs):
                anomalies.append(
                    Anomaly(
                        "unexplained-failure",
                        f"entity {short(entity_id)}: document.failed {short(event.get('id'))} at "
                        f"{clock(epoch(event.get('at')))} with no job.<type>.failed event to explain it",
                        (entity_id,),
                        (event_row(entity_id, event),),
                    )
                )
    counts = {
        "requests": sum(len(v) for v in by_entity.values()),
        "flows": len(by_entity),
        "acknowledged": acknowledged,
        "recovered": recovered,
        "lost": sum(1 for a in anomalies if a.kind == "lost"),
        "unexpected": sum(1 for a in anomalies if a.kind == "unexpected"),
        "failed_requests": refused,
        "closed": closed,
        "anchored": anchored,
        "failed": failed,
        "incomplete": sum(1 for a in anomalies if a.kind == "incomplete"),
        "unexpected_outcomes": sum(1 for a in anomalies if a.kind == "unexpected-outcome"),
    }
    if not anomalies:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    if not record.drained and late == len(anomalies):
        return CheckResult(
            NAME,
            Verdict.UNKNOWN,
            tuple(anomalies),
            counts,
            error=f"{late} flow(s) still open with jobs still open, but the queue did not drain before the "
            "final read: they may be late rather than stuck",
        )
    return CheckResult(NAME, Verdict.INVALID, tuple(anomalies), counts)


def _unexpected_outcome(record: RunRecord, entity_id: str, failure: Row, events: list[Row]) -> Anomaly:
    """A flow failed where the scenario's faults may not fail one (a 2-second outage, a stale projection):
    the pipeline turned a transient fault into a lost document. Names the failed job's reason."""
    causes = [
        e for e in events if (match := JOB_EVENT.match(str(e.get("type", "")))) and match.group(2) == "failed"
    ]
    why = "; ".join(
        f"{c.get('type')} at {clock(epoch(c.get('at')))}: {(c.get('payload') or {}).get('error') or (c.get('payload') or {}).get('reason') or 'no reason given'}"
        for c in causes[:3]
    )
    at = epoch(failure.get("at"))
    return Anomaly(
        "unexpected-outcome",
        f"entity {short(entity_id)}: document.failed at {clock(at)}, but this scenario's faults may only end a "
        f"flow {' or '.join(record.scenario.expect.outcomes)}{during(record, at)}"
        + (f"; cause: {why}" if why else ""),
        (entity_id,),
        (event_row(entity_id, failure), *(event_row(entity_id, c) for c in causes[:3])),
    )


def _explained(failure: Row, events: list[Row]) -> bool:
    step = (failure.get("payload") or {}).get("step")
    for event in events:
        match = JOB_EVENT.match(str(event.get("type", "")))
        if match and match.group(2) == "failed" and (step is None or match.group(1) == str(step)):
            return True
    return False


def _request_row(req: Request) -> dict[str, object]:
    return {
        "op_index": req.index,
        "entity_id": req.entity_id,
        "event_id": req.event_id,
        "kind": req.kind,
        "outcome": str(req.outcome) if req.outcome else None,
        "error": req.error,
    }


def _lost(record: RunRecord, req: Request) -> Anomaly:
    return Anomaly(
        "lost",
        f"request op {req.index} (entity {short(req.entity_id)}, event {short(req.event_id)}) at "
        f"{clock(req.wall)} was acknowledged, but the event is not in the final read"
        f"{during(record, req.wall)}",
        (req.entity_id,),
        (_request_row(req),),
    )


def _unexpected(record: RunRecord, req: Request) -> Anomaly:
    return Anomaly(
        "unexpected",
        f"request op {req.index} (entity {short(req.entity_id)}, event {short(req.event_id)}) at "
        f"{clock(req.wall)} was reported failed ({req.error or 'no error text'}), yet its event is in the "
        f"final read{during(record, req.wall)}",
        (req.entity_id,),
        (_request_row(req),),
    )


def _incomplete(record: RunRecord, entity_id: str, events: list[Row]) -> tuple[Anomaly, bool]:
    """The anomaly, and whether the flow may merely be late (some job of it is still open)."""
    last = events[-1] if events else {}
    jobs = [j for j in record.final.jobs if str(j["entity_id"]) == entity_id]
    open_jobs = [j for j in jobs if j.get("status") not in FINAL_STATUSES]
    dead = [j for j in jobs if j.get("status") == "dead"]
    if open_jobs:
        listed = ", ".join(f"{j['id']} ({j['job_type']}, {j['status']})" for j in open_jobs)
        where = f"; open jobs: {listed}"
    else:
        where = "; no job of it is open, so nothing will ever close it"
        where += "".join(
            f"; job {j['id']} ({j['job_type']}) dead after {j.get('attempts')} attempt(s): {j.get('last_error')}"
            for j in dead[:3]
        )
    anomaly = Anomaly(
        "incomplete",
        f"entity {short(entity_id)}: flow never closed; last event {last.get('type')} at "
        f"{clock(epoch(last.get('at')))}{during(record, epoch(last.get('at')))}{where}",
        (entity_id,),
        (*(event_row(entity_id, e) for e in events[-3:]), *(job_row(j) for j in (open_jobs or dead[:3]))),
    )
    return anomaly, bool(open_jobs)
