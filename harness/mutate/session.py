"""A whole `harness mutate`: read the definitions, make the mutants, run the coverage run, then the mutants
in their seeded order until they are all judged or the budget is spent.

Each mutant runs only against the scenarios that can see it: those that executed its statement in the
coverage run (and those whose coverage could not be read), among those that hold on the unmutated pipeline.
They run in the order most likely to kill it soon, since the run stops at the first invalid one: scenarios
of the `smoke` suite first (the cheap smoke run first, the rest only for a mutant that survives it), then
the scenarios that killed the most mutants so far, then the quickest. A mutant whose statement no such
scenario executed is judged equivalent without running (`--run-unreached` runs it anyway).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BadInput
from harness.mutate.coverage import LOG_SETTINGS, Coverage, run_coverage
from harness.mutate.generator import Generated, Mutant, generate, seeded_order
from harness.mutate.operators import Operator
from harness.mutate.runner import EQUIVALENT, KILLED, SURVIVED, UNTRIED, MutantRunner, Outcome
from harness.mutate.source import read_definitions
from harness.provision import open_provider
from harness.provision.migrations import MigrationPlan
from harness.records import Scenario
from harness.scenario import select
from harness.sut.config import Sut

Progress = Callable[[str], None]


@dataclass
class MutateOptions:
    sut: Sut
    targets: list[str]  # suites or scenario files
    folders: list[Path]  # where suites' scenarios are found
    operators: list[Operator]
    functions: set[str] | None = None
    budget_min: float | None = None
    seed: int = 1
    postgres: str = "embedded"
    workdir: Path | None = None  # kept when given; else a temp folder removed at the end
    coverage: bool = True
    run_unreached: bool = False
    all_scenarios: bool = False
    max_mutants: int | None = None
    list_only: bool = False


@dataclass
class MutateResult:
    options: MutateOptions
    scenarios: list[Scenario] = field(default_factory=list)  # run against mutants
    left_out: dict[str, str] = field(default_factory=dict)  # scenario -> why it is not
    generated: Generated = field(default_factory=Generated)
    functions: int = 0
    triggers: int = 0
    order: list[Mutant] = field(default_factory=list)  # the mutants chosen, in the order they are taken
    coverage: Coverage | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mutant_seconds: float = 0.0  # spent on the mutants themselves (checks and suite runs)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def kill_rate(self) -> float | None:
        """killed / (killed + survived); equivalent mutants are not survivors."""
        judged = self.count(KILLED) + self.count(SURVIVED)
        return self.count(KILLED) / judged if judged else None

    @property
    def tried(self) -> int:
        return sum(o.ran or o.status == "broke" for o in self.outcomes if o.status != UNTRIED)

    def per_hour(self, seconds: float) -> float | None:
        return self.tried * 3600 / seconds if seconds > 0 and self.tried else None


def runnable(scenarios: list[Scenario]) -> tuple[list[Scenario], dict[str, str]]:
    """The scenarios a mutant can run against, and why each other one cannot: one deploying another set of
    migrations would get the mutant migration on top of that set (the current definition, mutated, brought
    back into a pipeline as it was before some fix), which is not the pipeline under test."""
    kept, left = [], {}
    for scenario in scenarios:
        if scenario.migrations_set or scenario.migrations_until or scenario.migrations_skip:
            left[scenario.name] = "deploys another set of migrations (the mutant would be put on top of it)"
        elif scenario.path is None:
            left[scenario.name] = "has no scenario file to hand to harness run"
        else:
            kept.append(scenario)
    return kept, left


def run_mutate(options: MutateOptions, progress: Progress = print) -> MutateResult:
    started = time.monotonic()
    deadline = started + options.budget_min * 60 if options.budget_min else None
    result = MutateResult(options)
    result.scenarios, result.left_out = runnable(select(options.targets, options.folders))
    if not result.scenarios:
        raise BadInput(
            f"no scenario of {' '.join(options.targets)} can run against mutants: {result.left_out}"
        )
    embedded = options.postgres == "embedded"
    extra = {"settings": LOG_SETTINGS} if embedded else {}
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="harness-mutate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with open_provider(options.postgres, ready_clones=0, **extra) as provider:
            with provider.database(MigrationPlan(options.sut.migrations)) as dsn:
                definitions = read_definitions(dsn, options.functions)
            result.functions = sum(d.kind == "function" for d in definitions)
            result.triggers = len(definitions) - result.functions
            result.generated = generate(definitions, options.operators)
            result.order = seeded_order(result.generated.mutants, options.seed)[: options.max_mutants]
            progress(
                f"{len(result.generated.mutants)} mutants of {result.functions} functions and {result.triggers} "
                f"triggers; {len(result.order)} chosen (seed {options.seed})"
            )
            if options.list_only:
                return result
            runner = MutantRunner(options.sut, provider, options.postgres, workdir / "mutants")
            why = runner.usable(options.sut, None)
            if why and why.startswith("the entry point"):
                runner.entry_probe = False
                result.notes.append(
                    f"no entry-point probe before each mutant: on the unmutated pipeline, {why}"
                )
            elif why:
                raise BadInput(f"the unmutated pipeline is not usable ({why}); `harness sut check` it first")
            if options.coverage and embedded:
                result.coverage = run_coverage(
                    options.sut,
                    provider,
                    result.scenarios,
                    definitions,
                    result.generated.anatomies,
                    workdir / "coverage",
                    progress,
                    deadline,
                )
                for name, verdict in result.coverage.verdicts.items():
                    if verdict != "valid":
                        why = result.coverage.reasons.get(name, "")
                        result.left_out[name] = (
                            f"{verdict} on the unmutated pipeline{f' ({why})' if why else ''}"
                        )
                result.scenarios = [s for s in result.scenarios if s.name not in result.left_out]
            elif options.coverage:
                result.notes.append(
                    "no coverage run: the probes are read from the server log of --postgres embedded"
                )
            _run_mutants(result, runner, deadline, progress)
    finally:
        result.seconds = time.monotonic() - started
        if options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _reach(result: MutateResult, mutant: Mutant) -> set[str] | None:
    if result.coverage is None:
        return None
    reach = result.coverage.reach(mutant.probe)
    return None if reach is None else reach & {s.name for s in result.scenarios}


def _unreached_reason(result: MutateResult, mutant: Mutant) -> str:
    coverage = result.coverage
    assert coverage is not None
    observed = [s.name for s in result.scenarios if s.name in coverage.hit]
    reason = (
        f"rule: its statement never ran in the coverage run (the suite on the unmutated pipeline, "
        f"{len(observed)} scenario(s) observed), so no scenario of this suite can observe the change"
    )
    elsewhere = (coverage.reach(mutant.probe) or set()) - {s.name for s in result.scenarios}
    if elsewhere:
        reason += f"; it ran only in {', '.join(sorted(elsewhere))}, left out of the mutant runs"
    unobserved = sorted(s.name for s in result.scenarios if s.name in coverage.unobserved)
    if unobserved:
        reason += f"; coverage unknown for {', '.join(unobserved)} (private server)"
    return reason


def _plan(
    result: MutateResult, mutant: Mutant, kills: Counter[str], reach: set[str] | None
) -> list[Scenario]:
    coverage = result.coverage
    chosen = result.scenarios
    if reach and coverage is not None and not result.options.all_scenarios:
        chosen = [s for s in chosen if s.name in reach or s.name in coverage.unobserved]
    durations = coverage.durations if coverage else {}
    return sorted(
        chosen, key=lambda s: ("smoke" not in s.suites, -kills[s.name], durations.get(s.name, float("inf")))
    )


def _run_mutants(
    result: MutateResult, runner: MutantRunner, deadline: float | None, progress: Progress
) -> None:
    kills: Counter[str] = Counter()
    queue: list[tuple[Mutant, set[str] | None]] = []
    later: list[tuple[Mutant, set[str] | None]] = []
    for mutant in result.order:
        reach = _reach(result, mutant)
        if mutant.equivalent:
            result.outcomes.append(Outcome(mutant, EQUIVALENT, mutant.equivalent))
        elif reach is not None and not reach:
            if result.options.run_unreached:
                later.append((mutant, reach))
            else:
                result.outcomes.append(Outcome(mutant, EQUIVALENT, _unreached_reason(result, mutant)))
        else:
            queue.append((mutant, reach))
    queue += later
    started = time.monotonic()
    for number, (mutant, reach) in enumerate(queue, 1):
        if deadline is not None and time.monotonic() >= deadline:
            result.outcomes += [
                Outcome(m, UNTRIED, "the budget was spent before its turn") for m, _ in queue[number - 1 :]
            ]
            progress(f"budget spent: {len(queue) - number + 1} mutant(s) left untried")
            break
        scenarios = _plan(result, mutant, kills, reach)
        outcome = runner.run(mutant, scenarios, deadline)
        if outcome.status == SURVIVED and reach is not None and not reach:
            outcome.status, outcome.reason = (
                EQUIVALENT,
                _unreached_reason(result, mutant) + " (ran and survived)",
            )
        if outcome.status == KILLED and outcome.scenario:
            kills[outcome.scenario] += 1
        result.outcomes.append(outcome)
        detail = (
            f"by {outcome.scenario} ({', '.join(outcome.checks)})"
            if outcome.status == KILLED
            else outcome.reason or f"{len(outcome.scenarios)} scenario(s)"
        )
        progress(
            f"[{number}/{len(queue)}] {mutant.id} {mutant.operator} in {mutant.name}: {outcome.status} "
            f"{detail} in {outcome.seconds:.0f} s"
        )
    result.mutant_seconds = time.monotonic() - started
