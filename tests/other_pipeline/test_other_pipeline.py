"""The harness holds a pipeline it has never seen: tests/other_pipeline, a second implementation of the RFC
written from the SUT contract alone, with its own tables, names and choices (README.md beside this file).

If the harness quietly depended on the reference's internals, this is where it would show: `harness sut
check` would miss a capability, a scenario would run against tables that are not there, or a checker would
judge this pipeline's rows wrongly. So the pipeline goes through the same doors a team's would: the SUT
check, `harness run` on planted copies (each one targeted change from the healthy folder, each caught by the
check that exists for it, while the healthy folder passes the same scenarios), and the nightly suite (slow).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import psycopg
import pytest

from harness.provision import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan
from harness.scenario import SCENARIO_DIR
from harness.wait import wait_until
from tests.quality.planting import PLANTED_MIGRATION, plant, planted_migrations

HERE = Path(__file__).resolve().parent
SUT_FILE = HERE / "harness.toml"
APP = HERE / "app"


def harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The harness's command line, as a team runs it."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_report(
    sut_file: Path, scenarios: list[str], report_dir: Path, timeout: float = 300
) -> tuple[int, dict]:
    done = harness(
        "run",
        *(str(SCENARIO_DIR / f"{name}.yaml") for name in scenarios),
        "--sut",
        str(sut_file),
        "--report-dir",
        str(report_dir),
        timeout=timeout,
    )
    assert (report_dir / "report.json").is_file(), done.stdout + done.stderr
    return done.returncode, json.loads((report_dir / "report.json").read_text())


# -- the SUT contract ----------------------------------------------------------------------------------------
def test_sut_check_accepts_it_and_finds_what_its_sut_file_maps() -> None:
    """Every capability here comes from a mapping in harness.toml or from the schema (none is declared), so
    each one found proves discovery reads a pipeline that keeps the RFC's names only where the RFC gives them;
    each one absent is absent for the reason the contract gives."""
    done = harness("sut", "check", str(SUT_FILE), "--json", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["system_started"] and not report["missing"]
    found, absent = report["capabilities"], report["absent"]
    assert found["settings"] and found["setting:gateway_mode"] == "[setting_statements]"
    assert {"setting:lease_seconds", "setting:retry_base_ms"} <= set(found)
    assert (
        "[reads]" in found["compat-warnings"]
        and found["materialized-via"] == "executor_jobs.materialized_via"
    )
    assert found["replay"] == "[conventions] replay"
    assert found["projection-trigger"] == "trigger project_user_documents"
    assert {"service-admin:tsa", "service-admin:ledger", "migration-set:without-dedupe-fix"} <= set(found)
    assert {"failpoints", "alerts", "heartbeats"} <= set(absent)
    assert not any(name.startswith("failpoint:") for name in found)
    assert {"side-effects:tsa", "side-effects:ledger"} <= set(found)
    skipped = {s["name"]: s["missing"] for s in report["scenarios"] if not s["applies"]}
    assert skipped["crash-after-side-effect"][0].startswith("failpoint:execution.before-result-event:")
    assert all(why and all(w.startswith("failpoint") for w in why) for why in skipped.values()), skipped
    assert len(skipped) < len(report["scenarios"]) // 4, skipped


def test_its_static_contracts_hold_under_its_own_config() -> None:
    """The folder is a team's repository as far as the contracts go: with its own contracts.toml (its
    gateway and roles by their names) nothing is violated, and its legacy migration's direct insert is seen
    and reported as historic, since 0004 drops that function."""
    done = harness("contracts", "check", "--source", str(HERE), "--format", "json", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert not [f for f in findings if f["level"] in ("error", "warning")], findings
    historic = [f for f in findings if f["rule"] == "PGC101"]
    assert historic and all(f["level"] == "note" and "historic" in f["message"] for f in historic)
    assert {f["path"] for f in historic} == {"migrations/0002_legacy_user_documents_enqueue.sql"}


# -- three planted bugs ---------------------------------------------------------------------------------------
class Bug(NamedTuple):
    function: str
    old: str  # occurs exactly once in the function's definition in force
    new: str
    scenario: str
    check: str  # the check `harness run` must find invalid


def test_a_drill_runs_on_it_with_the_harness_alerts_or_says_why_not(tmp_path: Path) -> None:
    """It has no alerts of its own: the harness's pack detects the planted fault under the runbook's alert
    names, and the runbook steps that read the reference's objects are marked as such, not as failures. A
    drill whose every finding step reads what it lacks is not applicable: exit 3, naming the step."""
    done = harness(
        "drill", "not-enqueued", "--auto", "--sut", str(SUT_FILE), "--report-dir", str(tmp_path / "drills")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALERT core-trigger-disabled firing" in done.stdout
    assert "=> FINDING core-trigger-disabled" in done.stdout
    assert "not on this pipeline: " in done.stdout and "query failed" not in done.stdout

    done = harness(
        "drill",
        "enqueued-not-executed",
        "--auto",
        "--sut",
        str(SUT_FILE),
        "--report-dir",
        str(tmp_path / "x"),
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot run the drill enqueued-not-executed" in done.stderr
    assert "finds worker-role-absent" in done.stderr and "step 2" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


PLANTED = {
    "claim-returns-both-kinds": Bug(
        "claim_orchestrator_jobs",
        "WHERE t.kind = 'execution'",
        "WHERE t.kind IN ('execution', 'decision') /* the planted bug: decision jobs too */",
        "decision-worker-sigkill",  # bites hardest while the decision worker is down
        "flows_complete",
    ),
    "gateway-without-dedupe": Bug(
        "enqueue_from_event",
        "v_dedupe_key text := p_entity_id::text || ':' || p_job_type || ':' || (p_event ->> 'id');",
        "v_dedupe_key text := gen_random_uuid()::text;  -- the planted bug: a key no second call shares",
        "duplicate-events",
        "no_duplicate_job",
    ),
    "trigger-skips-an-event-type": Bug(
        "materialize_appended_events",
        "IF v_job_type IS NOT NULL THEN",
        "IF v_job_type IS NOT NULL AND v_event ->> 'type' <> 'job.tsa.required' THEN  -- the planted bug",
        "steady-state",
        "no_lost_job",
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(ready_clones=0) as pg:
        yield pg


def planted_copy(server: EmbeddedPostgres, dest: Path, bug: str) -> Path:
    """A copy of the whole folder (SUT file, app, migrations) plus one core migration replacing `bug`'s
    function with its definition in force, changed once. Returns the copy's SUT file."""
    function, old, new, *_ = PLANTED[bug]
    with server.database(MigrationPlan(HERE / "migrations")) as dsn:
        sql = plant(function, old, new, dsn=dsn)
    shutil.copytree(HERE, dest, ignore=shutil.ignore_patterns("migrations", "__pycache__", "test_*.py"))
    planted_migrations(dest / "migrations", sql, bug, source=HERE / "migrations")
    return dest / "harness.toml"


