"""`harness mutate` as a user runs it, on copies of the reference pipeline.

The default test is focused (two mutants, one scenario file, under a minute): the ON CONFLICT of the request
entry point, which duplicate requests must expose, and an ON CONFLICT in a function planted in the copy that
nothing calls, which the coverage run sees never executed: it runs, survives and is listed as equivalent,
with its rule. Slow tests: a survivor (the claim's SKIP LOCKED, which one worker per role cannot see) with
its diff and what would kill it, failing the `--min-kill-rate` gate; and the nightly suite over a small
operator set, killing the guard and the dedupe with the scenarios made for them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario import SCENARIO_DIR
from harness.sut.config import reference_sut, to_toml

HARNESS = [sys.executable, "-m", "harness.cli"]
PLANTED = """-- class: core
-- Planted for the test: a function nothing calls, so no scenario can see a change inside it.
CREATE FUNCTION planted_never_called(p_key text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pipeline_settings (key, value) VALUES (p_key, 'planted') ON CONFLICT (key) DO NOTHING;
END
$$;
"""


def planted_copy(tmp_path: Path) -> Path:
    """A copy of the reference's migrations plus the planted function; the SUT file pointing at it."""
    sut = reference_sut()
    migrations = tmp_path / "migrations"
    shutil.copytree(sut.migrations, migrations)
    (migrations / "0999_core_planted_unused.sql").write_text(PLANTED, encoding="utf-8")
    toml = tmp_path / "sut.toml"
    toml.write_text(to_toml(sut, migrations=migrations), encoding="utf-8")
    return toml


def mutate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, "mutate", *args], capture_output=True, text=True, timeout=timeout)


def test_kills_the_entry_points_dedupe_and_lists_a_planted_equivalent(tmp_path: Path) -> None:
    html = tmp_path / "mutate.html"
    done = mutate(
        "--sut", str(planted_copy(tmp_path)),
        "--suite", str(SCENARIO_DIR / "duplicate-events.yaml"),
        "--functions", "request_protection,planted_never_called",
        "--operators", "drop-on-conflict",
        "--run-unreached", "--json", "--html", str(html), "--min-kill-rate", "0.9",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # 1 killed of 1 killed or survived: the equivalent is apart
    report = json.loads(done.stdout)
    assert report["counts"] == {
        "killed": 1,
        "survived": 0,
        "equivalent": 1,
        "broke": 0,
        "unknown": 0,
        "untried": 0,
    }
    assert report["kill_rate"] == 1.0 and report["mutants_per_hour"] > 0
    assert report["coverage"]["verdicts"] == {"duplicate-events": "valid"}
    by_target = {m["target"].split("(")[0]: m for m in report["mutants"]}
    killed = by_target["request_protection"]
    assert killed["status"] == "killed" and killed["killed_by"]["scenario"] == "duplicate-events"
    assert {"requests_accepted", "flows_complete"} & set(killed["killed_by"]["checks"])
    planted = by_target["planted_never_called"]
    assert planted["status"] == "equivalent" and planted["scenarios"] == ["duplicate-events"]
    assert "never ran in the coverage run" in planted["reason"] and "ran and survived" in planted["reason"]
    assert "ON CONFLICT (key) DO NOTHING" in planted["diff"]
    page = html.read_text()
    assert killed["id"] in page and "planted_never_called" in page and "<pre>" in page


@pytest.mark.slow
def test_a_survivor_shows_its_diff_and_needs_and_fails_the_gate() -> None:
    done = mutate(
        "--suite", str(SCENARIO_DIR / "duplicate-events.yaml"), "--functions", "claim_jobs_of_kind",
        "--operators", "drop-skip-locked", "--min-kill-rate", "0.5",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # 0 of 1: below the gate
    assert "KILL RATE: 0% (0 killed / 1 killed or survived" in done.stdout
    survivors = done.stdout.split("survivors (what the suite would need to kill each): 1")[1]
    assert "drop-skip-locked in claim_jobs_of_kind" in survivors and "needs: contention" in survivors
    diff = [" ".join(line.split()) for line in survivors.splitlines()]
    assert "- FOR UPDATE OF q, j SKIP LOCKED" in diff and "+ FOR UPDATE OF q, j" in diff


def test_budget_spent_before_any_mutant_leaves_them_untried_and_says_so() -> None:
    done = mutate("--suite", "smoke", "--functions", "request_protection", "--budget", "0.0001", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    counts = report["counts"]
    assert report["chosen"] > 3 and counts["untried"] + counts["equivalent"] == report["chosen"]
    assert counts["killed"] == counts["survived"] == 0 and report["kill_rate"] is None
    # The coverage run was cut short, so nothing is judged unreached: only the text rule (LIMIT 1 INTO) holds.
    equivalent = [m for m in report["mutants"] if m["status"] == "equivalent"]
    assert len(equivalent) == 1 and "keeps the first row" in equivalent[0]["reason"]
    assert "left untried" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operators", "drop-everything"], "unknown operator(s) drop-everything"),
        (["--min-kill-rate", "80"], "--min-kill-rate is a fraction between 0 and 1"),
        (["--budget", "0"], "--budget must be a positive number"),
        (["--functions", "no_such_function", "--list"], "no function or trigger named no_such_function"),
        (["--suite", "no-such-suite", "--list"], "is neither a suite"),
    ],
)
def test_bad_arguments_exit_3_naming_the_problem(args: list[str], message: str) -> None:
    done = mutate(*args, timeout=120)
    assert done.returncode == 3 and message in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_nightly_kills_the_guard_and_the_dedupe(tmp_path: Path) -> None:
    done = mutate(
        "--suite", "nightly", "--functions", "request_protection,executor_jobs_gateway_guard",
        "--operators", "drop-on-conflict,drop-raise", "--json", "--report-dir", str(tmp_path),
        timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    found = {(m["target"].split("(")[0], m["change"].split(",")[0]): m for m in report["mutants"]}
    strict = found[("executor_jobs_gateway_guard", "drop `RAISE EXCEPTION USING ERRCODE = 'PJ003'")]
    assert strict["status"] == "killed" and strict["killed_by"]["scenario"] == "legacy-insert-strict"
    dedupe = found[("request_protection", "drop ON CONFLICT (id) DO NOTHING")]
    assert dedupe["status"] == "killed" and dedupe["killed_by"]["scenario"] == "duplicate-events"
    assert "ambiguous-dedupe-key-bug" in report["left_out"]  # it deploys another migration set
