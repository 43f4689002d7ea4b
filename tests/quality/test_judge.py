"""The verdict machinery: preconditions, crashing checkers, scenario judgement, determinism, no crying wolf."""

from __future__ import annotations

import json
from dataclasses import replace

from harness.checkers import CHECKERS, drained, faults_took_effect, judge, run_checkers
from harness.records import CheckResult, RunRecord, Verdict
from tests.quality.records import alert, expectations, healthy

ALL_CHECKS = tuple(CHECKERS)


def test_a_healthy_run_is_valid_for_every_checker() -> None:
    world = healthy()
    world.fault("kill-worker", 1.5, 2.0)
    record = world.record(expectations(checks=ALL_CHECKS, gap_p99_s=0.5, throughput_min_ratio=0.8))
    results = run_checkers(record, ALL_CHECKS)
    assert {r.name: r.verdict for r in results} == dict.fromkeys(ALL_CHECKS, Verdict.VALID)
    assert judge(record)[0] is Verdict.VALID


def test_faults_that_did_not_take_effect_are_unknown_never_invalid() -> None:
    world = healthy()
    world.fault("disable-core-trigger", 1.0, 2.0)
    assert faults_took_effect.check(world.record()).verdict is Verdict.VALID
    world.fault("kill-worker", 2.5, 3.0, took_effect=False, evidence="no orchestrator was running")
    world.fault("pause-worker", 3.5, 4.0, took_effect=None)
    result = faults_took_effect.check(world.record())
    assert result.verdict is Verdict.UNKNOWN and not result.anomalies
    assert "kill-worker" in (result.error or "") and "no orchestrator was running" in (result.error or "")
    assert "pause-worker" in (result.error or "") and "disable-core-trigger" not in (result.error or "")
    assert result.counts["not_taken"] == ["kill-worker"] and result.counts["untold"] == ["pause-worker"]


def test_a_run_that_did_not_drain_is_unknown_and_says_which_jobs_were_open() -> None:
    world = healthy()
    world.flow(10.0, lose="anchor")
    world.jobs[-1]["status"] = "retrying"
    result = drained.check(world.record(drained=False))
    assert result.verdict is Verdict.UNKNOWN and "did not go quiet" in (result.error or "")
    assert f"{world.jobs[-1]['id']} (" in (result.error or "")
    assert drained.check(world.record()).verdict is Verdict.VALID
    quiet_queue = drained.check(healthy().record(drained=False))
    assert quiet_queue.verdict is Verdict.UNKNOWN and "outside the queue" in (quiet_queue.error or "")


def _boom(record: RunRecord) -> CheckResult:
    raise RuntimeError("checker bug")


def test_a_checker_that_raises_is_unknown_with_its_traceback_and_the_others_still_run() -> None:
    registry = {**CHECKERS, "boom": _boom}
    record = healthy().record()
    results = run_checkers(record, ["no_lost_job", "boom", "drained", "nonexistent"], registry)
    assert [r.name for r in results] == ["no_lost_job", "boom", "drained", "nonexistent"]
    assert [r.verdict for r in results] == [Verdict.VALID, Verdict.UNKNOWN, Verdict.VALID, Verdict.UNKNOWN]
    assert "Traceback" in (results[1].error or "") and "RuntimeError: checker bug" in (results[1].error or "")
    assert "unknown checker 'nonexistent'" in (results[3].error or "")
    verdict, checks = judge(
        replace(
            record, scenario=replace(record.scenario, expect=expectations(checks=("no_lost_job", "boom")))
        ),
        registry,
    )
    assert verdict is Verdict.UNKNOWN and [c.name for c in checks][:2] == ["no_lost_job", "boom"]


