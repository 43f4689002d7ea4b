"""What each scenario-check means for a person or a CI system: passed, failed, or could not be decided.

A check's verdict is the checker's honest finding. Whether that finding is good news depends on the scenario:
a check named in `expect.catch` exists to find a planted bug, so `invalid` is what the scenario wants and
`valid` means the bug slipped through. The three reports read the same outcomes from here, so the JSON, the
JUnit file, the page and the terminal table never disagree about what failed.

A scenario can also be worse than its checks say (a fault that never took effect, a run that did not drain,
a harness error): then one more case, named after the scenario itself, carries that reason, so CI is never
green on a run whose verdict is not valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from harness.records import CheckResult, ScenarioResult, Verdict, combine

RUN_CASE = "run"  # the case of a scenario the harness could not run
SCENARIO_CASE = "scenario"  # the case holding a scenario-level reason (faults, drain)


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # could not be decided: CI must not read it as green
    SKIPPED = "skipped"  # not applicable: the pipeline lacks a capability, named in the message


AS_VERDICT = {
    Outcome.PASSED: Verdict.VALID,
    Outcome.FAILED: Verdict.INVALID,
    Outcome.ERROR: Verdict.UNKNOWN,
    Outcome.SKIPPED: Verdict.NOT_APPLICABLE,
}


@dataclass(frozen=True)
class Case:
    """One scenario-check as CI sees it."""

    name: str
    outcome: Outcome
    message: str  # one line: why it failed or could not be decided ("" when it passed)
    detail: str  # everything that proves it: all anomalies, or the traceback
    check: CheckResult | None = None
    expected_invalid: bool = False  # the check is in expect.catch


def caught(result: ScenarioResult) -> frozenset[str]:
    """Names of the checks this scenario expects to find a planted bug."""
    if result.record is None:
        return frozenset()
    return frozenset(result.record.scenario.expect.catch)


def anomaly_text(check: CheckResult) -> str:
    """Every anomaly of a check, one paragraph each, for a failure body or a terminal."""
    parts = []
    for number, anomaly in enumerate(check.anomalies, 1):
        lines = [f"{number}. [{anomaly.kind}] {anomaly.explanation}"]
        if anomaly.entities:
            lines.append(f"   entities: {', '.join(anomaly.entities)}")
        for witness in anomaly.witnesses:
            lines.append("   row: " + ", ".join(f"{k}={v}" for k, v in witness.items()))
        parts.append("\n".join(lines))
    return "\n".join(parts)


def check_case(check: CheckResult, expected_invalid: bool = False, faults_bit: bool = True) -> Case:
    """A check's outcome: its verdict read against what the scenario expects of it.

    As `harness.checkers.judge` rules: a planted bug that went unseen is a failure only when every fault took
    effect (`faults_bit`); otherwise the bug may never have been planted, and the check could not decide.
    """
    if check.verdict is Verdict.NOT_APPLICABLE:
        message = "not applicable: " + (check.error or "the pipeline lacks what this check needs").strip()
        return Case(check.name, Outcome.SKIPPED, message, message, check, expected_invalid)
    if check.verdict is Verdict.UNKNOWN:
        message = "the check could not decide"
        if check.error:
            message += ": " + check.error.strip().splitlines()[-1]
        return Case(
            check.name, Outcome.ERROR, message, check.error or anomaly_text(check), check, expected_invalid
        )
    if expected_invalid:
        if check.verdict is Verdict.INVALID:
            return Case(check.name, Outcome.PASSED, "", anomaly_text(check), check, True)
        if not faults_bit:
            message = (
                f"{check.name} found nothing, but a fault did not take effect: the bug may not be planted"
            )
            return Case(check.name, Outcome.ERROR, message, message, check, True)
        message = (
            f"the planted bug was not caught: {check.name} found nothing, and the scenario exists for it"
        )
        return Case(check.name, Outcome.FAILED, message, message, check, True)
    if check.verdict is Verdict.INVALID:
        first = check.anomalies[0].explanation if check.anomalies else f"{check.name} is invalid"
        return Case(check.name, Outcome.FAILED, first, anomaly_text(check) or first, check)
    return Case(check.name, Outcome.PASSED, "", "", check)


def _scenario_reasons(result: ScenarioResult) -> list[str]:
    """Why a scenario can be worse than its checks: faults that did not bite, a run that did not drain."""
    reasons = []
    if result.record is not None:
        for window in result.record.faults:
            if window.took_effect is False:
                reasons.append(f"fault {window.label} never took effect ({window.evidence or 'no evidence'})")
            elif window.took_effect is None:
                reasons.append(f"fault {window.label}: could not tell whether it took effect")
        if not result.record.drained:
            reasons.append("the queue did not drain before the timeout")
    return reasons


def cases(result: ScenarioResult) -> list[Case]:
    """All CI cases of one scenario: one per check, plus one for a scenario-level reason or error."""
    expected = caught(result)
    bit = result.record is None or all(w.took_effect is True for w in result.record.faults)
    found = [check_case(check, check.name in expected, bit) for check in result.checks]
    if result.verdict is Verdict.NOT_APPLICABLE and not found:
        message = "not applicable: " + "; ".join(result.not_applicable)
        return [Case(SCENARIO_CASE, Outcome.SKIPPED, message, message)]
    if result.error:
        last = result.error.strip().splitlines()[-1] if result.error.strip() else "error"
        found.append(Case(RUN_CASE, Outcome.ERROR, f"the scenario could not run: {last}", result.error))
        return found
    by_cases = combine(AS_VERDICT[c.outcome] for c in found)
    worse = result.verdict is not by_cases and combine([result.verdict, by_cases]) is result.verdict
    if worse:
        reasons = _scenario_reasons(result) or [f"the scenario's verdict is {result.verdict}"]
        outcome = Outcome.FAILED if result.verdict is Verdict.INVALID else Outcome.ERROR
        found.append(Case(SCENARIO_CASE, outcome, reasons[0], "\n".join(reasons)))
    elif not found:
        found.append(Case(SCENARIO_CASE, Outcome.PASSED, "", "no checks ran"))
    return found


def skipped(result: ScenarioResult) -> list[str]:
    """Names of the cases that do not apply to this pipeline."""
    return [c.name for c in cases(result) if c.outcome is Outcome.SKIPPED]


def failed_and_unknown(result: ScenarioResult) -> tuple[list[str], list[str]]:
    """Names of the failed cases and of the undecided ones, for tables."""
    all_cases = cases(result)
    failed = [c.name for c in all_cases if c.outcome is Outcome.FAILED]
    unknown = [c.name for c in all_cases if c.outcome is Outcome.ERROR]
    return failed, unknown


def case_classname(result: ScenarioResult, repeated: bool) -> str:
    """The scenario's name, with `#round` (1-based, as the runner names the folders) when the run holds it
    more than once; `ScenarioResult.repeat` itself counts from 0."""
    return f"{result.name}#{result.repeat + 1}" if repeated else result.name


def repeated_names(results: tuple[ScenarioResult, ...]) -> frozenset[str]:
    """Scenario names that appear more than once in a run, or carry a repeat number."""
    seen: dict[str, int] = {}
    for result in results:
        seen[result.name] = seen.get(result.name, 0) + 1
    return frozenset(r.name for r in results if seen[r.name] > 1 or r.repeat)
