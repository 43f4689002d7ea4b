"""strict_gateway: in strict mode nothing entered executor_jobs except through the gateway.

Strict mode is the RFC's end state: the guard rejects every insert that does not come through the gateway.
So under `gateway_mode = strict` there must be no compat warning at all, and every job must carry a
gateway `materialized_via` (`trigger` for the core trigger, `direct_call` for a named call, `replay` for the
runbook's replay, which also calls the gateway). Anything else was admitted around it. In compat mode this
checker only counts.
"""

from __future__ import annotations

from harness.checkers.rows import clock, epoch, job_row, plain, short
from harness.model import Anomaly, CheckResult, RunRecord, Verdict

NAME = "strict_gateway"
GATEWAY_VIA = ("trigger", "direct_call", "replay")


def check(record: RunRecord) -> CheckResult:
    """admitted: a compat warning, or a job materialized other than through the gateway, under strict."""
    final = record.final
    mode = str(final.settings.get("gateway_mode", "compat"))
    counts: dict[str, object] = {
        "gateway_mode": mode,
        "compat_warnings": len(final.compat_warnings),
        "jobs": len(final.jobs),
    }
    if mode != "strict":
        return CheckResult(NAME, Verdict.VALID, (), counts)
    anomalies = []
    for warning in sorted(final.compat_warnings, key=lambda w: (epoch(w.get("at")) or 0.0, str(w.get("id")))):
        anomalies.append(
            Anomaly(
                "admitted",
                f"compat warning {warning.get('id')} at {clock(epoch(warning.get('at')))} under strict mode: "
                f"a direct insert from {warning.get('source')} ({warning.get('job_type')}, entity "
                f"{short(warning.get('entity_id'))}) was redirected instead of rejected",
                (str(warning.get("entity_id")),) if warning.get("entity_id") else (),
                (plain(warning),),
            )
        )
    for job in final.jobs:
        if job.get("materialized_via") in GATEWAY_VIA:
            continue
        anomalies.append(
            Anomaly(
                "admitted",
                f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}) created at "
                f"{clock(epoch(job.get('created_at')))} via {job.get('materialized_via')} under strict mode: "
                f"expected one of {', '.join(GATEWAY_VIA)}",
                (str(job["entity_id"]),),
                (job_row(job),),
            )
        )
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {**counts, "admitted": len(anomalies)},
    )