def test_a_scenario_that_plants_a_bug_is_valid_exactly_when_the_bug_is_caught() -> None:
    world = healthy()
    world.fault("disable-core-trigger", 9.9, 11.0)
    world.flow(10.0, lose="tsa")
    catching = expectations(checks=("no_duplicate_job", "one_result_per_job"), catch=("no_lost_job",))
    verdict, checks = judge(world.record(catching))
    assert verdict is Verdict.VALID
    assert {c.name: c.verdict for c in checks}["no_lost_job"] is Verdict.INVALID
    assert [c.name for c in checks] == [
        "no_duplicate_job",
        "one_result_per_job",
        "no_lost_job",
        "faults_took_effect",
        "drained",
    ]
    healthy_world = healthy()
    healthy_world.fault("disable-core-trigger", 9.9, 11.0)
    assert judge(healthy_world.record(catching))[0] is Verdict.INVALID  # the planted bug went unseen


def test_a_broken_expectation_makes_the_scenario_invalid() -> None:
    world = healthy()
    world.flow(10.0, lose="tsa")
    verdict, checks = judge(world.record(expectations(checks=("no_lost_job", "no_duplicate_job"))))
    assert verdict is Verdict.INVALID
    assert [c.verdict for c in checks][:2] == [Verdict.INVALID, Verdict.VALID]


def test_faults_that_did_not_take_effect_make_the_scenario_unknown_never_valid() -> None:
    catching = expectations(checks=("no_duplicate_job",), catch=("no_lost_job",))
    world = healthy()
    world.fault("disable-core-trigger", 9.9, 11.0, took_effect=False, evidence="trigger already enabled")
    assert judge(world.record(catching))[0] is Verdict.UNKNOWN  # the bug may never have been planted
    world.flow(10.0, lose="tsa")
    assert judge(world.record(catching))[0] is Verdict.UNKNOWN  # caught, but the fault's part is in doubt
    steady = expectations(checks=("no_lost_job", "no_duplicate_job"))
    clean = healthy()
    clean.fault("kill-worker", 1.0, 2.0, took_effect=None)
    assert judge(clean.record(steady))[0] is Verdict.UNKNOWN
    clean.flow(10.0, lose="tsa")  # a broken healthy-path expectation is invalid whatever the faults did
    assert judge(clean.record(steady))[0] is Verdict.INVALID


def test_a_run_that_did_not_drain_is_never_valid() -> None:
    record = healthy().record(expectations(checks=("no_lost_job",)), drained=False)
    verdict, checks = judge(record)
    assert verdict is Verdict.UNKNOWN and checks[-1].name == "drained"


def test_expectations_given_by_value_are_checked_even_if_not_listed() -> None:
    world = healthy()
    slow = next(j for j in world.jobs if j["job_type"] == "tsa")
    slow["created_at"] += 5.0
    record = world.record(
        expectations(checks=("no_lost_job",), gap_p99_s=0.5, alerts_fire=(alert("core_trigger_disabled"),))
    )
    verdict, checks = judge(record)
    assert verdict is Verdict.INVALID
    assert {c.name for c in checks} >= {"gap_slo", "alerts_expected"}


def test_rechecking_the_same_record_gives_identical_results() -> None:
    world = healthy()
    world.fault("disable-core-trigger", 9.9, 11.0)
    world.flow(10.0, lose="tsa")
    world.alert("retry_storm", "firing", 10.5)
    record = world.record(expectations(checks=ALL_CHECKS, gap_p99_s=0.001, throughput_min_ratio=0.99))
    first, second = judge(record), judge(record)
    assert first == second
    dumped = [json.dumps(c.as_dict(), sort_keys=True) for c in first[1]]
    assert dumped == [json.dumps(c.as_dict(), sort_keys=True) for c in second[1]]
    assert dumped == [json.dumps(c.as_dict(), sort_keys=True) for c in judge(_read_back(record))[1]]


def _read_back(record: RunRecord) -> RunRecord:
    """The same record after a JSON round trip of its final state (a stored run folder read back)."""
    final = json.loads(json.dumps(record.final.__dict__, default=list))
    return replace(
        record,
        final=replace(
            record.final, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in final.items()}
        ),
    )