def catalogue(dsn: str) -> dict[str, str]:
    """Every function's definition, every trigger, column and index of the public schema, by name."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p
                WHERE p.pronamespace = 'public'::regnamespace
               UNION ALL
               SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text FROM pg_trigger t
                WHERE NOT t.tgisinternal
               UNION ALL
               SELECT 'column ' || table_name || '.' || column_name,
                      data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
               UNION ALL
               SELECT 'index ' || indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"""
        ).fetchall()
    return {str(name): str(body) for name, body in rows}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_a_planted_copy_differs_from_the_healthy_pipeline_by_its_one_change(
    server: EmbeddedPostgres, tmp_path: Path, bug: str
) -> None:
    """A copy differing in more than its bug would not show the harness catches that bug; one whose change
    did not take would show nothing. Both copies are migrated and their catalogues compared."""
    sut_file = planted_copy(server, tmp_path / "copy", bug)
    function, old, new, *_ = PLANTED[bug]
    with server.database(MigrationPlan(HERE / "migrations")) as dsn:
        healthy = catalogue(dsn)
    with server.database(MigrationPlan(sut_file.parent / "migrations")) as dsn:
        planted = catalogue(dsn)
    changed = sorted(k for k in healthy.keys() | planted.keys() if healthy.get(k) != planted.get(k))
    assert len(changed) == 1 and changed[0].startswith(f"function {function}("), changed
    assert planted[changed[0]] == healthy[changed[0]].replace(old, new, 1)
    assert sorted(p.name for p in (sut_file.parent / "migrations").iterdir())[-1] == PLANTED_MIGRATION


