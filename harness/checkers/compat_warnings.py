"""compat_warnings: every legacy insert redirected under compat left exactly one warning, naming its job.

Compat mode is the migration path: legacy writers keep working, redirected through the gateway, and every
redirection is recorded so the team can find and remove the writer. Each fault window says how many legacy
inserts its fault performed under compat (`effects.legacy_inserts`); the warnings must match that count, and each must name an existing job
that the guard materialized (`compat_redirect`). Too few: a legacy writer went unseen. Too many, or naming
no such job: noise the on-call cannot act on.
"""

from __future__ import annotations

from harness.checkers.rows import clock, epoch, job_row, plain, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "compat_warnings"


def legacy_inserts_under_compat(record: RunRecord) -> int:
    """What the faults say they inserted around the gateway while the mode was compat."""
    return sum(window.effects.legacy_inserts for window in record.faults)


def check(record: RunRecord) -> CheckResult:
    """unwarned-legacy-insert and spurious-warning; not applicable where compat warnings cannot be read."""
    if not record.sut.has("compat-warnings"):
        return CheckResult(
            NAME,
            Verdict.NOT_APPLICABLE,
            (),
            {},
            error=f"compat-warnings: {record.sut.why_not('compat-warnings')}",
        )
    final = record.final
    expected = legacy_inserts_under_compat(record)
    # Which jobs the compat guard redirected, where the pipeline says so (materialized_via); else only the
    # count of warnings is judged.
    redirected = record.sut.conventions.get("via_redirect") if record.sut.has("materialized-via") else None
    warnings = sorted(final.compat_warnings, key=lambda w: (epoch(w.get("at")) or 0.0, str(w.get("id"))))
    jobs = {str(j["id"]): j for j in final.jobs}
    anomalies = []
    named: set[str] = set()
    for warning in warnings:
        job = jobs.get(str(warning.get("job_id")))
        if job is not None and (redirected is None or job.get("materialized_via") == redirected):
            named.add(str(job["id"]))
            continue
        if job is None and warning.get("job_id") is None and redirected is None:
            continue  # the pipeline's warnings name no job: only their count can be judged
        why = (
            f"names job {warning.get('job_id')}, which does not exist"
            if job is None
            else f"names job {job['id']}, materialized via {job.get('materialized_via')}, not {redirected}"
        )
        anomalies.append(
            Anomaly(
                "spurious-warning",
                f"compat warning {warning.get('id')} at {clock(epoch(warning.get('at')))} (source "
                f"{warning.get('source')}, entity {short(warning.get('entity_id'))}) {why}",
                (str(warning.get("entity_id")),) if warning.get("entity_id") else (),
                (plain(warning), *((job_row(job),) if job is not None else ())),
            )
        )
    unwarned = [
        j
        for j in final.jobs
        if redirected is not None and j.get("materialized_via") == redirected and str(j["id"]) not in named
    ]
    for job in sorted(unwarned, key=lambda j: int(j["id"])):
        anomalies.append(
            Anomaly(
                "unwarned-legacy-insert",
                f"job {job['id']} ({job['job_type']}, entity {short(job['entity_id'])}) was redirected "
                f"through the gateway at {clock(epoch(job.get('created_at')))} but no compat warning names it",
                (str(job["entity_id"]),),
                (job_row(job),),
            )
        )
    if len(warnings) < expected and not unwarned:
        anomalies.append(
            Anomaly(
                "unwarned-legacy-insert",
                f"the nemesis performed {expected} legacy insert(s) under compat but only {len(warnings)} "
                "compat warning(s) were recorded",
                (),
                ({"legacy_inserts": expected, "compat_warnings": len(warnings)},),
            )
        )
    elif len(warnings) > expected:
        anomalies.append(
            Anomaly(
                "spurious-warning",
                f"{len(warnings)} compat warning(s) recorded but the nemesis performed only {expected} legacy "
                "insert(s) under compat",
                tuple(dict.fromkeys(str(w["entity_id"]) for w in warnings if w.get("entity_id"))),
                tuple(plain(w) for w in warnings[:5]),
            )
        )
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {
            "legacy_inserts_under_compat": expected,
            "compat_warnings": len(warnings),
            "redirected_jobs": sum(
                1 for j in final.jobs if redirected and j.get("materialized_via") == redirected
            ),
        },
    )
