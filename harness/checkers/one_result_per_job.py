"""one_result_per_job: every finished execution job told its outcome exactly once, canonically.

The RFC's path ends in one canonical result: a succeeded execution job has exactly one
`job.<type>.completed` event naming it (payload.job_id) and its succeeded run records that event's id; a
dead one has exactly one `job.<type>.failed`. A handler that emits twice, a crash between the side effect
and the event, or a late worker that was fenced off but still appended all show up here. Results are
counted by event id: the same event appended twice (a nemesis duplicate) is one result.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checkers.rows import (
    JOB_EVENT,
    Row,
    clock,
    entity_events,
    epoch,
    event_row,
    execution_types,
    job_row,
    result_job_id,
    run_row,
    runs_by_job,
    short,
)
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "one_result_per_job"


def check(record: RunRecord) -> CheckResult:
    """Duplicated-result, missing-result, unexpected-result, per execution job and per stray outcome event."""
    final = record.final
    exec_types = execution_types(final)
    jobs = {int(j["id"]): j for j in final.jobs}
    runs = runs_by_job(final)
    results: dict[int, list[tuple[str, Row]]] = {}
    anomalies: list[Anomaly] = []
    for entity_id, events in entity_events(final).items():
        for event in events:
            match = JOB_EVENT.match(str(event.get("type", "")))
            if not match or match.group(2) == "required" or match.group(1) not in exec_types:
                continue
            job_id = result_job_id(event)
            job = jobs.get(job_id) if job_id is not None else None
            if (
                job_id is None
                or job is None
                or str(job["entity_id"]) != entity_id
                or str(job["job_type"]) != match.group(1)
            ):
                anomalies.append(_stray(entity_id, event, job_id, job))
                continue
            results.setdefault(job_id, []).append((entity_id, event))

    judged = 0
    for job_id, job in sorted(jobs.items()):
        if str(job["job_type"]) not in exec_types and job.get("kind") != "execution":
            continue
        judged += 1
        mine = results.get(job_id, [])
        completed = [e for _, e in mine if str(e["type"]).endswith(".completed")]
        failed = [e for _, e in mine if str(e["type"]).endswith(".failed")]
        status = str(job.get("status"))
        if status == "succeeded":
            anomalies.extend(_one(job, completed, "completed", runs.get(job_id, [])))
            if failed:
                anomalies.append(_contradiction(job, failed))
        elif status == "dead":
            anomalies.extend(_one(job, failed, "failed", ()))
            if completed:
                anomalies.append(_contradiction(job, completed))
        elif mine:
            anomalies.append(_contradiction(job, [e for _, e in mine]))
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {
            "execution_jobs": judged,
            "result_events": sum(len(v) for v in results.values()),
            **{kind: sum(1 for a in anomalies if a.kind == kind) for kind in _KINDS},
        },
    )


_KINDS = ("duplicated-result", "missing-result", "unexpected-result")


def _label(job: Row) -> str:
    return f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}, {job.get('status')})"


def _one(job: Row, events: Sequence[Row], outcome: str, runs: Sequence[Row]) -> list[Anomaly]:
    entity_id = str(job["entity_id"])
    witnesses = (job_row(job), *(event_row(entity_id, e) for e in events))
    name = f"job.{job['job_type']}.{outcome}"
    if len(events) > 1:
        when = ", ".join(f"{short(e.get('id'))} at {clock(epoch(e.get('at')))}" for e in events)
        return [
            Anomaly(
                "duplicated-result",
                f"{_label(job)}: {len(events)} {name} events ({when}); expected exactly one",
                (entity_id,),
                witnesses,
            )
        ]
    if not events:
        return [
            Anomaly(
                "missing-result",
                f"{_label(job)}: no {name} event names it (payload.job_id = {job['id']})",
                (entity_id,),
                witnesses,
            )
        ]
    if outcome != "completed":
        return []
    succeeded = [r for r in runs if r.get("outcome") == "succeeded"]
    event_id = str(events[0].get("id"))
    if len(succeeded) > 1:
        return [
            Anomaly(
                "duplicated-result",
                f"{_label(job)}: {len(succeeded)} succeeded runs "
                f"({', '.join(str(r['id']) for r in succeeded)}); expected exactly one",
                (entity_id,),
                (*witnesses, *(run_row(r) for r in succeeded)),
            )
        ]
    if not succeeded or str(succeeded[0].get("result_event_id")) != event_id:
        told = (
            f"its succeeded run {succeeded[0]['id']} records result event "
            f"{short(succeeded[0].get('result_event_id'))}"
            if succeeded
            else "no succeeded run records it"
        )
        return [
            Anomaly(
                "missing-result",
                f"{_label(job)}: its {name} event is {short(event_id)} but {told}",
                (entity_id,),
                (*witnesses, *(run_row(r) for r in succeeded)),
            )
        ]
    return []


def _contradiction(job: Row, events: Sequence[Row]) -> Anomaly:
    entity_id = str(job["entity_id"])
    names = ", ".join(f"{e.get('type')} {short(e.get('id'))} at {clock(epoch(e.get('at')))}" for e in events)
    return Anomaly(
        "unexpected-result",
        f"{_label(job)}: outcome event(s) {names} contradict its status",
        (entity_id,),
        (job_row(job), *(event_row(entity_id, e) for e in events)),
    )


def _stray(entity_id: str, event: Row, job_id: int | None, job: Row | None) -> Anomaly:
    if job_id is None:
        why = "names no job (no payload.job_id)"
    elif job is None:
        why = f"names job {job_id}, which does not exist"
    else:
        why = f"names job {job_id}, which is a {job['job_type']} job of entity {short(job['entity_id'])}"
    witnesses = (event_row(entity_id, event), *((job_row(job),) if job is not None else ()))
    return Anomaly(
        "unexpected-result",
        f"event {event.get('type')} {short(event.get('id'))} (entity {short(entity_id)}) at "
        f"{clock(epoch(event.get('at')))} {why}",
        tuple(sorted({entity_id, *((str(job["entity_id"]),) if job is not None else ())})),
        witnesses,
    )
