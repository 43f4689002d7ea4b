"""The checkers of races, liveness, side effects and the pipeline's KPI, each on a literal run with one bug
planted in a healthy world (the planted-pipeline tests catch the same bugs in real runs, more slowly)."""

from __future__ import annotations

from dataclasses import replace

from harness.checkers import exclusive_runs, kpi_agrees, no_stuck_job, one_side_effect_per_job
from harness.records import Verdict
from tests.quality.records import REFERENCE, T0, healthy


def test_the_healthy_world_is_valid_for_each_of_them() -> None:
    record = healthy().record()
    for checker in (exclusive_runs, kpi_agrees, no_stuck_job, one_side_effect_per_job):
        assert checker.check(record).verdict is Verdict.VALID, checker.NAME


def test_two_workers_running_one_job_at_once_overlap() -> None:
    world = healthy()
    job = next(j for j in world.jobs if j["job_type"] == "tsa")
    first = next(r for r in world.runs if r["job_id"] == job["id"])
    world.runs.append(
        {
            **first,
            "id": len(world.runs) + 1,
            "attempt": 2,
            "worker": "orchestrator-2",
            "started_at": first["started_at"] + 0.001,
        }
    )  # claimed again before the first ended
    result = exclusive_runs.check(world.record())
    assert result.verdict is Verdict.INVALID
    assert [a.kind for a in result.anomalies] == ["overlapping-runs"]
    assert result.anomalies[0].entities == (job["entity_id"],)


def test_a_run_left_open_after_the_drain_is_an_anomaly() -> None:
    world = healthy()
    run = world.runs[-1]
    run["finished_at"], run["outcome"] = None, None
    [anomaly] = exclusive_runs.check(world.record()).anomalies
    assert anomaly.kind == "open-run"


def test_a_job_on_a_lease_that_expired_long_ago_with_no_run_since_is_stuck() -> None:
    world = healthy()
    job = next(j for j in world.jobs if j["job_type"] == "anchor")
    job.update(status="running", lease_expires_at=T0 + 5.0, finished_at=None)
    world.read_at = T0 + 5.0 + 29.0  # within the lease (30 s) and its grace: not yet stuck
    assert no_stuck_job.check(world.record()).verdict is Verdict.VALID
    world.read_at = T0 + 5.0 + 120.0
    result = no_stuck_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "stuck" and anomaly.entities == (job["entity_id"],)


def test_a_job_retrying_past_its_last_attempt_is_stuck() -> None:
    world = healthy()
    job = next(j for j in world.jobs if j["job_type"] == "protect")
    job.update(status="retrying", attempts=job["max_attempts"])
    [anomaly] = no_stuck_job.check(world.record()).anomalies
    assert anomaly.kind == "stuck" and "should be dead" in anomaly.explanation


def test_a_second_token_for_one_job_is_a_duplicated_side_effect() -> None:
    world = healthy()
    first = world.issued["tsa"][0]
    world.issued["tsa"].append({**first, "key": "attempt-2"})  # a per-attempt idempotency key
    result = one_side_effect_per_job.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "duplicated-side-effect" and "attempt-2" in anomaly.explanation


def test_a_result_the_service_never_saw_and_an_effect_for_no_job_are_caught() -> None:
    world = healthy()
    world.issued["ledger"].pop(0)
    world.issued["tsa"].append({"job_id": "9999", "key": "stray"})
    kinds = sorted(a.kind for a in one_side_effect_per_job.check(world.record()).anomalies)
    assert kinds == ["missing-side-effect", "unexpected-side-effect"]


def test_side_effects_are_not_applicable_without_a_read_back() -> None:
    world = healthy()
    world.sut = replace(REFERENCE, conventions={**REFERENCE.conventions, "side_effects": {}})
    assert one_side_effect_per_job.check(world.record()).verdict is Verdict.NOT_APPLICABLE


def test_a_kpi_blind_to_an_event_without_a_job_is_caught() -> None:
    world = healthy()
    lost = world.flow(6.0, lose="tsa")  # the trigger skipped this flow's tsa event
    assert kpi_agrees.check(world.record()).verdict is Verdict.VALID  # a correct KPI lists it as pending
    world.kpi = [r for r in world.correct_kpi() if r["status"] != "pending"]  # the KPI drops it
    result = kpi_agrees.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "kpi-blind" and anomaly.entities == (lost,)


def test_a_kpi_that_calls_a_materialized_event_pending_is_wrong() -> None:
    world = healthy()
    world.kpi = world.correct_kpi()
    world.kpi[0]["status"] = "breached"
    [anomaly] = kpi_agrees.check(world.record()).anomalies
    assert anomaly.kind == "kpi-wrong" and "breached" in anomaly.explanation
