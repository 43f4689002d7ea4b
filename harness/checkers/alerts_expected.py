"""alerts_expected: each alert the scenario expects fired in time after its fault, and resolved after healing.

An alert that never fires is an operator who never hears of the incident; one that fires late is an SLO the
on-call cannot meet; one that never resolves pages forever. The clock starts at the first fault window (the
fault that should trigger the alert); "resolved" means the rule's last transition is not `firing`, i.e. it
went quiet after it fired and stayed quiet through the drain. A run with no alert data at all (no
alert_history rows and no observer sample carrying alerts_firing) cannot tell, so it is unknown.
"""

from __future__ import annotations

from harness.checkers.alert import Transition, firing_at, transitions
from harness.checkers.rows import alert_keys_seen, clock, describe_fault
from harness.records import Anomaly, CheckResult, FaultWindow, RunRecord, Verdict

NAME = "alerts_expected"
NO_ALERT_DATA = (
    "no alert data in this run: the final state has no alert_history rows and no observer sample carried "
    "alerts_firing, so whether an alert fired cannot be told (is the monitor running, and does the pipeline "
    "keep an alert history?)"
)


def check(record: RunRecord) -> CheckResult:
    """missing-alert, late-alert, unresolved-alert; unknown without any alert data."""
    expected = record.scenario.expect.alerts_fire
    if not expected:
        return CheckResult(NAME, Verdict.VALID, (), {"expected": 0})
    # An expected alert the run's alert source has no rule for cannot be judged: not applicable, named.
    lacking = [w for w in expected if not record.sut.has(f"alert:{w.rule}")]
    skipped = "; ".join(f"alert:{w.rule}: {record.sut.why_not(f'alert:{w.rule}')}" for w in lacking)
    expected = tuple(w for w in expected if w not in lacking)
    if not expected:
        return CheckResult(NAME, Verdict.NOT_APPLICABLE, (), {"expected": len(lacking)}, error=skipped)
    if not alert_keys_seen(record):
        return CheckResult(NAME, Verdict.UNKNOWN, (), {"expected": len(expected)}, error=NO_ALERT_DATA)
    windows = sorted(record.faults, key=lambda w: w.start_wall)
    trigger: FaultWindow | None = windows[0] if windows else None
    start = trigger.start_wall if trigger else record.workload_start_wall
    heal = trigger.end_wall if trigger and trigger.end_wall is not None else record.workload_end_wall
    cause = describe_fault(trigger) if trigger else f"the workload start {clock(start)}"
    by_rule = transitions(record)
    anomalies: list[Anomaly] = []
    fired = resolved = 0
    for want in expected:
        rows = by_rule.get(want.rule, [])
        witnesses = (*(t.row() for t in rows[:6]), *((_fault_row(trigger),) if trigger else ()))
        entities: tuple[str, ...] = ()
        fired_at = _fired_at(rows, start)
        if fired_at is None:
            anomalies.append(
                Anomaly(
                    "missing-alert",
                    f"alert {want.rule} never fired after {cause} (expected firing within {want.within_s:g} s"
                    f", by {clock(start + want.within_s)}); its transitions: {_states(rows)}",
                    entities,
                    witnesses,
                )
            )
            continue
        fired += 1
        early = _early(rows, fired_at, start)
        if early is not None:
            anomalies.append(
                Anomaly(
                    "early-alert",
                    f"alert {want.rule} fired at {clock(fired_at)}, {early[0]:.2f} s after its condition could "
                    f"have begun (at {clock(early[1])}), before its `for` of {early[2]:g} s had elapsed: the "
                    "evaluator fires on a blip, and pages on every transient",
                    entities,
                    witnesses,
                )
            )
        if fired_at - start > want.within_s:
            anomalies.append(
                Anomaly(
                    "late-alert",
                    f"alert {want.rule} fired at {clock(fired_at)}, {fired_at - start:.1f} s after {cause}; "
                    f"expected within {want.within_s:g} s",
                    entities,
                    witnesses,
                )
            )
        if not want.resolve:
            continue
        if rows and rows[-1].state == "firing":
            anomalies.append(
                Anomaly(
                    "unresolved-alert",
                    f"alert {want.rule} still firing at the end of the run (since {clock(rows[-1].at)}); the "
                    f"fault was healed at {clock(heal)}",
                    entities,
                    witnesses,
                )
            )
        else:
            resolved += 1
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {
            "expected": len(expected),
            "fired": fired,
            "resolved": resolved,
            "clock_start": start,
            "heal": heal,
            **({"not_applicable": skipped} if lacking else {}),
        },
    )


EARLY_TOLERANCE_S = 0.05  # evaluations are instants of the database clock; a tick's rounding is not early


def _early(rows: list[Transition], fired_at: float, start: float) -> tuple[float, float, float] | None:
    """(seconds held, condition start, for) when the rule fired before its `for` had elapsed since its
    condition could have begun: not before the fault started, nor before the pipeline says it began. None when
    it waited long enough, was firing already, or its `for` is unknown."""
    if firing_at(rows, start - 1e-6):
        return None
    firing = next((t for t in rows if t.state == "firing" and abs(t.at - fired_at) < 1e-6), None)
    if firing is None or firing.for_s is None:
        return None
    began = max(start, firing.active_since) if firing.active_since is not None else start
    held = fired_at - began
    if held < firing.for_s - EARLY_TOLERANCE_S:
        return held, began, firing.for_s
    return None


def _fired_at(rows: list[Transition], start: float) -> float | None:
    """When the rule was first firing from `start` on (`start` itself when it was already firing)."""
    if firing_at(rows, start):
        return start
    return next((t.at for t in rows if t.state == "firing" and t.at >= start), None)


def _states(rows: list[Transition]) -> str:
    if not rows:
        return "none"
    return ", ".join(f"{t.state} at {clock(t.at)}" for t in rows[:6]) + (" …" if len(rows) > 6 else "")


def _fault_row(window: FaultWindow) -> dict[str, object]:
    return {
        "fault": window.fault,
        "label": window.label,
        "start_wall": window.start_wall,
        "end_wall": window.end_wall,
        "took_effect": window.took_effect,
    }
