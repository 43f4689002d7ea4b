"""no_lost_job: every canonical event that needs work has its job (Jepsen total-queue: lost, unexpected).

The core trigger turns an event into its job in the same transaction as the append, so a job cannot be
merely late: an event without its job after the drain was lost (a disabled or skipping trigger, a broken
gateway). The other half of the queue contract is checked here too: a job with no canonical event behind it
(`unexpected`) is a second authority writing the queue, the dual path the RFC removes. Jobs the gateway was
asked for by name (`materialized_via = direct_call`) carry the caller's source id and are left alone.
"""

from __future__ import annotations

from harness.checkers.rows import (
    clock,
    during,
    entity_events,
    epoch,
    event_row,
    execution_types,
    job_row,
    jobs_by_source,
    needs_job,
    short,
)
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "no_lost_job"


def check(record: RunRecord) -> CheckResult:
    """Lost: a job-needing event with no job of that source. Unexpected: a job with no source event."""
    final = record.final
    exec_types = execution_types(final)
    by_source = jobs_by_source(final)
    events = entity_events(final)
    anomalies: list[Anomaly] = []
    needing = 0
    for entity_id, entity_evs in events.items():
        for event in entity_evs:
            etype, eid = str(event.get("type", "")), str(event.get("id"))
            if not needs_job(etype, exec_types):
                continue
            needing += 1
            if by_source.get((entity_id, eid)):
                continue
            at = epoch(event.get("at"))
            anomalies.append(
                Anomaly(
                    "lost",
                    f"event {etype} {short(eid)} (entity {short(entity_id)}) at {clock(at)}: "
                    f"no job materialized{during(record, at)}",
                    (entity_id,),
                    (event_row(entity_id, event),),
                )
            )
    event_ids = {(entity_id, str(e.get("id"))) for entity_id, evs in events.items() for e in evs}
    orphans = 0
    direct = record.sut.conventions.get("via_direct_call")
    for job in final.jobs:
        key = (str(job["entity_id"]), str(job["source_event_id"]))
        if key in event_ids or (direct and job.get("materialized_via") == direct):
            continue
        orphans += 1
        created = epoch(job.get("created_at"))
        anomalies.append(
            Anomaly(
                "unexpected",
                f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}) created at "
                f"{clock(created)} via {job.get('materialized_via')}: its source event "
                f"{short(job['source_event_id'])} is not among the entity's events (no canonical event "
                f"behind it){during(record, created)}",
                (str(job["entity_id"]),),
                (job_row(job),),
            )
        )
    lost = sum(1 for a in anomalies if a.kind == "lost")
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {"events_needing_a_job": needing, "jobs": len(final.jobs), "lost": lost, "unexpected": orphans},
    )
