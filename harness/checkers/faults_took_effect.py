"""faults_took_effect: every fault the scenario planted really happened, or the run proves nothing.

A chaos run whose fault never took effect (a trigger that was already enabled, a worker that was not
running, a failpoint never hit) looks exactly like a pipeline that survived it. So this checker is never
invalid: it is valid when every fault window reports `took_effect = True`, and unknown otherwise, naming
each fault that did not take effect or could not be told, with its evidence.
"""

from __future__ import annotations

from harness.checkers.rows import describe_fault
from harness.records import CheckResult, RunRecord, Verdict

NAME = "faults_took_effect"


def check(record: RunRecord) -> CheckResult:
    """Unknown, naming the faults, when any FaultWindow.took_effect is not True."""
    doubtful = [w for w in record.faults if w.took_effect is not True]
    counts = {
        "faults": len(record.faults),
        "took_effect": len(record.faults) - len(doubtful),
        "not_taken": [w.label for w in doubtful if w.took_effect is False],
        "untold": [w.label for w in doubtful if w.took_effect is None],
    }
    if not doubtful:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    lines = [
        f"{describe_fault(w)} "
        f"{'did not take effect' if w.took_effect is False else 'could not be told to have taken effect'}"
        f" (evidence: {w.evidence or 'none recorded'})"
        for w in doubtful
    ]
    return CheckResult(
        NAME,
        Verdict.UNKNOWN,
        (),
        counts,
        error="the run proves nothing about these faults: " + "; ".join(lines),
    )
