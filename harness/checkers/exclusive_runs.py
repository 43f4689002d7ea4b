"""exclusive_runs: a job is run by one worker at a time, and every run ends.

Real deployments run several workers of a role; a claim that lost its `FOR UPDATE ... SKIP LOCKED`, or that
hands out a job whose lease has not expired, gives one job to two workers at once: both do the work (two side
effects, two results raced), and one of the runs may be left open forever. Two runs of one job *overlap*
when the later one started before the earlier one ended; a re-claim after a lease expired is not an overlap,
because the pipeline ends the lost run (`lease_expired`) when it hands the job to the next worker, at or
before the next run starts. A run still open after the drain is an anomaly of its own: its job is either done
by someone else or stuck with it.

Runs are read as the final read has them: `started_at` and `finished_at` as the pipeline recorded them.
"""

from __future__ import annotations

import math

from harness.checkers.rows import Row, clock, epoch, job_row, run_row, runs_by_job, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "exclusive_runs"
TOLERANCE_S = 0.001  # timestamps of one transaction can tie; a microsecond is no overlap


def check(record: RunRecord) -> CheckResult:
    """overlapping-runs and open-run."""
    final = record.final
    jobs = {int(j["id"]): j for j in final.jobs}
    anomalies: list[Anomaly] = []
    overlapping = open_runs = 0
    for job_id, runs in sorted(runs_by_job(final).items()):
        job = jobs.get(job_id, {"id": job_id, "entity_id": "?", "job_type": "?"})
        ordered = sorted(runs, key=lambda r: (epoch(r.get("started_at")) or 0.0, int(r["id"])))
        for earlier, later in _overlaps(ordered):
            overlapping += 1
            anomalies.append(_overlap(record, job, earlier, later))
        for run in ordered:
            if run.get("finished_at") is None and record.drained:
                open_runs += 1
                anomalies.append(_open(job, run))
    counts = {
        "jobs_with_runs": len(runs_by_job(final)),
        "runs": len(final.runs),
        "overlapping": overlapping,
        "open_runs": open_runs,
    }
    return CheckResult(NAME, Verdict.INVALID if anomalies else Verdict.VALID, tuple(anomalies), counts)


def _overlaps(runs: list[Row]) -> list[tuple[Row, Row]]:
    """Pairs (earlier, later) where `later` started before `earlier` ended (an open run never ended)."""
    found = []
    for index, earlier in enumerate(runs):
        end = epoch(earlier.get("finished_at"))
        end = math.inf if end is None else end
        for later in runs[index + 1 :]:
            start = epoch(later.get("started_at"))
            if start is not None and start < end - TOLERANCE_S:
                found.append((earlier, later))
    return found


def _overlap(record: RunRecord, job: Row, earlier: Row, later: Row) -> Anomaly:
    end = epoch(earlier.get("finished_at"))
    return Anomaly(
        "overlapping-runs",
        f"job {job['id']} ({job.get('job_type')}, entity {short(job.get('entity_id'))}) was run twice at once: "
        f"run {earlier['id']} by {earlier.get('worker')} from {clock(epoch(earlier.get('started_at')))} to "
        f"{clock(end) if end is not None else 'never ended'} ({earlier.get('outcome') or 'open'}), and run "
        f"{later['id']} by {later.get('worker')} from {clock(epoch(later.get('started_at')))} "
        f"({later.get('outcome') or 'open'}): two workers held the job together (a claim without its lock?)",
        (str(job.get("entity_id")),),
        (job_row(job), run_row(earlier), run_row(later)),
    )


def _open(job: Row, run: Row) -> Anomaly:
    return Anomaly(
        "open-run",
        f"run {run['id']} of job {job['id']} ({job.get('job_type')}, entity {short(job.get('entity_id'))}) by "
        f"{run.get('worker')}, started {clock(epoch(run.get('started_at')))}, never ended although the queue "
        f"drained (job {job.get('status')})",
        (str(job.get("entity_id")),),
        (job_row(job), run_row(run)),
    )
