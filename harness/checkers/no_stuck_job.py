"""no_stuck_job: after heal and drain, nothing is stuck where no amount of waiting would move it.

A pipeline that never re-claims an expired lease leaves a crashed worker's jobs `running` forever; one that
retries past its attempts never lets a job die; both look like a queue that is merely slow, and a run that
waits for them only ends `unknown (not drained)`. They are certain bugs:

- a job `running` whose lease expired more than a grace before the final read (its lease plus a drain
  poll: time enough for any worker or scheduler to re-claim it) and that has no run started since;
- a job `retrying` that has used all its attempts (`attempts >= max_attempts`): it can only die.

A queue still moving (a lease not long expired, a retry with attempts left) is not judged here: `drained`
says unknown for it. Needs the jobs' lease expiry (`lease_expires_at`) and the time of the final read; without
them the check is not applicable.
"""

from __future__ import annotations

from harness.checkers.rows import clock, epoch, job_row, run_row, runs_by_job, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "no_stuck_job"
POLL_GRACE_S = 3.0  # the drain polls every 0.3 s and a scheduler wakes within a few; beyond this, nobody will


def check(record: RunRecord) -> CheckResult:
    """stuck: a job that no worker will ever move again."""
    final = record.final
    read_at = final.read_at
    if read_at is None:
        return CheckResult(NAME, Verdict.NOT_APPLICABLE, (), {}, error="the final read has no time")
    lease_s = _lease(record)
    runs = runs_by_job(final)
    anomalies: list[Anomaly] = []
    leases_known = 0
    for job in final.jobs:
        status = job.get("status")
        if status == "running":
            expiry = epoch(job.get("lease_expires_at"))
            if expiry is None:
                continue
            leases_known += 1
            grace = lease_s + POLL_GRACE_S
            later = [r for r in runs.get(int(job["id"]), []) if (epoch(r.get("started_at")) or 0.0) >= expiry]
            if expiry + grace < read_at and not later:
                last = max(runs.get(int(job["id"]), []), key=lambda r: int(r["id"]), default=None)
                anomalies.append(
                    Anomaly(
                        "stuck",
                        f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}) is running on a "
                        f"lease that expired at {clock(expiry)}, {read_at - expiry:.1f} s before the final read "
                        f"(more than the lease of {lease_s:g} s plus {POLL_GRACE_S:g} s), and no run has started "
                        "since: no worker re-claims an expired lease, so its flow will never move",
                        (str(job["entity_id"]),),
                        (job_row(job), *((run_row(last),) if last else ())),
                    )
                )
        elif status == "retrying":
            attempts, most = job.get("attempts"), job.get("max_attempts")
            if isinstance(attempts, int) and isinstance(most, int) and attempts >= most:
                anomalies.append(
                    Anomaly(
                        "stuck",
                        f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}) is retrying "
                        f"after {attempts} of {most} attempts: it can only be claimed past its last attempt or "
                        "never; it should be dead, with its job.<type>.failed event",
                        (str(job["entity_id"]),),
                        (job_row(job),),
                    )
                )
    counts = {"jobs": len(final.jobs), "running_with_lease": leases_known, "stuck": len(anomalies)}
    return CheckResult(NAME, Verdict.INVALID if anomalies else Verdict.VALID, tuple(anomalies), counts)


def _lease(record: RunRecord) -> float:
    """The lease the pipeline gave its jobs in this run: its setting, else 30 s (the reference's default)."""
    value = record.final.settings.get("lease_seconds") or record.scenario.settings.get("lease_seconds")
    try:
        return float(value) if value is not None else 30.0
    except ValueError:
        return 30.0
