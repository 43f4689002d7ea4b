"""Alert and SLO checkers: alerts fire in time and resolve, nothing else fires, gap and throughput hold."""

from __future__ import annotations

from harness.checkers import alerts_expected, alerts_quiet, gap_slo, throughput_slo
from harness.checkers.gap_slo import percentile
from harness.records import Verdict
from tests.quality.records import World, alert, expectations, healthy, iso

TRIGGER = "core-trigger-disabled"


def _alerting_world() -> World:
    """A core trigger disabled 1.0-3.0 s; the alert goes pending, fires at 1.8 and resolves at 3.6."""
    world = healthy()
    world.fault("disable-core-trigger", 1.0, 3.0)
    world.alert(TRIGGER, "pending", 1.2)
    world.alert(TRIGGER, "firing", 1.8)
    world.alert(TRIGGER, "resolved", 3.6)
    return world


def test_an_expected_alert_that_fires_in_time_and_resolves_is_valid() -> None:
    record = _alerting_world().record(expectations(alerts_fire=(alert(TRIGGER, 2.0),)))
    result = alerts_expected.check(record)
    assert result.verdict is Verdict.VALID and result.counts["fired"] == 1 and result.counts["resolved"] == 1


def test_an_alert_that_never_fires_is_missing() -> None:
    world = healthy()
    world.fault("disable-core-trigger", 1.0, 3.0)
    world.alert(TRIGGER, "pending", 1.2)
    world.alert(TRIGGER, "inactive", 3.5)
    result = alerts_expected.check(world.record(expectations(alerts_fire=(alert(TRIGGER, 2.0),))))
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "missing-alert" and TRIGGER in anomaly.explanation
    assert "pending at" in anomaly.explanation and anomaly.witnesses[-1]["fault"] == "disable-core-trigger"


def test_an_alert_that_fires_after_its_window_is_late() -> None:
    record = _alerting_world().record(expectations(alerts_fire=(alert(TRIGGER, 0.5),)))
    [anomaly] = alerts_expected.check(record).anomalies
    assert anomaly.kind == "late-alert" and "0.8 s after fault disable-core-trigger" in anomaly.explanation


def test_an_alert_still_firing_at_the_end_is_unresolved() -> None:
    world = _alerting_world()
    world.alert_history.pop()
    [anomaly] = alerts_expected.check(
        world.record(expectations(alerts_fire=(alert(TRIGGER, 2.0),)))
    ).anomalies
    assert anomaly.kind == "unresolved-alert"
    no_resolve = expectations(alerts_fire=(alert(TRIGGER, 2.0, resolve=False),))
    assert alerts_expected.check(world.record(no_resolve)).verdict is Verdict.VALID


def test_without_any_alert_data_the_alert_checkers_cannot_tell() -> None:
    world = healthy()
    world.ops = [op for op in world.ops if op.process != "observer"]
    world.fault("disable-core-trigger", 1.0, 3.0)
    record = world.record(expectations(alerts_fire=(alert(TRIGGER, 2.0),)))
    for checker in (alerts_expected, alerts_quiet):
        result = checker.check(record)
        assert result.verdict is Verdict.UNKNOWN and "no alert data" in (result.error or "")


def test_observer_samples_stand_in_for_a_missing_alert_history() -> None:
    world = healthy()
    world.fault("disable-core-trigger", 1.0, 3.0)
    world.sample(1.5, [TRIGGER])
    world.sample(3.5, [])
    result = alerts_expected.check(world.record(expectations(alerts_fire=(alert(TRIGGER, 2.0),))))
    assert result.verdict is Verdict.VALID


def test_an_alert_nobody_expected_is_unexpected() -> None:
    world = _alerting_world()
    assert (
        alerts_quiet.check(world.record(expectations(alerts_fire=(alert(TRIGGER),)))).verdict is Verdict.VALID
    )
    world.alert("retry-storm", "firing", 2.0, 7.0)
    result = alerts_quiet.check(world.record(expectations(alerts_fire=(alert(TRIGGER),))))
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "unexpected-alert" and "retry-storm" in anomaly.explanation
    assert anomaly.witnesses[0]["rule"] == "retry-storm"
    assert alerts_quiet.check(world.record(expectations(alerts_quiet=False))).verdict is Verdict.VALID


def test_a_slow_materialization_outside_fault_windows_breaches_the_gap_slo() -> None:
    world = healthy()
    assert gap_slo.check(world.record(expectations(gap_p99_s=0.5))).verdict is Verdict.VALID
    slow = world.flow(10.0)
    job = next(j for j in world.jobs if j["entity_id"] == slow and j["job_type"] == "tsa")
    job["created_at"] += 4.0  # a trigger that defers, a gateway that waits on a lock
    result = gap_slo.check(world.record(expectations(gap_p99_s=0.5)))
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "slo-breach" and anomaly.entities[0] == slow
    assert anomaly.witnesses[0]["job_id"] == job["id"] and anomaly.witnesses[0]["gap_s"] > 4.0
    world.fault("disable-core-trigger", 9.5, 10.5)  # inside a fault window the gap does not count
    assert gap_slo.check(world.record(expectations(gap_p99_s=0.5))).verdict is Verdict.VALID


def test_gap_slo_without_an_expectation_only_counts() -> None:
    result = gap_slo.check(healthy().record())
    assert result.verdict is Verdict.VALID and result.counts["events"] == 9 and "skipped" in result.counts


def test_the_percentile_matches_postgres_percentile_cont() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    assert abs(percentile([float(i) for i in range(1, 101)], 0.99) - 99.01) < 1e-9


def test_flows_that_close_far_behind_the_workload_breach_the_throughput_slo() -> None:
    world = healthy()
    assert throughput_slo.check(world.record(expectations(throughput_min_ratio=0.8))).verdict is Verdict.VALID
    late = world.flow(4.0)
    anchored = next(e for e in world.entities[late] if e["type"] == "document.anchored")
    anchored["at"] = iso(30.0)  # a backlog that took 26 s to clear
    stuck = world.flow(4.5, lose="tsa")
    result = throughput_slo.check(world.record(expectations(throughput_min_ratio=0.8)))
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "slo-breach" and {late, stuck} <= set(anomaly.entities)
    assert result.counts["closed"] == 4 and result.counts["flows"] == 5
    assert 29.0 < result.counts["closing_span_s"] < 31.0
