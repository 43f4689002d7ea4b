"""`harness sut check` and not-applicable scenarios, as a team meets them: a pipeline held against the SUT
contract, every missing required object named at once (exit 3), and each optional capability removed from the
reference in turn making exactly the scenarios that need it not applicable, named in every report."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.provision import EmbeddedPostgres
from harness.runner import requirements
from harness.scenario import all_scenario_files, load_scenarios
from harness.sut.check import check_sut
from harness.sut.config import load_sut, reference_sut, to_toml

HARNESS = [sys.executable, "-m", "harness.cli"]
NIGHTLY = {s.name for s in load_scenarios(all_scenario_files()) if "nightly" in s.suites}
SETTING_SCENARIOS = {
    "backlog-surge",
    "crash-after-side-effect",
    "db-network-partition",
    "decision-worker-sigkill",
    "orchestrator-sigkill",
    "crash-after-anchor-side-effect",
    "concurrent-orchestrator-sigkill",
    "orchestrator-sigkill-mid-call",
    "postgres-crash-restart",
    "postgres-restart-and-pause",
    "legacy-insert-compat",
    "legacy-insert-strict",
}
# capability declared absent -> the nightly scenarios that can no longer run. Written out by hand (not derived
# from the harness's own requirement rules) so a scenario that silently stops needing, or starts needing, a
# capability fails here.
REMOVED = {
    "failpoints": {"crash-after-side-effect", "crash-after-anchor-side-effect"},
    "failpoint-scope": {"crash-after-side-effect", "crash-after-anchor-side-effect"},
    "replay": {"core-trigger-disabled", "core-trigger-dropped", "alert-blip"},
    "projection-trigger": {"projection-trigger-disabled"},
    "settings": SETTING_SCENARIOS,
    "migration-set:without-dedupe-fix": {"ambiguous-dedupe-key-bug"},
    "heartbeats": set(),  # readiness falls back to the workers' connections
    "compat-warnings": set(),  # only the compat_warnings check of legacy-insert-compat stops applying
    "alerts": set(),  # the harness's observability pack judges the alerts instead
    "kpi": set(),  # only kpi_agrees stops applying
}


def _without(tmp_path: Path, capability: str) -> Path:
    path = tmp_path / f"without-{capability.replace(':', '-')}.toml"
    path.write_text(to_toml(reference_sut()) + f'\n[capabilities]\n"{capability}" = false\n')
    return path


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )


def test_the_reference_meets_the_contract_and_every_nightly_scenario_applies() -> None:
    # no FILE: the reference, as `harness run` defaults to it
    done = _run("sut", "check", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["sut"] == reference_sut().name
    assert Path(report["migrations"]) == reference_sut().migrations
    assert report["ok"] and report["system_started"] and not report["missing"]
    assert {"failpoints", "replay", "settings", "alerts", "heartbeats", "alert:core-trigger-disabled"} <= set(
        report["capabilities"]
    )
    assert {s["name"] for s in report["scenarios"] if s["applies"]} == NIGHTLY


def test_a_pipeline_missing_required_objects_is_one_exit_3_list(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_core_schema.sql").write_text(
        "CREATE TABLE document_entities (id uuid PRIMARY KEY, events jsonb NOT NULL DEFAULT '[]');\n"
        "CREATE TABLE job_types (name text PRIMARY KEY, kind text NOT NULL);\n"
    )
    sut = tmp_path / "ours.toml"
    sut.write_text('name = "ours"\nmigrations = "migrations"\n[workers]\norchestrator = ["true"]\n')
    done = _run("sut", "check", str(sut))
    assert done.returncode == 3, done.stdout + done.stderr
    text = done.stdout
    for line in (
        "MISSING  jobs: no table executor_jobs",
        "MISSING  runs: no table executor_job_runs",
        "MISSING  core trigger: no trigger on_document_entity_events_change",
        "MISSING  claim claim_initial_decision_jobs",
        "MISSING  claim claim_orchestrator_jobs",
        "MISSING  entry point: the SUT file has no [entry] request",
        "MISSING  worker fase1-executor",
    ):
        assert line in text, text
    assert "ok       entities" in text and "ok       job_types" in text
    # `harness run` stops before any scenario, with the same list, exit 3.
    ran = _run("run", "smoke", "--sut", str(sut), "--report-dir", str(tmp_path / "r"))
    assert ran.returncode == 3 and "missing claim claim_orchestrator_jobs" in ran.stderr, ran.stderr


@pytest.fixture(scope="module")
def server() -> EmbeddedPostgres:
    with EmbeddedPostgres(ready_clones=0) as pg:
        yield pg


@pytest.mark.parametrize("capability", sorted(REMOVED))
def test_each_capability_removed_makes_exactly_its_scenarios_not_applicable(
    capability: str, server: EmbeddedPostgres, tmp_path: Path
) -> None:
    from harness.cli import _applies

    sut = load_sut(_without(tmp_path, capability))
    scenarios = [s for s in load_scenarios(all_scenario_files()) if "nightly" in s.suites]
    report = check_sut(sut, server, scenarios, lambda s, sql, found: _applies(s, sql, found, requirements))
    assert report.ok, report.as_dict()
    lacking = {s["name"]: s["missing"] for s in report.scenarios if not s["applies"]}
    assert set(lacking) == REMOVED[capability], lacking
    for name, reasons in lacking.items():
        assert any(capability in r or "setting:" in r for r in reasons), (name, reasons)


def test_a_run_names_the_not_applicable_scenario_in_every_report(tmp_path: Path) -> None:
    from harness.scenario import SCENARIO_DIR

    done = _run(
        "run",
        str(SCENARIO_DIR / "crash-after-side-effect.yaml"),
        "smoke",
        "--sut",
        str(_without(tmp_path, "failpoints")),
        "--report-dir",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stdout + done.stderr  # not applicable is counted, never failed
    assert "not applicable: crash-after-side-effect: failpoint:execution.before-result-event" in done.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    by_name = {s["name"]: s for s in report["scenarios"]}
    assert by_name["crash-after-side-effect"]["verdict"] == "not-applicable"
    assert by_name["steady-state"]["verdict"] == "valid"
    assert report["verdict"] == "valid" and report["counts"]["not-applicable"] == 1
    junit = ET.parse(tmp_path / "run" / "junit.xml").getroot()
    skipped = junit.findall(".//testcase/skipped")
    assert len(skipped) == 1 and "failpoint:execution.before-result-event" in skipped[0].get("message", "")
    assert junit.get("skipped") == "1" and junit.get("failures") == "0" and junit.get("errors") == "0"
