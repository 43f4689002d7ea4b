"""Scenario files: every shipped file validates, and a catalogue of named broken inputs each gets its exact
message (file, path in the file, what was found, what is allowed), all problems of a file at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    all_scenario_files,
    load_scenarios,
    parse_scenario,
    select,
)
from harness.sut.config import reference_sut

GOOD = {"name": "ok", "description": "d", "suites": ["nightly"], "workload": {"flows": 5, "rate": 5}}

BROKEN = {
    "unknown fault": (
        {"faults": [{"fault": "meteor"}]},
        "faults[0].fault: 'meteor' is not allowed; expected one of: ",
    ),
    "bad worker role": (
        {"faults": [{"fault": "kill-worker", "role": "some"}]},
        "faults[0].role: 'some' is not allowed; expected one of fase1-executor, orchestrator",
    ),
    "negative start": (
        {"faults": [{"fault": "kill-worker", "at": -1}]},
        "faults[0].at: -1 is not allowed; expected a number at least 0",
    ),
    "unknown fault field": (
        {"faults": [{"fault": "poison-job", "cuont": 2}]},
        "faults[0].cuont: unknown field; expected one of: at, count, duration, fault",
    ),
    "missing required param": (
        {"faults": [{"fault": "failpoint"}]},
        "faults[0].point: missing; expected one of decision.after-claim",
    ),
    "bad suite name": (
        {"suites": ["Weekly run"]},
        "suites[0]: 'Weekly run' is not allowed; expected a suite name (smoke, nightly, gate, drill, or a team's",
    ),
    "unknown alert": (
        {"expect": {"alerts": [{"alert": "core_trigger_disabled", "within": 3}]}},
        "expect.alerts[0].alert: 'core_trigger_disabled' is not allowed; expected one of: core-trigger-disabled",
    ),
    "migration set beside versions": (
        {"migrations": {"set": "without-dedupe-fix", "skip": ["0008"]}},
        "migrations: {'set': 'without-dedupe-fix', 'skip': ['0008']} is not allowed; expected either set",
    ),
    "zero flows": (
        {"workload": {"flows": 0}},
        "workload.flows: 0 is not allowed; expected a whole number at least 1",
    ),
    "share above one": (
        {"workload": {"duplicate_same_id": 1.5}},
        "workload.duplicate_same_id: 1.5 is not allowed; expected a number at least 0 and at most 1",
    ),
    "unknown checker": (
        {"expect": {"checks": ["no_lost_jobs"]}},
        "expect.checks[0]: 'no_lost_jobs' is not allowed; expected one of: ",
    ),
    "checked and caught": (
        {"expect": {"checks": ["no_lost_job"], "catch": ["no_lost_job"]}},
        "expect.catch: ['no_lost_job'] is not allowed; expected checkers not also listed",
    ),
    "alert without rule": (
        {"expect": {"alerts": [{"within": 3}]}},
        "expect.alerts[0]: {'within': 3} is not allowed",
    ),
    "unknown top field": ({"seeed": 3}, "seeed: unknown field; expected one of: "),
    "bad migrations": (
        {"migrations": {"until": 7}},
        "migrations.until: 7 is not allowed; expected a migration version",
    ),
}


def test_every_shipped_scenario_validates_and_nightly_has_the_required_ones() -> None:
    scenarios = load_scenarios(all_scenario_files())
    nightly = {s.name for s in scenarios if "nightly" in s.suites}
    assert {
        "core-trigger-disabled",
        "projection-trigger-disabled",
        "orchestrator-sigkill",
        "decision-worker-sigkill",
        "crash-after-side-effect",
        "duplicate-events",
        "legacy-insert-compat",
        "legacy-insert-strict",
        "postgres-crash-restart",
        "tsa-outage",
        "poison-job",
        "backlog-surge",
        "ambiguous-dedupe-key-bug",
    } <= nightly
    assert {s.name for s in scenarios if "smoke" in s.suites} and {
        s.name for s in scenarios if "gate" in s.suites
    }


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scenario_gets_its_exact_message(case: str) -> None:
    change, message = BROKEN[case]
    scenario, problems = parse_scenario({**GOOD, **change}, "harness/scenarios/broken.yaml")
    assert scenario is None
    assert any(p.startswith("harness/scenarios/broken.yaml: ") and message in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    _scenario, problems = parse_scenario(
        {**GOOD, "suites": ["Weekly run"], "workload": {"flows": 0}, "faults": [{"fault": "meteor"}]},
        "x.yaml",
    )
    assert len(problems) == 3


def test_files_yaml_errors_and_duplicate_names(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: same\ndescription: d\nsuites: [nightly]\n")
    (tmp_path / "b.yaml").write_text("name: same\ndescription: d\nsuites: [nightly]\n")
    (tmp_path / "c.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(sorted(tmp_path.glob("*.yaml")))
    text = str(caught.value)
    assert "c.yaml: line 2, column 1: not valid YAML" in text or "c.yaml: line 1" in text
    assert "scenario name 'same' is used by more than one file" in text


def test_unknown_target_is_bad_input() -> None:
    with pytest.raises(ScenarioError, match="'weekly' is neither a suite"):
        select(["weekly"])


def test_every_fault_and_checker_is_documented() -> None:
    from harness.checkers import CHECKERS
    from harness.faults import REGISTRY
    from harness.faults.base import catalogue_markdown

    root = Path(__file__).resolve().parents[2]
    scenarios_doc = (SCENARIO_DIR / "README.md").read_text()
    checkers_doc = (root / "harness" / "checkers" / "README.md").read_text()
    assert [f for f in REGISTRY if f"`{f}`" not in scenarios_doc] == []
    assert catalogue_markdown() in scenarios_doc, (
        "regenerate the faults table: harness.faults.base.catalogue_markdown()"
    )
    assert [c for c in CHECKERS if c not in checkers_doc] == []


DEFINES_GATEWAY = re.compile(r"CREATE (OR REPLACE )?FUNCTION materialize_job\(")


def test_the_reference_without_its_dedupe_fix_skips_every_later_rewrite_of_the_gateway() -> None:
    # Any core migration that defines materialize_job again carries the fix with it, so a deployment that
    # only lacks 0008 would no longer have the bug: the reference's migration set must skip each of them
    # (this test fails when a new migration rewrites the gateway and the SUT file is not told).
    sut = reference_sut()
    rewrites = sorted(
        path.name[:4]
        for path in sut.migrations.glob("*.sql")
        if path.name[:4] > "0007" and DEFINES_GATEWAY.search(path.read_text(encoding="utf-8"))
    )
    (scenario,) = load_scenarios([SCENARIO_DIR / "ambiguous-dedupe-key-bug.yaml"])
    assert scenario.migrations_set == "without-dedupe-fix" and not scenario.migrations_skip
    assert rewrites and sorted(sut.migration_sets["without-dedupe-fix"].skip) == rewrites


def test_a_scenario_folder_reused_by_a_new_run_holds_that_run_alone(tmp_path: Path) -> None:
    """A second run into the same --report-dir must not inherit the first one's artefacts (the services'
    journals among them); a replay of a scenario file kept in its own folder keeps that file."""
    from harness.runner import fresh_folder

    source = SCENARIO_DIR / "steady-state.yaml"
    scenario = load_scenarios([source])[0]
    folder = tmp_path / "steady-state"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "tsa.jsonl").write_text('{"key": "job-1"}\n')
    (folder / "checks.json").write_text("[]")
    fresh_folder(scenario, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["scenario.yaml"]
    assert (folder / "scenario.yaml").read_text() == source.read_text()

    (folder / "logs").mkdir()
    kept = load_scenarios([folder / "scenario.yaml"])[0]
    fresh_folder(kept, folder)
    assert (folder / "logs").is_dir() and (folder / "scenario.yaml").read_text() == source.read_text()