def test_the_healthy_pipeline_passes_the_scenarios_that_catch_the_planted_bugs(tmp_path: Path) -> None:
    """The control: the same scenarios on the healthy folder are valid, so what the planted runs find is
    the bug, not the scenario or this pipeline."""
    code, report = run_report(SUT_FILE, sorted({b.scenario for b in PLANTED.values()}), tmp_path / "report")
    verdicts = {s["name"]: s["verdict"] for s in report["scenarios"]}
    assert code == 0 and set(verdicts.values()) == {"valid"}, verdicts


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_harness_run_catches_a_bug_planted_in_a_copy(
    server: EmbeddedPostgres, tmp_path: Path, bug: str
) -> None:
    """Exit 1, the scenario invalid, and the check that exists for the bug among the invalid ones, with
    anomalies naming entities."""
    sut_file = planted_copy(server, tmp_path / "copy", bug)
    code, report = run_report(sut_file, [PLANTED[bug].scenario], tmp_path / "report")
    assert code == 1 and report["verdict"] == "invalid", report["scenarios"][0]["checks"]
    (result,) = report["scenarios"]
    broken = {c["name"]: c for c in result["checks"] if c["verdict"] == "invalid"}
    assert PLANTED[bug].check in broken, f"{PLANTED[bug].check} not among {sorted(broken)}"
    anomalies = broken[PLANTED[bug].check]["anomalies"]
    assert anomalies and all(a["entities"] for a in anomalies), anomalies[:2]


# -- the pieces that the scenarios lean on -------------------------------------------------------------------
@pytest.fixture(scope="module")
def decision() -> Iterator[ModuleType]:
    """fase1_executor.py, imported from its folder as the worker process imports it."""
    sys.path.insert(0, str(APP))
    try:
        spec = importlib.util.spec_from_file_location(
            "other_pipeline_fase1_executor", APP / "fase1_executor.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(APP))


def event(event_id: str, event_type: str, causation: str | None = None, **payload: Any) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "causation_id": causation, "payload": payload}


def test_deciding_again_on_the_same_history_appends_nothing(decision: ModuleType) -> None:
    """Idempotence is what lets a decision job be re-run after a crash or a replay: the same source event on
    a history that already holds its consequence asks for nothing more."""
    history = [event("r1", "document.protect.requested", document="d")]
    (protect,) = decision.decide(history, "r1")
    assert protect["type"] == "job.protect.required" and protect["causation_id"] == "r1"
    assert decision.decide([*history, protect], "r1") == []
    done = event("c1", "job.protect.completed", protect["id"], job_id=7, digest="h")
    (tsa,) = decision.decide([*history, protect, done], "c1")
    assert tsa["type"] == "job.tsa.required" and tsa["payload"] == {"digest": "h"}
    assert decision.decide([*history, protect, done, tsa], "c1") == []


def test_a_second_request_or_a_redirected_legacy_job_starts_no_flow(decision: ModuleType) -> None:
    """One flow per document: a second request for it and the outcome of a job the compat guard redirected
    are side paths; a flow already closed takes nothing more."""
    first = event("r1", "document.protect.requested", document="d")
    protect = event("p1", "job.protect.required", "r1", document="d")
    assert (
        decision.decide([first, protect, event("r2", "document.protect.requested", document="d")], "r2") == []
    )
    legacy = event("l1", "job.protect.required", None, document="x", legacy_redirect={"origin": "legacy"})
    outcome = event("c9", "job.protect.completed", "l1", job_id=9, digest="h")
    assert decision.decide([first, protect, legacy, outcome], "c9") == []
    failed = event("f1", "job.protect.failed", "p1", job_id=3, error="boom")
    (closing,) = decision.decide([first, protect, failed], "f1")
    assert closing["type"] == "document.failed" and closing["payload"]["step"] == "protect"
    assert decision.decide([first, protect, failed, closing], "f1") == []


