"""one_side_effect_per_job: each job's external side effect happened once, as the services themselves saw it.

The pipeline records one canonical result per job, but the RFC's `tsa` and `anchor` steps act on the world:
a timestamp token issued, a ledger entry written (the one whose duplicate costs money). A handler that sends a
new idempotency key on each attempt makes the service act twice after a crash-and-retry while the pipeline
still records one result, so only the services can tell. After the drain the harness reads back what each
service issued, per job (`[side_effects]` in the SUT file names the job type that calls each service):

- `duplicated-side-effect`: two or more for one job;
- `missing-side-effect`: none for a job that succeeded (it claims a result the world never saw);
- `unexpected-side-effect`: one for a job that never ran (no run), or for no job of that type at all.

Not applicable for a service the harness cannot read back (it does not answer `/_admin/issued`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.checkers.rows import job_row, plain, runs_by_job, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "one_side_effect_per_job"


def check(record: RunRecord) -> CheckResult:
    """duplicated-side-effect, missing-side-effect, unexpected-side-effect."""
    read = record.final.side_effects
    calls: Mapping[str, Any] = record.sut.conventions.get("side_effects") or {}
    if not read or not calls:
        why = record.sut.why_not("side-effects")
        return CheckResult(NAME, Verdict.NOT_APPLICABLE, (), {}, error=f"side-effects: {why}")
    runs = runs_by_job(record.final)
    anomalies: list[Anomaly] = []
    counts: dict[str, Any] = {}
    for service, issued in sorted(read.items()):
        job_type = calls.get(service)
        if job_type is None:
            continue
        jobs = {str(j["id"]): j for j in record.final.jobs if j.get("job_type") == job_type}
        by_job: dict[str, list[Mapping[str, Any]]] = {}
        for item in issued:
            by_job.setdefault(str(item.get("job_id")), []).append(item)
        for job_id, items in sorted(by_job.items()):
            job = jobs.get(job_id)
            if job is None:
                anomalies.append(_unexpected(service, job_type, job_id, items, "no such job"))
            elif len(items) > 1:
                anomalies.append(
                    Anomaly(
                        "duplicated-side-effect",
                        f"{service} acted {len(items)} times for job {job_id} ({job_type}, entity "
                        f"{short(job['entity_id'])}, {job.get('attempts')} attempt(s)): keys "
                        f"{', '.join(sorted({str(i.get('key')) for i in items}))}; one job must make one "
                        "side effect however often it is retried",
                        (str(job["entity_id"]),),
                        (job_row(job), *(plain(dict(i)) for i in items[:4])),
                    )
                )
            elif not runs.get(int(job_id)):
                anomalies.append(_unexpected(service, job_type, job_id, items, "the job never ran"))
        for job_id, job in sorted(jobs.items()):
            if job.get("status") == "succeeded" and job_id not in by_job:
                anomalies.append(
                    Anomaly(
                        "missing-side-effect",
                        f"job {job_id} ({job_type}, entity {short(job['entity_id'])}) succeeded, but {service} "
                        "never acted for it: the pipeline recorded a result the world never saw",
                        (str(job["entity_id"]),),
                        (job_row(job),),
                    )
                )
        counts[service] = {"job_type": job_type, "issued": len(issued), "jobs": len(jobs)}
    return CheckResult(NAME, Verdict.INVALID if anomalies else Verdict.VALID, tuple(anomalies), counts)


def _unexpected(
    service: str, job_type: str, job_id: str, items: list[Mapping[str, Any]], why: str
) -> Anomaly:
    return Anomaly(
        "unexpected-side-effect",
        f"{service} acted {len(items)} time(s) for job {job_id}, but {why} ({job_type} jobs call it)",
        (),
        tuple(plain(dict(i)) for i in items[:4]),
    )
