"""The coverage run: the suite once on the unmutated pipeline, with probes, before any mutant runs.

It answers three questions for the mutants that follow. Which scenarios hold on the pipeline as it is (a
scenario that fails without any mutant cannot kill one: it is left out of the mutant runs, and said so).
Which scenarios execute the statement a mutant changes (only those can see the change, so a mutant runs
against those and the scenarios whose coverage could not be read). Which statements no scenario executes (a
mutant there is judged equivalent for this suite: no scenario can observe it).

The scenarios run in this process, on the session's own server, whose log holds the probes' lines; a
scenario that needs a private server (server faults) runs on one whose log is gone with it, so its coverage
is unknown and it is never left out on coverage grounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.mutate.anatomy import Anatomy
from harness.mutate.copies import sut_copy
from harness.mutate.probes import hits, probe_migration
from harness.mutate.source import Definition
from harness.provision import EmbeddedPostgres, Provider
from harness.records import Scenario
from harness.runner import Progress, run_scenario
from harness.sut.config import Sut

# The server settings that keep the probes' log lines short (no statement text, no context per line).
LOG_SETTINGS = {"log_min_error_statement": "panic", "log_error_verbosity": "terse"}


@dataclass
class Coverage:
    placed: set[str] = field(default_factory=set)  # probes the instrumented copy holds
    hit: dict[str, set[str]] = field(default_factory=dict)  # scenario -> probes it executed (observed ones)
    verdicts: dict[str, str] = field(default_factory=dict)  # scenario -> its verdict on the pipeline as is
    reasons: dict[str, str] = field(default_factory=dict)  # scenario -> why it is not valid
    durations: dict[str, float] = field(default_factory=dict)
    unobserved: set[str] = field(default_factory=set)  # ran, but its probes could not be read
    seconds: float = 0.0
    complete: bool = True  # False: the budget ran out before every scenario ran

    def reach(self, probe: str | None) -> set[str] | None:
        """The observed scenarios that executed `probe`'s statement; None when that cannot be told (no probe
        there, or the coverage run was cut short)."""
        if probe is None or probe not in self.placed or not self.complete:
            return None
        return {name for name, probes in self.hit.items() if probe in probes}

    @property
    def reached(self) -> set[str]:
        return set().union(*self.hit.values()) if self.hit else set()


def run_coverage(
    sut: Sut,
    provider: Provider,
    scenarios: list[Scenario],
    definitions: list[Definition],
    anatomies: dict[int, Anatomy],
    folder: Path,
    progress: Progress,
    deadline: float | None,
) -> Coverage:
    """Run `scenarios` once on an instrumented copy of `sut`, on `provider` (an embedded server)."""
    started = time.monotonic()
    sql, placed = probe_migration(definitions, anatomies)
    probed_sut, _ = sut_copy(sut, folder, "mutate_probes", sql)
    coverage = Coverage(placed=placed)
    assert isinstance(provider, EmbeddedPostgres), "the coverage run reads an embedded server's log"
    log = provider.log_path
    _, offset = hits(log, 0)
    for number, scenario in enumerate(scenarios, 1):
        if deadline is not None and time.monotonic() >= deadline:
            progress(f"coverage: budget spent; {len(scenarios) - number + 1} scenario(s) not observed")
            coverage.unobserved |= {s.name for s in scenarios[number - 1 :]}
            coverage.complete = False
            break
        result = run_scenario(scenario, probed_sut, folder / "runs" / scenario.name, provider)
        found, offset = hits(log, offset)
        verdict = str(result.verdict)
        coverage.verdicts[scenario.name] = verdict
        coverage.durations[scenario.name] = result.duration_s
        if verdict not in ("valid", "not-applicable"):
            failing = [c.name for c in result.checks if str(c.verdict) not in ("valid", "not-applicable")]
            error = result.error.strip().splitlines()[0] if result.error else ""
            coverage.reasons[scenario.name] = ", ".join(failing) or error or verdict
        if scenario.own_server or not found:
            coverage.unobserved.add(scenario.name)
        else:
            coverage.hit[scenario.name] = found
        progress(
            f"coverage [{number}/{len(scenarios)}] {scenario.name}: {verdict}, "
            f"{len(found)} statement(s) reached in {result.duration_s:.0f} s"
        )
    coverage.seconds = time.monotonic() - started
    return coverage