@contextlib.contextmanager
def fake_service(name: str, journal: Path, port: int = 0) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(APP / "fake_service.py"), name, "--port", str(port), "--journal", str(journal)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_retried_job_gets_the_same_token_even_from_a_restarted_service(tmp_path: Path) -> None:
    """crash-after-side-effect's promise without failpoints: a job run twice (its lease expired after the
    call) must not get a second timestamp, also when the service was SIGKILLed in between (tsa-outage); and
    what the harness reads back (/_admin/issued) counts one issuance for it."""
    ask = {"key": "other-pipeline-job-1", "job_id": 1, "digest": "abc"}
    journal = tmp_path / "tsa.jsonl"
    with fake_service("tsa", journal) as url:
        status, first = call(url + "/timestamp", ask)
        assert status == 200 and call(url + "/timestamp", ask) == (200, first)
        assert call(url + "/timestamp", {**ask, "digest": "other"})[0] == 409
        assert call(url + "/_admin/config", {"down": True})[1]["down"] is True
        assert call(url + "/timestamp", ask)[0] == 503 and call(url + "/health")[0] == 503
        port = int(url.rsplit(":", 1)[1])
    with fake_service("tsa", journal, port) as again:
        assert again == url and call(url + "/timestamp", ask) == (200, first)
        (issued,) = call(url + "/_admin/issued")[1]["issued"]
        assert issued["job_id"] == 1 and issued["token"] == first["token"]


NO_SERVICES = ("--tsa", "http://127.0.0.1:1", "--ledger", "http://127.0.0.1:1")


@pytest.mark.parametrize("how", ["sigterm", "supervisor-gone"])
def test_a_worker_stops_cleanly_on_sigterm_and_when_the_harness_is_gone(tmp_path: Path, how: str) -> None:
    """A worker the harness lost track of (the harness SIGKILLed) must not run on against the next run's
    database; one told to stop must stop. Here with no database at all: the worker is in its reconnect
    loop, the state it is in during a partition or a Postgres crash."""
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    log = tmp_path / "orchestrator.log"
    with open(log, "w") as err:
        worker = subprocess.Popen(
            [
                sys.executable,
                str(APP / "orchestrator.py"),
                "--dsn",
                "postgresql://127.0.0.1:1/none",
                *NO_SERVICES,
            ],
            stderr=err,
            env={**os.environ, "HARNESS_SUPERVISOR_PID": str(supervisor.pid)},
        )
    try:
        wait_until(lambda: "database unreachable" in log.read_text(), 20, "the worker in its reconnect loop")
        if how == "sigterm":
            worker.send_signal(signal.SIGTERM)
        else:
            supervisor.kill()
            supervisor.wait(timeout=10)
        assert worker.wait(timeout=15) == 0, log.read_text()
        assert log.read_text().rstrip().endswith("INFO stopped")
    finally:
        for process in (worker, supervisor):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


# -- the nightly suite ----------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_nightly_suite_holds_against_it(tmp_path: Path) -> None:
    """Every scenario valid, or not applicable for the one capability this pipeline does not have
    (failpoints, by point or aimed at a job type): none unknown, none crashing the harness."""
    done = harness("run", "nightly", "--sut", str(SUT_FILE), "--report-dir", str(tmp_path), timeout=1100)
    report = json.loads((tmp_path / "report.json").read_text())
    verdicts = {s["name"]: s["verdict"] for s in report["scenarios"]}
    assert done.returncode == 0 and report["verdict"] == "valid", (verdicts, done.stdout[-3000:])
    skipped = {
        s["name"]: s.get("not_applicable") for s in report["scenarios"] if s["verdict"] == "not-applicable"
    }
    assert set(verdicts.values()) <= {"valid", "not-applicable"}
    assert all(why and all(w.startswith("failpoint") for w in why) for why in skipped.values()), skipped
    assert skipped["crash-after-side-effect"][0].startswith("failpoint:execution.before-result-event:")
    assert len(verdicts) >= 19 and len(skipped) < len(verdicts) // 4 and verdicts["steady-state"] == "valid"
    # every scenario's stored folder judged again: the same verdicts, the same report bytes
    again = harness("check", str(tmp_path))
    assert again.returncode == 0, again.stdout + again.stderr
    for name in ("report.json", "junit.xml", "report.html"):
        assert (tmp_path / "recheck" / name).read_bytes() == (tmp_path / name).read_bytes(), name
