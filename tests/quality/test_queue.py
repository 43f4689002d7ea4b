"""The queue checkers catch what they exist for: lost jobs, duplicated jobs and flows, wrong result counts.

Each test plants one bug into a healthy literal run (tests/quality/records.py) and asserts the verdict is
invalid with the right anomaly naming the right entity; the same run without the bug is valid.
"""

from __future__ import annotations

from harness.checkers import no_duplicate_job, no_lost_job, one_result_per_job
from harness.records import FaultEffects, Refusal, Verdict
from tests.quality.records import healthy


def test_a_required_event_the_trigger_skipped_is_lost_and_the_fault_window_is_named() -> None:
    world = healthy()
    assert no_lost_job.check(world.record()).verdict is Verdict.VALID
    world.fault("disable-core-trigger", 9.9, 11.0)
    victim = world.flow(10.0, lose="tsa")
    result = no_lost_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "lost" and anomaly.entities == (victim,)
    assert "event job.tsa.required" in anomaly.explanation and "no job materialized" in anomaly.explanation
    assert "during fault disable-core-trigger" in anomaly.explanation
    assert anomaly.witnesses[0]["type"] == "job.tsa.required" and anomaly.witnesses[0]["entity_id"] == victim
    assert result.counts["lost"] == 1


def test_a_lost_job_outside_any_fault_names_no_fault() -> None:
    world = healthy()
    world.flow(10.0, lose="protect")
    [anomaly] = no_lost_job.check(world.record()).anomalies
    assert anomaly.kind == "lost" and "during fault" not in anomaly.explanation


def test_a_job_with_no_canonical_event_behind_it_is_unexpected_unless_asked_for_by_name() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    orphan = world.materialize(
        entity,
        {"id": world.uid(), "correlation_id": None, "trace_id": None},
        "protect",
        9.0,
        via="legacy:user_documents",
    )
    result = no_lost_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "unexpected" and anomaly.entities == (entity,)
    assert anomaly.witnesses[0]["job_id"] == orphan["id"]
    orphan["materialized_via"] = "direct_call"
    assert no_lost_job.check(world.record()).verdict is Verdict.VALID


def test_a_same_id_duplicate_append_is_one_event_not_a_lost_job() -> None:
    world = healthy()
    events = world.entities[next(iter(world.entities))]
    events.append(dict(events[0]))  # the nemesis re-appends the request with the same id
    assert no_lost_job.check(world.record()).verdict is Verdict.VALID
    assert no_duplicate_job.check(world.record()).verdict is Verdict.VALID


def test_two_jobs_for_one_source_event_are_duplicated() -> None:
    world = healthy()
    assert no_duplicate_job.check(world.record()).verdict is Verdict.VALID
    entity = next(iter(world.entities))
    required = next(e for e in world.entities[entity] if e["type"] == "job.tsa.required")
    world.materialize(entity, required, "tsa", 9.0)  # a gateway without ON CONFLICT
    result = no_duplicate_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "duplicated" and anomaly.entities == (entity,)
    assert {w["source_event_id"] for w in anomaly.witnesses} == {required["id"]}
    assert len(anomaly.witnesses) == 2


def test_a_second_required_event_for_the_same_step_is_a_duplicated_flow() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    world.append(entity, "job.protect.required", 9.0, {"step": "protect"})  # a decision taken twice
    result = no_duplicate_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "duplicated-flow" and anomaly.entities == (entity,)
    assert "a second flow was started" in anomaly.explanation


def test_a_compat_redirected_required_event_is_not_a_second_flow() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    world.append(entity, "job.protect.required", 9.0, {"_compat": {"source": "legacy:user_documents"}})
    result = no_duplicate_job.check(world.record())
    assert result.verdict is Verdict.VALID
    assert result.counts["compat_jobs"] == 1


def test_a_result_event_emitted_twice_is_a_duplicated_result() -> None:
    world = healthy()
    assert one_result_per_job.check(world.record()).verdict is Verdict.VALID
    entity = next(iter(world.entities))
    completed = next(e for e in world.entities[entity] if e["type"] == "job.anchor.completed")
    world.entities[entity].append({**completed, "id": world.uid()})  # the handler emitted twice
    result = one_result_per_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "duplicated-result" and anomaly.entities == (entity,)
    assert anomaly.witnesses[0]["job_id"] == completed["payload"]["job_id"]


def test_a_succeeded_job_without_its_event_or_with_a_wrong_run_is_missing_its_result() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    events = world.entities[entity]
    completed = next(e for e in events if e["type"] == "job.protect.completed")
    events.remove(completed)  # a crash between the side effect and the event, and a job marked succeeded
    [anomaly] = one_result_per_job.check(world.record()).anomalies
    assert anomaly.kind == "missing-result" and anomaly.entities == (entity,)
    events.append(completed)
    run = next(r for r in world.runs if r["result_event_id"] == completed["id"])
    run["result_event_id"] = world.uid()
    [anomaly] = one_result_per_job.check(world.record()).anomalies
    assert anomaly.kind == "missing-result" and "records result event" in anomaly.explanation


def test_dead_jobs_need_exactly_one_failed_event() -> None:
    world = healthy()
    entity = world.flow(10.0, fail="tsa")
    assert one_result_per_job.check(world.record()).verdict is Verdict.VALID
    world.entities[entity] = [e for e in world.entities[entity] if e["type"] != "job.tsa.failed"]
    [anomaly] = one_result_per_job.check(world.record()).anomalies
    assert anomaly.kind == "missing-result" and anomaly.entities == (entity,)
    assert "job.tsa.failed" in anomaly.explanation


def test_results_for_unfinished_or_unknown_jobs_are_unexpected() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    job = next(j for j in world.jobs if j["entity_id"] == entity and j["job_type"] == "anchor")
    job["status"] = "running"  # a fenced-off worker appended its result anyway
    result = one_result_per_job.check(world.record())
    assert [a.kind for a in result.anomalies] == ["unexpected-result"]
    assert result.anomalies[0].entities == (entity,)
    job["status"] = "succeeded"
    world.append(entity, "job.tsa.completed", 9.0, {"job_id": 999})
    [anomaly] = one_result_per_job.check(world.record()).anomalies
    assert anomaly.kind == "unexpected-result" and "job 999, which does not exist" in anomaly.explanation


def test_a_duplicate_the_pipeline_fought_with_an_integrity_error_is_a_conflict() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    unique = Refusal(
        entity, "23505", 'duplicate key value violates unique constraint "executor_jobs_dedupe_key_key"'
    )
    world.fault("duplicate-events", 2.0, 2.0, effects=FaultEffects(refused_duplicates=(unique,)))
    result = no_duplicate_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert (
        anomaly.kind == "duplicate-conflict"
        and anomaly.entities == (entity,)
        and "23505" in anomaly.explanation
    )


def test_a_duplicate_the_pipeline_refused_on_purpose_is_only_counted() -> None:
    world = healthy()
    refusal = Refusal(next(iter(world.entities)), "P0001", "this document was already requested")
    world.fault("duplicate-events", 2.0, 2.0, effects=FaultEffects(refused_duplicates=(refusal,)))
    result = no_duplicate_job.check(world.record())
    assert result.verdict is Verdict.VALID and result.counts["refused_duplicates"] == 1
