"""Failpoint specs, migration classification, SUT config and trace judgement: pure, no database."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from harness.checkers.trace import build_trace
from harness.errors import BadInput
from harness.provision.migrations import MigrationPlan, load_migrations
from harness.sut.config import load_sut
from pipeline.failpoint import BadFailpoint, parse_action, parse_spec


def test_failpoint_actions_parse() -> None:
    assert parse_action("2*hang(5)").count == 2 and parse_action("2*hang(5)").arg == "5"
    assert parse_action("crash").verb == "crash" and parse_action("crash").count is None
    assert set(parse_spec("orchestrator.after_claim=crash; fase1.before_commit=raise(x)")) == {
        "orchestrator.after_claim",
        "fase1.before_commit",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("orchestrator.after_claim=explode", "bad failpoint action 'explode'"),
        ("nowhere=crash", "unknown failpoint 'nowhere'"),
        ("orchestrator.after_claim", "expected name=action"),
    ],
)
def test_bad_failpoint_specs_name_the_culprit(spec: str, message: str) -> None:
    with pytest.raises(BadFailpoint, match=message):
        parse_spec(spec)


def test_reference_migrations_are_all_classified(plan: MigrationPlan) -> None:
    migrations = load_migrations(plan.folder)
    assert {m.cls for m in migrations} == {"core", "legacy", "infra"}
    assert [m.version for m in MigrationPlan(plan.folder, until="0007").selected()][-1] == "0007"


def test_unclassified_or_contradictory_migrations_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_schema.sql").write_text("SELECT 1;")
    (tmp_path / "0002_core_x.sql").write_text("-- class: legacy\nSELECT 1;")
    with pytest.raises(BadInput) as caught:
        load_migrations(tmp_path)
    assert "0001_schema.sql: unclassified" in str(caught.value)
    assert "0002_core_x.sql: name says 'core' but header says 'legacy'" in str(caught.value)


def test_plans_of_different_migrations_never_share_a_template_name(
    plan: MigrationPlan, tmp_path: Path
) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(plan.folder, copy)
    assert MigrationPlan(copy).key() == MigrationPlan(plan.folder).key()  # same files, same template
    (copy / "0999_core_planted.sql").write_text("SELECT 1;")
    assert MigrationPlan(copy).key() != MigrationPlan(plan.folder).key()
    assert MigrationPlan(copy, until="0007").key() == MigrationPlan(plan.folder, until="0007").key()
    assert MigrationPlan(plan.folder, skip=("0008",)).key().startswith("all_s0008_")


def test_unknown_migration_version_in_a_plan(plan: MigrationPlan) -> None:
    with pytest.raises(BadInput, match="migration '0999' is not in"):
        MigrationPlan(plan.folder, until="0999").selected()


def test_sut_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    config = tmp_path / "sut.toml"
    config.write_text('name = "ours"\n[workers]\njanitor = ["x"]\norchestrator = "not a list"\n')
    with pytest.raises(BadInput) as caught:
        load_sut(config)
    text = str(caught.value)
    assert "migrations: expected the path" in text and "workers.janitor: unknown role" in text
    assert "workers.orchestrator: expected a list of strings" in text


def _flow_rows() -> tuple[list[dict], list[dict], list[dict]]:
    ids = [str(uuid.uuid4()) for _ in range(4)]
    corr, trace = "c1", "a" * 32
    events = [
        {
            "id": ids[0],
            "type": "document.protect.requested",
            "correlation_id": corr,
            "trace_id": trace,
            "payload": {},
        },
        {
            "id": ids[1],
            "type": "job.protect.required",
            "correlation_id": corr,
            "trace_id": trace,
            "payload": {},
        },
        {
            "id": ids[2],
            "type": "job.protect.completed",
            "correlation_id": corr,
            "trace_id": trace,
            "payload": {"job_id": 2},
        },
        {"id": ids[3], "type": "document.anchored", "correlation_id": corr, "trace_id": trace, "payload": {}},
    ]
    jobs = [
        {
            "id": 1,
            "job_type": "decide_request",
            "kind": "decision",
            "status": "succeeded",
            "source_event_id": ids[0],
            "correlation_id": corr,
            "trace_id": trace,
        },
        {
            "id": 2,
            "job_type": "protect",
            "kind": "execution",
            "status": "succeeded",
            "source_event_id": ids[1],
            "correlation_id": corr,
            "trace_id": trace,
        },
        {
            "id": 3,
            "job_type": "decide_outcome",
            "kind": "decision",
            "status": "succeeded",
            "source_event_id": ids[2],
            "correlation_id": corr,
            "trace_id": trace,
        },
    ]
    runs = [
        {
            "id": n,
            "job_id": n,
            "attempt": 1,
            "worker": "w",
            "outcome": "succeeded",
            "result_event_id": ids[2] if n == 2 else None,
        }
        for n in (1, 2, 3)
    ]
    return events, jobs, runs


def test_a_complete_trace_has_no_problems() -> None:
    trace = build_trace("e", *_flow_rows())
    assert trace.complete and trace.closed_as == "document.anchored" and len(trace.steps) == 4


def test_trace_names_a_missing_job_a_second_result_and_a_foreign_correlation() -> None:
    events, jobs, runs = _flow_rows()
    jobs = [j for j in jobs if j["job_type"] != "decide_outcome"]
    events.insert(3, {**events[2], "id": str(uuid.uuid4())})  # a second canonical result for job 2
    events[1]["correlation_id"] = "other"
    problems = "\n".join(build_trace("e", events, jobs, runs).problems)
    assert "job.protect.completed" in problems and "no job materialized for it" in problems
    assert "job 2 (protect): 2 canonical result events; expected exactly one" in problems
    assert "correlation_id other differs from the flow's c1" in problems
