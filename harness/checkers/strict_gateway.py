"""strict_gateway: in strict mode nothing entered executor_jobs except through the gateway.

Strict mode is the RFC's end state: the guard rejects every insert that does not come through the gateway.
So under `gateway_mode = strict` there must be no compat warning at all, and every job must carry a
gateway `materialized_via` (`trigger` for the core trigger, `direct_call` for a named call, `replay` for the
runbook's replay, which also calls the gateway). Anything else was admitted around it. Strict is judged
wherever it held: the whole run when the final settings say strict, and each fault window that held the
mode at strict (`effects.settings`), from its start to its heal. Outside strict this checker only counts.
"""

from __future__ import annotations

import math

from harness.checkers.rows import clock, epoch, job_row, plain, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "strict_gateway"


def strict_periods(record: RunRecord) -> list[tuple[float, float]]:
    """Wall-clock spans when gateway_mode was strict, from the final settings and the fault windows."""
    if str(record.final.settings.get("gateway_mode", "compat")) == "strict":
        return [(-math.inf, math.inf)]
    return sorted(
        (w.start_wall, math.inf if w.end_wall is None else w.end_wall)
        for w in record.faults
        if w.effects.settings.get("gateway_mode") == "strict"
    )


def check(record: RunRecord) -> CheckResult:
    """admitted: a compat warning, or a job materialized other than through the gateway, while strict."""
    final = record.final
    periods = strict_periods(record)
    mode = str(final.settings.get("gateway_mode", "compat"))
    counts: dict[str, object] = {
        "gateway_mode": mode,
        "strict_periods": [[_finite(a), _finite(b)] for a, b in periods],
        "compat_warnings": len(final.compat_warnings),
        "jobs": len(final.jobs),
    }
    if not periods:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    # Two witnesses of a write around the gateway: a compat warning, and a job whose materialized_via is not
    # one of the gateway's (where the pipeline records it and its SUT file names the gateway's values).
    gateway_via = tuple(record.sut.conventions.get("via_gateway") or ())
    judge_jobs = record.sut.has("materialized-via") and bool(gateway_via)
    judge_warnings = record.sut.has("compat-warnings")
    if not (judge_jobs or judge_warnings):
        return CheckResult(
            NAME,
            Verdict.NOT_APPLICABLE,
            (),
            counts,
            error="compat-warnings, materialized-via: the pipeline records neither compat warnings nor how "
            "each job was materialized ([conventions] via_gateway)",
        )

    def strict_at(value: object) -> bool:
        wall = epoch(value)
        return wall is None or any(a <= wall <= b for a, b in periods)

    anomalies = []
    warnings = sorted(final.compat_warnings, key=lambda w: (epoch(w.get("at")) or 0.0, str(w.get("id"))))
    if not judge_warnings:
        warnings = []
    for warning in warnings:
        if not strict_at(warning.get("at")):
            continue
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
    for job in final.jobs if judge_jobs else ():
        if job.get("materialized_via") in gateway_via or not strict_at(job.get("created_at")):
            continue
        anomalies.append(
            Anomaly(
                "admitted",
                f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}) created at "
                f"{clock(epoch(job.get('created_at')))} via {job.get('materialized_via')} under strict mode: "
                f"expected one of {', '.join(gateway_via)}",
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


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
