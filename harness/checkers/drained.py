"""drained: the queue went quiet before the final read, so "lost" and "incomplete" mean what they say.

After healing, the runner waits for the queue to be quiescent and only then reads the final state. When it
timed out instead, a job still running or a flow still open may be merely late, so this checker is unknown
and says which jobs were still open; other checkers stay honest on their own (flows_complete and
traces_complete turn "still open" into unknown too).
"""

from __future__ import annotations

from harness.checkers.rows import job_row, short
from harness.records import CheckResult, RunRecord, Verdict

NAME = "drained"
OPEN = ("queued", "running", "retrying")


def check(record: RunRecord) -> CheckResult:
    """Unknown when record.drained is False, naming the jobs still open in the final read."""
    still_open = sorted((j for j in record.final.jobs if j.get("status") in OPEN), key=lambda j: int(j["id"]))
    counts = {
        "drained": record.drained,
        "drain_ended": record.drain_ended,
        "open_jobs": len(still_open),
        "open_job_rows": [job_row(j) for j in still_open[:10]],
    }
    if record.drained:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    if not still_open:
        return CheckResult(
            NAME,
            Verdict.UNKNOWN,
            (),
            counts,
            error=f"the run did not drain before the timeout ({record.scenario.drain_timeout_s:g} s), yet no job "
            "was queued, running or retrying at the final read: what kept the drain waiting was outside the "
            "queue (an alert still firing or pending?); flows and traces with no open job are judged as final",
        )
    named = ", ".join(
        f"{j['id']} ({j['job_type']}, entity {short(j['entity_id'])}, {j['status']})" for j in still_open[:5]
    )
    if record.drain_ended == "stalled":
        return CheckResult(
            NAME,
            Verdict.UNKNOWN,
            (),
            counts,
            error=f"the queue stopped moving with work left ({record.scenario.stall_s:g} s with no job or run "
            f"changing and nothing scheduled), so the drain ended early; no_stuck_job says whether those jobs "
            f"are stuck for good. Open jobs at the final read: {len(still_open)}: {named}",
        )
    return CheckResult(
        NAME,
        Verdict.UNKNOWN,
        (),
        counts,
        error=f"the queue did not go quiet before the drain timeout ({record.scenario.drain_timeout_s:g} s); "
        f"the final read may call late jobs lost or flows incomplete. Open jobs at the final read: "
        f"{len(still_open)}{': ' + named if named else ''}",
    )
