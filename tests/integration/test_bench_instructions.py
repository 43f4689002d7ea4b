"""`harness bench --instructions`: callgrind's counts of the hot paths, the same for the same work, and a
regression gate that fails on a pipeline made slower on purpose."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.perf.instructions import run_instructions
from harness.sut.config import load_sut, reference_sut, to_toml

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind not installed: apt-get install -y valgrind"
)
BENCH = [sys.executable, "-m", "harness.cli", "bench"]

# The planted cost: a CHECK that serializes every entity's whole event list on every append.
SLOWER = """-- class: core
ALTER TABLE document_entities ADD CONSTRAINT planted_slow_check CHECK (length(events::text) < 100000000);
"""


def slower_pipeline(tmp_path: Path) -> Path:
    reference = reference_sut()
    migrations = tmp_path / "migrations"
    shutil.copytree(reference.migrations, migrations)
    (migrations / "0999_core_planted_cost.sql").write_text(SLOWER)
    config = tmp_path / "sut.toml"
    config.write_text(to_toml(reference, migrations))
    return config


@needs_valgrind
def test_a_planted_cost_is_counted_and_untouched_paths_count_the_same(tmp_path: Path) -> None:
    newest = sorted(p.name[:4] for p in reference_sut().migrations.glob("*.sql"))[-1]
    report = run_instructions(
        load_sut(slower_pipeline(tmp_path)),
        baseline_until=newest,
        jobs=30,
        max_regression_pct=2,
        workloads=("append", "noop_decision_batch10"),
    )
    ratios = report.ratios()
    # Appends write document_entities, so they pay for the planted CHECK...
    assert ratios["append"] > 1.02, report.as_dict()
    assert [r for r in report.regressions() if r.startswith("append:")], report.regressions()
    # ...a no-op decision only locks its entity: the same work, counted the same on both databases.
    assert abs(ratios["noop_decision_batch10"] - 1) < 0.01, report.as_dict()
    assert not [r for r in report.regressions() if r.startswith("noop_decision")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--instructions", "--max-regression", "5"],
            "--max-regression takes a percentage of 0 or more, and needs --baseline-until",
        ),
        (["--instructions", "--baseline-until", "9999"], "migration '9999' is not in"),
        (
            ["--instructions", "--postgres", "host=127.0.0.1 port=1"],
            "--instructions runs its own server under valgrind",
        ),
        # the timed bench, given an option of the counted one
        (["--baseline-until", "0016"], "--baseline-until, --max-regression and --sut go with --instructions"),
    ],
)
def test_bad_instruction_arguments_are_one_line_errors(args: list[str], message: str) -> None:
    done = subprocess.run([*BENCH, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_without_valgrind_it_says_how_to_get_it(tmp_path: Path) -> None:
    # A PATH with the interpreter's folder only: no valgrind on it.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([*BENCH, "--instructions"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 3 and "needs valgrind: install it (apt-get install valgrind)" in done.stderr
