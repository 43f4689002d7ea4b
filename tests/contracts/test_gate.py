"""`harness gate --phase N`: phase 1 against the reference system (Go, evidence written), and criteria that
must say No-Go with their evidence."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from contracts.config import Config
from contracts.finding import Finding, Level
from contracts.result import CheckResult
from harness.cli import main
from harness.gate.canary import CanaryResult
from harness.gate.phases import PHASES, GateFacts, decision_path_clean, no_dead_handler, runbook_drills
from tests.contracts.plant import ROOT, write


def test_phase_1_against_the_reference_system_is_go_and_writes_its_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["gate", "--phase", "1", "--runs", "2", "--source", str(ROOT), "--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    (json_path,) = tmp_path.glob("phase-1-*.json")
    report = json.loads(json_path.read_text())
    assert report["phase"] == 1 and report["go"] is True
    assert all(c["ok"] and c["evidence"] for c in report["criteria"])
    names = [c["name"] for c in report["criteria"]]
    assert "2 consecutive real protect -> tsa -> anchor flows with complete trace" in names
    flows = next(c for c in report["criteria"] if "consecutive" in c["name"])["evidence"]
    assert sum("closed as document.anchored" in line and ": complete" in line for line in flows) == 2
    markdown = json_path.with_suffix(".md").read_text()
    assert markdown.startswith("**GO** — phase 1: 6 of 6 exit criteria met")


def test_phase_1_on_a_dsn_with_the_core_trigger_disabled_is_no_go(
    dsn: str, conn: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    code = main(
        [
            "gate",
            "--phase",
            "1",
            "--runs",
            "1",
            "--flow-timeout",
            "0.5",
            "--postgres",
            dsn,
            "--source",
            str(ROOT),
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 1
    report = json.loads(next(tmp_path.glob("phase-1-*.json")).read_text())
    verdicts = {c["name"]: c for c in report["criteria"]}
    assert report["go"] is False
    trigger = verdicts["core trigger on_document_entity_events_change enabled"]
    assert trigger["ok"] is False and any("tgenabled = 'D'" in line for line in trigger["evidence"])
    flows = verdicts["1 consecutive real protect -> tsa -> anchor flows with complete trace"]
    assert flows["ok"] is False and any("no job materialized" in line for line in flows["evidence"])
    # the symptom (no job) comes with its cause: the rule, the object and the migration that defines it
    assert any(
        line.startswith("cause: PGC001 pipeline/sql/migrations/0003_core_events_and_trigger.sql:")
        and "(trigger on_document_entity_events_change on document_entities)" in line
        for line in flows["evidence"]
    ), flows["evidence"]
    assert next(tmp_path.glob("phase-1-*.md")).read_text().startswith("**NO-GO**")
    capsys.readouterr()


def _facts(dsn: str, source: Path, config: Config | None = None) -> GateFacts:
    return GateFacts(dsn, source, config or Config(), CheckResult(), CanaryResult(0), 3600, True)


def test_dead_handler_and_unhandled_type_are_found(dsn: str, tmp_path: Path) -> None:
    write(
        tmp_path,
        "pipeline/handlers.py",
        """
        class Handlers:
            def table(self):
                return {"protect": self.protect, "tsa": self.tsa, "notarize": self.notarize}
    """,
    )
    criterion = no_dead_handler(_facts(dsn, tmp_path))
    assert criterion.ok is False
    assert (
        criterion.evidence[-1]
        == "handlers no claim returns: notarize; execution types without a handler: anchor"
    )
    assert no_dead_handler(_facts(dsn, ROOT)).ok


def test_absent_drills_are_not_met_with_a_clear_evidence_line(dsn: str, tmp_path: Path) -> None:
    facts = dataclasses.replace(_facts(dsn, tmp_path), runbooks=tmp_path / "runbooks")
    criterion = runbook_drills(facts)
    assert criterion.ok is False
    assert criterion.evidence[0].startswith("runbooks present: none")


def test_bad_runs_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["gate", "--phase", "1", "--runs", "0", "--out-dir", str(tmp_path)]) == 3
    assert "--runs must be at least 1" in capsys.readouterr().err


def _judge(phase: int, name: str) -> Any:
    return next(j for j in PHASES[phase] if j.__name__ == name)


def test_a_failed_criterion_names_the_rules_and_locations_behind_it(dsn: str) -> None:
    """The canary failed; the contracts run holds the reasons. Each violated rule that can explain it is
    listed with its location; a suppressed finding or a rule that cannot explain it is not."""
    result = CheckResult(
        findings=[
            Finding(
                "PGC011",
                Level.ERROR,
                "appending job.anchor.required materialized no job",
                "fix",
                path="pipeline/sql/migrations/0015_core_lean_append.sql",
                line=172,
                object="trigger on_document_entity_events_change on document_entities",
            ),
            Finding("PGC010", Level.ERROR, "replica by default", "fix", object="role pipeline_executor"),
            Finding("PGC101", Level.ERROR, "allowlisted", "fix", path="tests/x.py", line=3, suppressed="why"),
            Finding("PGC102", Level.ERROR, "a claim from the wrong role", "fix", path="app/x.py", line=9),
        ]
    )
    facts = dataclasses.replace(_facts(dsn, ROOT), contracts=result, canary=CanaryResult(2))
    criterion = _judge(1, "canary_flows")(facts)
    assert criterion.ok is False
    causes = [line for line in criterion.evidence if line.startswith("cause:")]
    assert causes == [
        "cause: PGC011 pipeline/sql/migrations/0015_core_lean_append.sql:172 (trigger "
        "on_document_entity_events_change on document_entities): appending job.anchor.required materialized no job",
        "cause: PGC010 role pipeline_executor: replica by default",
    ]
    trigger = next(j for j in PHASES[1] if j(facts).name.startswith("core trigger"))(facts)
    assert trigger.ok is False and sum(line.startswith("cause: PGC01") for line in trigger.evidence) == 2


def test_a_failed_criterion_no_rule_explains_says_so(dsn: str) -> None:
    facts = dataclasses.replace(_facts(dsn, ROOT), canary=CanaryResult(1))
    criterion = _judge(1, "canary_flows")(facts)
    assert criterion.ok is False
    assert criterion.evidence[-1].startswith("cause: no contract rule names one (PGC001, PGC003")


def test_decision_path_through_a_live_view_is_no_go_naming_the_view(dsn: str, conn: Any) -> None:
    conn.execute("CREATE VIEW doc_status AS SELECT id, status FROM user_documents")
    conn.execute("""
        CREATE OR REPLACE FUNCTION claim_initial_decision_jobs(
            p_worker text, p_limit int DEFAULT 1, p_lease_seconds double precision DEFAULT NULL,
            p_now timestamptz DEFAULT NULL)
        RETURNS TABLE (job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb,
                       attempt int, max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text,
                       lease_expires_at timestamptz)
        LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
        AS $$ SELECT c.* FROM claim_jobs_of_kind('decision', p_worker, p_limit, p_lease_seconds, p_now) c
              WHERE NOT EXISTS (SELECT 1 FROM doc_status d WHERE d.id = c.entity_id AND d.status = 'failed') $$
    """)
    criterion = decision_path_clean(_facts(dsn, ROOT))
    assert criterion.ok is False
    assert criterion.evidence[-1] == "cause: live view doc_status reads user_documents (pg_get_viewdef)"


RETIRE_KPI = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p WHERE p.proname LIKE 'event\\_to\\_job\\_gap%' LOOP
        EXECUTE format('ALTER FUNCTION %s RENAME TO %I', r.f, 'retired_' || md5(r.f::text));
    END LOOP;
    FOR r IN SELECT c.relname, c.relkind FROM pg_class c
              WHERE c.relname LIKE 'event\\_to\\_job\\_gap%' AND c.relkind IN ('v', 'm', 'r') LOOP
        EXECUTE format('ALTER %s %I RENAME TO %I', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN
                       'MATERIALIZED VIEW' ELSE 'TABLE' END, r.relname, 'retired_' || r.relname);
    END LOOP;
END $$
"""


def test_a_pipeline_without_its_own_kpi_and_alerts_meets_phase_3_with_the_harness_pack(
    dsn: str, tmp_path: Path
) -> None:
    """Phase 3's KPI and alerts criteria accept the observability pack the harness provides, and only it:
    a pipeline with neither its own nor the pack is No-Go, naming `harness obs install`."""
    import psycopg

    from harness.gate.phases import alerts_present, kpi_present
    from harness.observability import pack
    from harness.sut.adapter import SutSql
    from harness.sut.config import reference_sut

    with psycopg.connect(dsn, autocommit=True) as conn:  # the reference, stripped of its own KPI and alerting
        conn.execute("ALTER TABLE alert_rules RENAME TO retired_alert_rules")
        conn.execute(RETIRE_KPI)
    facts = _facts(dsn, tmp_path)
    assert not kpi_present(facts).ok and not alerts_present(facts).ok
    assert "harness obs install" in alerts_present(facts).evidence[0]
    pack.install(dsn, SutSql.connect(reference_sut(), dsn))
    assert kpi_present(facts).ok and alerts_present(facts).ok
