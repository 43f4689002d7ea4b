"""The flow checkers: every acknowledged flow closes (or fails with its reason), every trace is whole, valid
requests are accepted. Each planted bug -> invalid with the right anomaly and entity; without it -> valid."""

from __future__ import annotations

from harness.checkers import flows_complete, requests_accepted, traces_complete
from harness.history import OpType
from harness.records import Verdict
from tests.quality.records import World, healthy


def test_an_acknowledged_flow_that_never_closes_is_incomplete() -> None:
    world = healthy()
    result = flows_complete.check(world.record())
    assert result.verdict is Verdict.VALID
    assert result.counts["acknowledged"] == 3 and result.counts["closed"] == 3
    stuck = world.flow(10.0, lose="anchor")
    result = flows_complete.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "incomplete" and anomaly.entities == (stuck,)
    assert "last event job.anchor.required" in anomaly.explanation


def _open_flow(world: World, s: float, status: str) -> str:
    """A flow whose last decision job is `status` and whose document.anchored was never appended."""
    entity = world.flow(s)
    events = world.entities[entity]
    anchored = next(e for e in events if e["type"] == "job.anchor.completed")
    job = world.job_for(anchored)
    job.update(status=status, last_error="no handler for job type 'decide_outcome' in this orchestrator")
    events.remove(next(e for e in events if e["type"] == "document.anchored"))
    return entity


def test_an_open_flow_with_a_job_still_open_is_unknown_when_the_run_did_not_drain() -> None:
    world = healthy()
    _open_flow(world, 10.0, "queued")
    result = flows_complete.check(world.record(drained=False))
    assert result.verdict is Verdict.UNKNOWN
    assert "did not drain" in (result.error or "") and result.anomalies[0].kind == "incomplete"
    assert flows_complete.check(world.record()).verdict is Verdict.INVALID


def test_an_open_flow_with_no_open_job_is_invalid_even_when_the_run_did_not_drain() -> None:
    world = healthy()  # e.g. a claim that hands decision jobs to the orchestrator, which kills them
    stuck = _open_flow(world, 10.0, "dead")
    result = flows_complete.check(world.record(drained=False))
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "incomplete" and anomaly.entities == (stuck,)
    assert "nothing will ever close it" in anomaly.explanation and "no handler" in anomaly.explanation
    world = healthy()
    world.flow(10.0, lose="anchor")  # a lost job: no open job either
    assert flows_complete.check(world.record(drained=False)).verdict is Verdict.INVALID


def test_a_document_failed_without_a_job_failed_event_is_unexplained() -> None:
    world = healthy()
    failed = world.flow(10.0, fail="protect")
    assert flows_complete.check(world.record()).verdict is Verdict.VALID
    world.entities[failed] = [e for e in world.entities[failed] if e["type"] != "job.protect.failed"]
    [anomaly] = flows_complete.check(world.record()).anomalies
    assert anomaly.kind == "unexplained-failure" and anomaly.entities == (failed,)


def test_an_acknowledged_request_missing_from_the_final_read_is_lost() -> None:
    world = healthy()
    gone = world.entity()
    world.request(gone, 10.0, land=False)  # ok, yet the event is not there
    del world.entities[gone]
    [anomaly] = flows_complete.check(world.record()).anomalies
    assert anomaly.kind == "lost" and anomaly.entities == (gone,)
    assert "was acknowledged" in anomaly.explanation


def test_info_requests_that_landed_are_recovered_and_judged_those_that_did_not_are_not() -> None:
    world = healthy()
    landed = world.entity()
    world.request(landed, 10.0, outcome=OpType.INFO, error="connection lost")  # landed, flow never ran
    nowhere = world.entity()
    world.request(nowhere, 10.5, outcome=OpType.INFO, land=False)
    result = flows_complete.check(world.record())
    assert result.counts["recovered"] == 1
    assert [(a.kind, a.entities) for a in result.anomalies] == [("incomplete", (landed,))]


def test_a_request_reported_failed_whose_event_is_there_is_unexpected() -> None:
    world = healthy()
    entity = world.flow(10.0)
    world.request(entity, 11.0, outcome=OpType.FAIL, kind="same_intent", error="serialization failure")
    [anomaly] = flows_complete.check(world.record()).anomalies
    assert anomaly.kind == "unexpected" and anomaly.entities == (entity,)


