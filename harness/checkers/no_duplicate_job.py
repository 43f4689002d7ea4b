"""no_duplicate_job: one job per (entity, job type, source event), and one flow per intent.

Two jobs for the same source event mean the gateway's dedupe key failed (a gateway without
`ON CONFLICT`, an ambiguous key). Two execution jobs of one type on one entity, each born from its own
`job.<type>.required` event, mean the decision worker started a second flow for the same intent (a
duplicated request was not recognised). Required events that carry a payload `_compat` marker are the
guard's redirection of a legacy direct insert: counted apart, never a second flow.

A duplicate is to be absorbed, not fought: a duplicate event that the pipeline answered with an integrity
error (SQLSTATE class 23, e.g. a unique violation on the queue's dedupe key because the gateway lost its
`ON CONFLICT`) is `duplicate-conflict`: a redelivered event would fail its writer forever. A deliberate
refusal (the pipeline's own RAISE, any other class) is the pipeline's choice and only counted.
"""

from __future__ import annotations

from harness.checkers.rows import (
    JOB_EVENT,
    Row,
    clock,
    entity_events,
    epoch,
    event_row,
    execution_types,
    job_row,
    short,
)
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "no_duplicate_job"


def check(record: RunRecord) -> CheckResult:
    """Duplicated: two jobs for one dedupe triple. Duplicated-flow: two required events for one step."""
    final = record.final
    anomalies: list[Anomaly] = []
    triples: dict[tuple[str, str, str], list[Row]] = {}
    for job in final.jobs:
        key = (str(job["entity_id"]), str(job["job_type"]), str(job["source_event_id"]))
        triples.setdefault(key, []).append(job)
    for (entity_id, job_type, source_id), jobs in sorted(triples.items()):
        if len(jobs) < 2:
            continue
        jobs = sorted(jobs, key=lambda j: int(j["id"]))
        anomalies.append(
            Anomaly(
                "duplicated",
                f"{len(jobs)} {job_type} jobs (ids {', '.join(str(j['id']) for j in jobs)}) for one source "
                f"event {short(source_id)} of entity {short(entity_id)}, created at "
                f"{', '.join(clock(epoch(j.get('created_at'))) for j in jobs)}: the dedupe key "
                f"{jobs[0].get('dedupe_key')} did not hold",
                (entity_id,),
                tuple(job_row(j) for j in jobs),
            )
        )

    refusals = [r for w in record.faults for r in w.effects.refused_duplicates]
    for refusal in refusals:
        if not refusal.sqlstate.startswith("23"):
            continue
        anomalies.append(
            Anomaly(
                "duplicate-conflict",
                f"a duplicate written to entity {short(refusal.entity_id)} was answered with integrity error "
                f"{refusal.sqlstate} ({refusal.error}): the dedupe did not absorb it, so a writer that "
                "redelivers an event fails instead of being deduplicated",
                (refusal.entity_id,),
                ({"entity_id": refusal.entity_id, "sqlstate": refusal.sqlstate, "error": refusal.error},),
            )
        )

    exec_types = execution_types(final)
    by_id = {(ent, str(e.get("id"))): e for ent, evs in entity_events(final).items() for e in evs}
    flows_jobs: dict[tuple[str, str], list[tuple[Row, Row]]] = {}
    compat = 0
    marker = record.sut.conventions.get("compat_marker")
    for job in final.jobs:
        if str(job["job_type"]) not in exec_types:
            continue
        entity_id = str(job["entity_id"])
        source = by_id.get((entity_id, str(job["source_event_id"])))
        if source is None or not _is_required(source, str(job["job_type"])):
            continue
        if marker and marker in (source.get("payload") or {}):
            compat += 1
            continue
        flows_jobs.setdefault((entity_id, str(job["job_type"])), []).append((source, job))
    for (entity_id, job_type), born in sorted(flows_jobs.items()):
        sources = {str(source.get("id")) for source, _ in born}
        if len(sources) < 2:
            continue
        born = sorted(born, key=lambda pair: int(pair[1]["id"]))
        anomalies.append(
            Anomaly(
                "duplicated-flow",
                f"entity {short(entity_id)} has {len(born)} {job_type} jobs "
                f"({', '.join(str(j['id']) for _, j in born)}) born from {len(sources)} distinct "
                f"job.{job_type}.required events (at "
                f"{', '.join(clock(epoch(s.get('at'))) for s, _ in born)}): a second flow was started for "
                "the same intent",
                (entity_id,),
                tuple(row for s, j in born for row in (event_row(entity_id, s), job_row(j))),
            )
        )
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {
            "jobs": len(final.jobs),
            "duplicated": sum(1 for a in anomalies if a.kind == "duplicated"),
            "duplicated_flows": sum(1 for a in anomalies if a.kind == "duplicated-flow"),
            "compat_jobs": compat,
            "refused_duplicates": len(refusals),
            "duplicate_conflicts": sum(1 for a in anomalies if a.kind == "duplicate-conflict"),
        },
    )


def _is_required(event: Row, job_type: str) -> bool:
    match = JOB_EVENT.match(str(event.get("type", "")))
    return match is not None and match.group(1) == job_type and match.group(2) == "required"
