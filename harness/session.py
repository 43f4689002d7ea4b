"""A `harness run`: scenarios (times --repeat) on one shared embedded server, reports written at the end.

The run folder is `reports/<run-id>/` (or --report-dir): one sub-folder per scenario with its artefacts, and
report.json, junit.xml and report.html beside them. The exact command, the seed, the git SHA and the versions
are recorded so the run can be repeated.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from harness.provision import Provider, open_provider
from harness.provision.migrations import MigrationPlan
from harness.records import RunSummary, Scenario, ScenarioResult, Verdict
from harness.runner import Progress, run_scenario
from harness.sut.adapter import SutSql
from harness.sut.config import Sut


def git_state(folder: Path) -> tuple[str, bool]:
    """The commit and dirty flag of the repository holding `folder` (the pipeline under test: its SUT
    file's folder), so a report says which code it judged; ("unknown", False) outside a repository."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", False
    return (sha.stdout.strip() or "unknown"), bool(dirty.stdout.strip())


def versions(postgres: str) -> dict[str, str]:
    try:
        harness_version = metadata.version("pg-pipeline-harness")
    except metadata.PackageNotFoundError:
        harness_version = "unknown"
    return {
        "harness": harness_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgres": postgres,
    }


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


def check_contract(provider: Provider, sut: Sut) -> SutSql:
    """Before any scenario: the pipeline's migrations applied to a fresh database meet the SUT contract, or
    the run stops with one exit-3 list of everything missing (SutIncomplete)."""
    with provider.database(MigrationPlan(sut.migrations)) as dsn:
        return SutSql.connect(sut, dsn)


def run_session(
    scenarios: Sequence[Scenario],
    sut: Sut,
    postgres: str,
    report_dir: Path,
    repeat: int = 1,
    seed: int | None = None,
    progress: Progress = print,
    argv: Sequence[str] | None = None,
    maxfail: int | None = None,
    after_each: Callable[[RunSummary], object] | None = None,
) -> RunSummary:
    """Run the scenarios (times `repeat`) on one shared server. `maxfail`: stop once that many scenarios are
    invalid (CI's fail-fast: a broken pipeline gets its verdict without waiting for the rest); the scenarios
    left out are named in the summary. `after_each` hears the summary so far after every scenario (the CLI
    rewrites the reports then, so a run cut short still leaves them for what finished)."""
    run_id = report_dir.name
    report_dir.mkdir(parents=True, exist_ok=True)
    sha, dirty = git_state(sut.path.parent if sut.path else Path.cwd())
    command = shlex.join(["harness", *(argv if argv is not None else sys.argv[1:])])
    started_wall, started = time.time(), time.monotonic()
    results: list[ScenarioResult] = []
    interrupted = False
    not_run: list[str] = []
    pg_version = "unknown"

    def summary() -> RunSummary:
        return RunSummary(
            run_id=run_id,
            command=command,
            git_sha=sha,
            git_dirty=dirty,
            versions=versions(pg_version),
            seed=seed,
            started_wall=started_wall,
            duration_s=round(time.monotonic() - started, 3),
            scenarios=tuple(results),
            interrupted=interrupted,
            not_run=tuple(not_run),
        )

    try:
        with open_provider(postgres, ready_clones=1) as shared:
            pg_version = f"{shared.info().provider} {shared.info().version}"
            check_contract(shared, sut)
            total = len(scenarios) * repeat
            planned = [(round_, scenario) for round_ in range(repeat) for scenario in scenarios]
            for position, (round_, scenario) in enumerate(planned):
                failed = sum(r.verdict is Verdict.INVALID for r in results)
                if maxfail is not None and failed >= maxfail:
                    not_run = [s.name for _, s in planned[position:]]
                    progress(
                        f"stopping after {failed} invalid scenario(s) (--maxfail {maxfail}): {len(not_run)} not run"
                    )
                    break
                if seed is not None:
                    scenario = dataclasses.replace(scenario, seed=seed)
                folder = report_dir / (scenario.name if repeat == 1 else f"{scenario.name}-{round_ + 1}")
                progress(f"[{len(results) + 1}/{total}] {scenario.name} (seed {scenario.seed}) ...")
                result = run_scenario(scenario, sut, folder, shared, progress, repeat=round_)
                results.append(result)
                failing = [c.name for c in result.checks if c.verdict not in ("valid", "not-applicable")]
                detail = f" ({', '.join(failing)})" if failing else ""
                if result.verdict is Verdict.NOT_APPLICABLE:
                    detail = (
                        f" ({'; '.join(result.not_applicable) or 'a planted bug this pipeline cannot show'})"
                    )
                if result.error:
                    detail = f" (harness error: {result.error.splitlines()[0]})"
                progress(
                    f"[{len(results)}/{total}] {scenario.name}: {result.verdict}{detail} "
                    f"in {result.duration_s:.1f} s"
                )
                if after_each is not None:
                    after_each(summary())
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: faults healed, processes and servers stopped; writing what ran")
    return summary()