def test_a_flow_closed_twice_is_reported() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    world.append(entity, "document.anchored", 9.0, {})
    [anomaly] = flows_complete.check(world.record()).anomalies
    assert anomaly.kind == "closed-twice" and anomaly.entities == (entity,)


def test_a_refused_valid_request_is_rejected() -> None:
    world = healthy()
    assert requests_accepted.check(world.record()).verdict is Verdict.VALID
    refused = world.entity()
    world.request(
        refused, 10.0, outcome=OpType.FAIL, error='column reference "dedupe_key" is ambiguous', land=False
    )
    result = requests_accepted.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "rejected" and anomaly.entities == (refused,)
    assert "ambiguous" in anomaly.explanation


def test_a_broken_trace_is_caught_with_its_problems() -> None:
    world = healthy()
    assert traces_complete.check(world.record()).verdict is Verdict.VALID
    entity = next(iter(world.entities))
    job = next(j for j in world.jobs if j["entity_id"] == entity and j["job_type"] == "tsa")
    job["trace_id"] = "f" * 32  # the orchestrator lost the flow's trace context
    result = traces_complete.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "broken-trace" and anomaly.entities == (entity,)
    assert "trace_id" in anomaly.explanation and anomaly.witnesses[0]["entity_id"] == entity


def test_an_open_trace_when_the_run_did_not_drain_is_unknown() -> None:
    world = healthy()
    world.flow(10.0, lose="anchor")
    assert traces_complete.check(world.record()).verdict is Verdict.INVALID
    assert (
        traces_complete.check(world.record(drained=False)).verdict is Verdict.INVALID
    )  # a lost job is certain
    open_world = healthy()
    _open_flow(open_world, 10.0, "running")
    result = traces_complete.check(open_world.record(drained=False))
    assert result.verdict is Verdict.UNKNOWN and "did not drain" in (result.error or "")
    assert traces_complete.check(open_world.record()).verdict is Verdict.INVALID
    dead_world = healthy()
    _open_flow(dead_world, 10.0, "dead")
    assert traces_complete.check(dead_world.record(drained=False)).verdict is Verdict.INVALID


def test_side_paths_same_intent_requests_and_compat_redirects_are_not_broken_traces() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    # a second request for the same document, under its own correlation and trace ids
    second = world.request(entity, 8.0, kind="same_intent")
    second.update(correlation_id=world.uid(), trace_id="e" * 32)
    world.job_for(second).update(correlation_id=second["correlation_id"], trace_id=second["trace_id"])
    world.decide(world.job_for(second), 8.01)
    # a legacy insert redirected under compat: the legacy writer's ids, its job runs and completes
    compat = world.append(
        entity, "job.protect.required", 8.5, {"_compat": {"source": "legacy"}}, trace_id="d" * 32
    )
    compat["correlation_id"] = None
    job = world.job_for(compat)
    job.update(correlation_id=None, trace_id="d" * 32)
    result_event = world.execute(job, 8.6)
    world.decide(world.job_for(result_event), 8.7)
    result = traces_complete.check(world.record())
    assert result.verdict is Verdict.VALID, result.anomalies
    assert result.counts["side_paths"] == 2
    job["status"] = "retrying"  # ... but a broken job on a side path is still caught
    [anomaly] = traces_complete.check(world.record()).anomalies
    assert "side path from job.protect.required" in anomaly.explanation


def test_entities_with_no_flow_are_not_traced() -> None:
    world = World()
    poison = world.entity()  # the poison-job fault's entity: a required event, no request
    world.append(poison, "job.protect.required", 1.0, {"document": {"not": "a string"}})
    world.kill(world.jobs[-1], 1.1)
    result = traces_complete.check(world.record())
    assert result.verdict is Verdict.VALID and result.counts["skipped_no_flow"] == 1


def test_a_lost_acknowledged_request_just_before_a_crash_names_the_crash() -> None:
    world = healthy()
    gone = world.entity()
    world.request(gone, 10.0, land=False)
    del world.entities[gone]
    world.fault("postgres-crash", 10.01, 12.0)
    [anomaly] = flows_complete.check(world.record()).anomalies
    assert anomaly.kind == "lost" and "10 ms before fault postgres-crash" in anomaly.explanation
