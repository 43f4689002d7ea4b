"""alerts_quiet: no alert fired that the scenario did not ask for (no crying wolf).

An alert that fires on a healthy pipeline, or on a fault it is not about, trains the on-call to ignore it.
When the scenario says `alerts_quiet`, every rule that reached `firing` at any time during the run must be
one of its expected alerts. Unknown when the run has no alert data at all (see alerts_expected).
"""

from __future__ import annotations

from harness.checkers.alert import transitions
from harness.checkers.alerts_expected import NO_ALERT_DATA
from harness.checkers.rows import alert_keys_seen, clock, during
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "alerts_quiet"


def check(record: RunRecord) -> CheckResult:
    """One unexpected-alert anomaly per rule that fired without being expected."""
    expect = record.scenario.expect
    # An expected alert the source cannot show is allowed too (alerts_expected says it is not applicable).
    allowed = {a.rule for a in expect.alerts_fire}
    if not expect.alerts_quiet:
        return CheckResult(NAME, Verdict.VALID, (), {"skipped": "the scenario does not ask for quiet alerts"})
    if not alert_keys_seen(record):
        return CheckResult(NAME, Verdict.UNKNOWN, (), {}, error=NO_ALERT_DATA)
    anomalies = []
    fired_rules = []
    for rule, rows in transitions(record).items():
        firing = [t for t in rows if t.state == "firing"]
        if not firing:
            continue
        fired_rules.append(rule)
        if rule in allowed:
            continue
        first = firing[0]
        anomalies.append(
            Anomaly(
                "unexpected-alert",
                f"alert {rule} fired at {clock(first.at)} ({len(firing)} time(s), value {first.value}) and the "
                f"scenario does not expect it{during(record, first.at)}",
                (),
                tuple(t.row() for t in rows[:6]),
            )
        )
    return CheckResult(
        NAME,
        Verdict.INVALID if anomalies else Verdict.VALID,
        tuple(anomalies),
        {"rules_fired": fired_rules, "expected": sorted(allowed), "unexpected": len(anomalies)},
    )
