"""kpi_agrees: the pipeline's own `event_to_job_gap` KPI says what the rows say.

The RFC's KPI exists to show a `job.*.required` event that got no job. A KPI that silently drops exactly
those events (a join that should be outer, a filter on the job's columns) shows a healthy gap while the
pipeline loses work, and every alert built on it stays quiet. So the harness measures the KPI's question
itself from the final rows (each required event, and whether a job of that source exists) and compares:

- `kpi-blind`: an event with no job that the KPI does not list at all;
- `kpi-wrong`: an event the KPI says has no job (pending, breached) although one exists, or says has a job
  (materialized, late) although none does.

Not applicable when the pipeline has no KPI of its own that the harness can read (`[reads] kpi` in the SUT
file, rows `entity_id, event_id, status`); the harness's own pack is judged by the harness's tests instead.
"""

from __future__ import annotations

from harness.checkers.rows import JOB_EVENT, clock, entity_events, epoch, event_row, jobs_by_source, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "kpi_agrees"
NO_JOB = ("pending", "breached")
HAS_JOB = ("materialized", "late")


def check(record: RunRecord) -> CheckResult:
    """kpi-blind and kpi-wrong."""
    kpi = record.final.kpi
    if kpi is None:
        return CheckResult(NAME, Verdict.NOT_APPLICABLE, (), {}, error=f"kpi: {record.sut.why_not('kpi')}")
    said = {(str(r.get("entity_id")), str(r.get("event_id"))): str(r.get("status")) for r in kpi}
    by_source = jobs_by_source(record.final)
    anomalies: list[Anomaly] = []
    required = without = 0
    for entity_id, events in sorted(entity_events(record.final).items()):
        for event in events:
            match = JOB_EVENT.match(str(event.get("type", "")))
            if not match or match.group(2) != "required":
                continue
            required += 1
            key = (entity_id, str(event.get("id")))
            has_job = bool(by_source.get(key))
            without += not has_job
            status = said.get(key)
            at = epoch(event.get("at"))
            if status is None and not has_job:
                anomalies.append(
                    Anomaly(
                        "kpi-blind",
                        f"event {event.get('type')} {short(event.get('id'))} of entity {short(entity_id)} at "
                        f"{clock(at)} has no job, and the pipeline's event_to_job_gap KPI does not list it: the "
                        "KPI is blind to the very failure it exists to show",
                        (entity_id,),
                        (event_row(entity_id, event),),
                    )
                )
            elif (status in NO_JOB and has_job) or (status in HAS_JOB and not has_job):
                truth = "has a job" if has_job else "has no job"
                anomalies.append(
                    Anomaly(
                        "kpi-wrong",
                        f"event {event.get('type')} {short(event.get('id'))} of entity {short(entity_id)} "
                        f"{truth}, but the pipeline's event_to_job_gap KPI says {status}",
                        (entity_id,),
                        (event_row(entity_id, event), {"kpi_status": status}),
                    )
                )
    counts = {"required_events": required, "without_job": without, "kpi_rows": len(kpi)}
    return CheckResult(NAME, Verdict.INVALID if anomalies else Verdict.VALID, tuple(anomalies), counts)
