"""Checkers: pure functions of a recorded run, each judging one property three-valued (Jepsen `checker.clj`).

`CHECKERS` maps a checker's name (the one scenarios use) to `check(record) -> CheckResult`. `run_checkers`
runs some of them and never lets one crash the run: a checker that raises is `unknown` with its traceback.
`judge` applies a scenario's expectations: its `checks` must be valid, its `catch` invalid (a planted bug
the scenario exists to show caught); a fault that did not take effect, or a run that did not drain, can never
make a scenario valid. No checker does I/O, so a stored run re-checks to the same verdict.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable

from harness.checkers import (
    alerts_expected,
    alerts_quiet,
    compat_warnings,
    drained,
    exclusive_runs,
    faults_took_effect,
    flows_complete,
    gap_slo,
    kpi_agrees,
    no_duplicate_job,
    no_lost_job,
    no_stuck_job,
    one_result_per_job,
    one_side_effect_per_job,
    requests_accepted,
    strict_gateway,
    throughput_slo,
    traces_complete,
)
from harness.records import CheckResult, RunRecord, Verdict, combine

Checker = Callable[[RunRecord], CheckResult]

CHECKERS: dict[str, Checker] = {
    module.NAME: module.check
    for module in (
        no_lost_job,
        no_duplicate_job,
        one_result_per_job,
        flows_complete,
        traces_complete,
        alerts_expected,
        alerts_quiet,
        gap_slo,
        throughput_slo,
        strict_gateway,
        compat_warnings,
        faults_took_effect,
        drained,
        requests_accepted,
        exclusive_runs,
        no_stuck_job,
        kpi_agrees,
        one_side_effect_per_job,
    )
}

# Run for every scenario: without them a verdict means nothing (see judge).
PRECONDITIONS: tuple[str, ...] = (faults_took_effect.NAME, drained.NAME)


def run_checker(record: RunRecord, name: str, checkers: dict[str, Checker] | None = None) -> CheckResult:
    """One checker; its own failure (an exception, a wrong return) is `unknown`, never a crashed run."""
    registry = CHECKERS if checkers is None else checkers
    check = registry.get(name)
    if check is None:
        return CheckResult(
            name, Verdict.UNKNOWN, (), error=f"unknown checker {name!r}; known: {', '.join(sorted(registry))}"
        )
    try:
        result: object = check(record)  # a team's checker may return anything
    except Exception:  # a checker bug must not hide the other verdicts
        return CheckResult(name, Verdict.UNKNOWN, (), error=traceback.format_exc())
    if not isinstance(result, CheckResult):
        return CheckResult(
            name,
            Verdict.UNKNOWN,
            (),
            error=f"checker {name!r} returned {type(result).__name__}, not a CheckResult",
        )
    return result


def run_checkers(
    record: RunRecord, names: Iterable[str], checkers: dict[str, Checker] | None = None
) -> list[CheckResult]:
    """Each named checker once, in the order given."""
    return [run_checker(record, name, checkers) for name in dict.fromkeys(names)]


def implied_checks(record: RunRecord) -> tuple[str, ...]:
    """Checkers an expectation asks for by giving a value, even if `checks` forgot to list them."""
    expect = record.scenario.expect
    implied = []
    if expect.alerts_fire:
        implied.append(alerts_expected.NAME)
    if expect.gap_p99_s is not None:
        implied.append(gap_slo.NAME)
    if expect.throughput_min_ratio is not None:
        implied.append(throughput_slo.NAME)
    return tuple(n for n in implied if n not in expect.catch)


def judge(record: RunRecord, checkers: dict[str, Checker] | None = None) -> tuple[Verdict, list[CheckResult]]:
    """The scenario's verdict and every check it ran (expected ones first, then the preconditions).

    Valid exactly when every `checks` name is valid (or not applicable to this pipeline), every `catch` name
    is invalid, every fault took effect and the run drained; not applicable when a `catch` name cannot apply. A `checks` name found invalid makes the scenario invalid whatever else happened (the
    pipeline broke); a `catch` name found valid is invalid (the planted bug went unseen) unless a fault did
    not take effect (then the bug may never have been planted: unknown).
    """
    expect = record.scenario.expect
    must_hold = tuple(dict.fromkeys((*expect.checks, *implied_checks(record))))
    must_catch = tuple(dict.fromkeys(expect.catch))
    names = list(dict.fromkeys((*must_hold, *must_catch, *PRECONDITIONS)))
    results = run_checkers(record, names, checkers)
    by_name = dict(zip(names, results, strict=True))
    faults_ok = by_name[faults_took_effect.NAME].verdict is Verdict.VALID
    settled = faults_ok and by_name[drained.NAME].verdict is Verdict.VALID
    verdicts = [by_name[name].verdict for name in must_hold]
    point_missing = False  # a catch check that cannot apply: the scenario's point cannot be made here
    for name in must_catch:
        got = by_name[name].verdict
        if got is Verdict.INVALID:
            verdicts.append(Verdict.VALID)
        elif got is Verdict.VALID and faults_ok:
            verdicts.append(Verdict.INVALID)
        elif got is Verdict.NOT_APPLICABLE:
            point_missing = True
        else:
            verdicts.append(Verdict.UNKNOWN)
    verdict = combine(verdicts)
    if verdict is Verdict.VALID and point_missing:
        verdict = Verdict.NOT_APPLICABLE
    if verdict is Verdict.VALID and not settled:
        verdict = Verdict.UNKNOWN
    return verdict, results


__all__ = ["CHECKERS", "PRECONDITIONS", "Checker", "implied_checks", "judge", "run_checker", "run_checkers"]
