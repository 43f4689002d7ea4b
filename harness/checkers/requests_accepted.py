"""requests_accepted: the pipeline accepts valid requests.

Every workload request is a well-formed protection request, so a `fail` completion (the database certainly
refused it) means the pipeline rejected valid work: a broken gateway (the ambiguous dedupe-key reference of
the legacy migration raises 42702 inside the core trigger), a dropped function, a bad privilege. `info`
completions (a connection cut mid-call) are not refusals: whether they landed is for flows_complete to say.
"""

from __future__ import annotations

from collections import Counter

from harness.checkers.rows import short
from harness.history import OpType, pairs
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "requests_accepted"


def check(record: RunRecord) -> CheckResult:
    """Invalid when any workload request completed with `fail`, grouping the refusals by error."""
    requests = [(invoke, done) for invoke, done in pairs(record.ops, "client-") if invoke.f == "request"]
    refused = [(invoke, done) for invoke, done in requests if done is not None and done.type is OpType.FAIL]
    counts = Counter(done.type.value if done else "open" for _, done in requests)
    if not refused:
        return CheckResult(NAME, Verdict.VALID, (), dict(counts))
    by_error: dict[str, list[str]] = {}
    for invoke, done in refused:
        by_error.setdefault((done.error or "no error text") if done else "", []).append(
            str(invoke.value["entity_id"])
        )
    anomalies = tuple(
        Anomaly(
            "rejected",
            f"{len(entities)} of {len(requests)} valid protection request(s) refused by the database: {error} "
            f"(first: entity {short(entities[0])})",
            tuple(entities),
            ({"error": error, "refused": len(entities)},),
        )
        for error, entities in sorted(by_error.items(), key=lambda item: -len(item[1]))
    )
    return CheckResult(NAME, Verdict.INVALID, anomalies, dict(counts))
