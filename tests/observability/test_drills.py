"""Runbooks: parsed as data, diagnosing read-only; each drill plants its runbook's fault, detects it and
finds the planted cause; a healthy system yields no finding; an unknown runbook is bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BadInput
from harness.ops import runbook as rb
from harness.ops.drill import DRILLS, run_drill
from harness.sut.system import RunningSystem
from harness.wait import wait_until
from tests.observability.conftest import Conn

Start = Callable[..., RunningSystem]


def test_every_runbook_parses_with_numbered_steps_and_declares_its_drill_cause() -> None:
    assert sorted(DRILLS) == rb.available() == ["enqueued-not-executed", "executed-no-event", "not-enqueued"]
    for name, spec in DRILLS.items():
        book = rb.load(name)
        assert [s.number for s in book.steps] == list(range(1, len(book.steps) + 1))
        assert spec.cause in book.causes
        assert book.alerts, f"{name} lists no alerts"


def test_runbooks_find_nothing_on_a_healthy_system(fast: Conn, system_factory: Start) -> None:
    system_factory(workers={"fase1-executor": 1, "orchestrator": 1, "scheduler": 1, "monitor": 1})
    entities = [str(uuid.uuid4()) for _ in range(10)]
    for entity in entities:
        fast.execute("SELECT request_protection(%s, 'doc')", (entity,))
    wait_until(
        lambda: (
            fast.execute("SELECT count(*) FROM user_documents WHERE status = 'anchored'").fetchone()[0]
            == len(entities)
        ),
        30,
        "the flows to close",
    )
    for name in DRILLS:
        diagnosis = rb.diagnose(fast.info.dsn, rb.load(name))
        assert diagnosis.errors == ()
        assert diagnosis.findings == (), f"{name} blames a healthy system: {diagnosis.findings}"


def test_an_abandoned_lease_is_found_through_the_claim_queue(conn: Conn) -> None:
    """Step 4 of enqueued-not-executed reads leases from executor_job_queue: a job claimed two minutes ago by
    a worker that died, with no claimer of its kind since, is named; a fresh lease is not."""
    entity = str(uuid.uuid4())
    conn.execute("INSERT INTO document_entities (id) VALUES (%s)", (entity,))
    conn.execute("SELECT materialize_job('protect', %s, gen_random_uuid())", (entity,))
    conn.execute("SELECT materialize_job('decide_request', %s, gen_random_uuid())", (entity,))
    conn.execute("UPDATE executor_jobs SET run_at = clock_timestamp() - interval '3 minutes'")
    book = rb.load("enqueued-not-executed")
    [abandoned] = conn.execute(
        "SELECT job_id FROM claim_orchestrator_jobs('dead-worker', 1, 30, clock_timestamp() - interval '2 minutes')"
    ).fetchone()
    # A lease still running, of the other kind: its claim reaps decision leases only.
    conn.execute("SELECT job_id FROM claim_initial_decision_jobs('live-worker', 1)")
    step = next(r for r in rb.diagnose(conn.info.dsn, book).results if r.step.finding == "leases-not-reaped")
    assert step.found and step.error is None
    assert [row[0] for row in step.rows] == [abandoned]


def test_a_diagnosis_cannot_change_the_database(conn: Conn, tmp_path: Path) -> None:
    path = tmp_path / "evil.md"
    path.write_text(
        "# evil\n\n### 1. Delete\n\n```sql finding=x\nDELETE FROM pipeline_settings RETURNING key;\n```\n"
    )
    result = rb.diagnose(conn.info.dsn, rb.load("evil", tmp_path)).results[0]
    assert result.error and not result.found
    assert conn.execute("SELECT count(*) FROM pipeline_settings").fetchone()[0] > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# no steps\n", "no steps; a step is a heading '### N. Title'"),
        ("### 1. A\n\nno query\n", "step 1 (A) has no ```sql block"),
        ("### 2. A\n```sql\nSELECT 1;\n```\n", "steps must be numbered 1..1 in order, found [2]"),
    ],
)
def test_malformed_runbooks_are_bad_input(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.md").write_text(text)
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        rb.load("bad", tmp_path)


def test_unknown_runbook_is_one_clear_error_exit_3() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "drill", "no-such-thing", "--auto"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert (
        "unknown runbook 'no-such-thing': no no-such-thing.md in" in done.stderr
        and "(runbooks: enqueued-not-executed, executed-no-event, not-enqueued)" in done.stderr
    )


@pytest.mark.parametrize("name", ["enqueued-not-executed", "executed-no-event"])
def test_drill_detects_and_finds_the_planted_cause(pg: Any, tmp_path: Path, name: str) -> None:
    lines: list[str] = []
    result, paths = run_drill(
        name, pg.admin_dsn(), auto=True, report_dir=tmp_path / "report", out=lines.append
    )
    assert result.ok, "\n".join(lines)
    assert result.detect_s is not None and result.detect_s > 0
    assert result.cause in result.findings and not result.steady_findings
    assert result.resolve_s is not None
    saved = json.loads(paths[0].read_text())
    assert saved["ok"] and saved["cause_found"] and paths[1].read_text().startswith(f"# Drill {name}: PASSED")


def test_drill_not_enqueued_from_the_command_line(pg: Any, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "drill",
            "not-enqueued",
            "--auto",
            "--postgres",
            pg.admin_dsn(),
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALERT core-trigger-disabled firing" in done.stdout
    assert "=> FINDING core-trigger-disabled" in done.stdout
    assert "drill not-enqueued PASSED: time to detect" in done.stdout
    reports = sorted((tmp_path / "report").glob("not-enqueued-*/report.json"))
    assert len(reports) == 1 and json.loads(reports[0].read_text())["flows_closed_after_heal"] > 0
    assert json.loads(reports[0].read_text())["verdict"] == "valid"  # the checkers judged the recorded run
    assert (reports[0].parent / "history.jsonl").is_file() and (reports[0].parent / "record.json").is_file()
