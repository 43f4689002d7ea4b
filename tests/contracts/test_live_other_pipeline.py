"""The live contracts on a second, independent pipeline (tests/other_pipeline: its own gateway signature,
settings in one typed row, compat warnings in legacy_redirects, 42501 for a strict rejection), driven only by
its contracts config: it passes every contract, each violation planted in it is caught with its rule and
object, and before its probe statements are configured the checks say which key to set instead of reporting
violations that are not there. The live checks prove themselves on a pipeline they were not written for."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contracts.config import Config, load_config
from contracts.finding import Finding, Level
from contracts.handlertable import read_handler_table
from contracts.live import check_live, connect
from contracts.probe import probe_direct_insert
from contracts.result import CheckResult
from harness.cli import main
from harness.gate.canary import CanaryResult
from harness.gate.phases import GateFacts, no_dead_handler
from harness.provision import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan
from tests.contracts.plant import ROOT

Conn = psycopg.Connection[Any]
OTHER = ROOT / "tests" / "other_pipeline"
TRIGGER = "trigger on_document_entity_events_change on document_entities"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(OTHER / "contracts.toml", OTHER)


@pytest.fixture
def other_dsn(pg: EmbeddedPostgres) -> Iterator[str]:
    """A fresh database migrated with the other pipeline's own migrations (all five)."""
    with pg.database(MigrationPlan(OTHER / "migrations")) as fresh:
        yield fresh


@pytest.fixture
def other(other_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(other_dsn, autocommit=True) as connection:
        yield connection


def errors(findings: list[Finding], rule: str | None = None) -> list[Finding]:
    return [f for f in findings if f.level is Level.ERROR and (rule is None or f.rule == rule)]


def replace_in(conn: Conn, function: str, old: str, new: str) -> None:
    """Re-create `function` with `old` (present exactly once in its definition in force) replaced."""
    definition = conn.execute(f"SELECT pg_get_functiondef('{function}'::regproc)").fetchone()[0]
    assert definition.count(old) == 1, definition
    conn.execute(definition.replace(old, new))


def test_the_other_pipeline_passes_every_live_contract_under_its_own_config(
    other_dsn: str, other: Conn, config: Config
) -> None:
    """Every probe ran through the config's statements (the gateway seeded jobs, the mode was read, the
    redirect's warning counted), found nothing, and left nothing behind. The one finding is the note that it
    has no worker role of its own to check."""
    report = check_live(other_dsn, config)
    assert [(f.rule, f.level, f.object) for f in report.findings] == [
        ("PGC008", Level.NOTE, "config worker_roles")
    ]
    assert set(report.evidence) == {f"PGC{i:03d}" for i in range(1, 13)}
    assert (
        "claim_orchestrator_jobs returned: anchor (execution), protect (execution), tsa (execution)"
        in (report.evidence["PGC003"][1])
    )
    assert report.evidence["PGC006"][1].startswith("gateway_mode=compat; ")
    assert "(materialized_via legacy-redirect), compat warnings recorded: 1" in report.evidence["PGC006"][1]
    assert "11 materialized their job through the gateway" in report.evidence["PGC011"][0]
    for table in ("executor_jobs", "document_entities", "legacy_redirects", "job_attempts"):
        assert other.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_without_its_probe_statements_the_checks_name_the_key_to_set_and_report_no_violation(
    other_dsn: str, config: Config
) -> None:
    """The reference's defaults do not fit this schema (a 7-argument gateway, pipeline_settings,
    compat_warnings): each check that needs one says which key to set, as a warning, and what it could
    still judge it judges (the direct insert is redirected, every event makes its job)."""
    bare = dataclasses.replace(
        config, gateway_call=None, gateway_mode_read=None, compat_warnings_read=None, worker_roles=("x",)
    )
    report = check_live(other_dsn, bare)
    assert errors(report.findings) == []
    unfit = {(f.rule, f.object) for f in report.findings if f.level is Level.WARNING and f.rule != "PGC008"}
    assert unfit == {
        ("PGC003", "config gateway_call"),
        ("PGC006", "config gateway_mode_read"),
        ("PGC006", "config compat_warnings_read"),
        ("PGC009", "config gateway_call"),
        ("PGC011", "config compat_warnings_read"),
    }
    gateway = next(f for f in report.findings if f.object == "config gateway_call")
    assert "function enqueue_from_event(" in gateway.message and "does not exist" in gateway.message
    assert "set gateway_call in the contracts config" in gateway.message
    assert "the reference's default" in gateway.message


def test_core_trigger_disabled_is_caught_by_state_and_by_behaviour(
    other_dsn: str, other: Conn, config: Config
) -> None:
    other.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    findings = check_live(other_dsn, config).findings
    (state,) = errors(findings, "PGC001")
    assert state.object == TRIGGER and "tgenabled = 'D'" in state.message
    behaviour = errors(findings, "PGC011")
    assert len(behaviour) == 11 and {f.object for f in behaviour} == {TRIGGER}
    assert all("materialized no job" in f.message for f in behaviour)


def test_core_trigger_that_stops_one_job_type_is_caught_by_behaviour_only(
    other_dsn: str, other: Conn, config: Config
) -> None:
    """Enabled, present, and no longer making anchor jobs: only the probe of PGC011 can see it."""
    replace_in(
        other,
        "job_for_event",
        "THEN split_part(p_type, '.', 2)",
        "THEN nullif(split_part(p_type, '.', 2), 'anchor')",
    )
    findings = check_live(other_dsn, config).findings
    assert errors(findings, "PGC001") == []
    (found,) = errors(findings, "PGC011")
    assert found.object == TRIGGER
    assert (
        found.message.startswith("appending job.anchor.required ") and "materialized no job" in found.message
    )


def test_core_trigger_marking_its_jobs_as_redirects_is_caught_through_redirect_via(
    other_dsn: str, other: Conn, config: Config
) -> None:
    """The config's redirect_via (legacy-redirect) is what tells a compat redirect from the trigger's own
    work on this pipeline; the reference's compat_redirect would see nothing wrong."""
    replace_in(
        other,
        "materialize_appended_events",
        "ELSE 'trigger' END",
        "ELSE 'legacy-redirect' END",
    )
    found = errors(check_live(other_dsn, config).findings, "PGC011")
    assert len(found) == 11 and all("via legacy-redirect" in f.message for f in found)
    as_reference = dataclasses.replace(config, redirect_via="compat_redirect")
    assert errors(check_live(other_dsn, as_reference).findings, "PGC011") == []


def test_claim_returning_both_kinds_is_caught_by_behaviour_and_by_definition(
    other_dsn: str, other: Conn, config: Config
) -> None:
    replace_in(
        other,
        "claim_orchestrator_jobs",
        "WHERE t.kind = 'execution'",
        "WHERE t.kind IN ('execution', 'decision')",
    )
    findings = check_live(other_dsn, config).findings
    (behaviour,) = errors(findings, "PGC003")
    assert behaviour.object == "function claim_orchestrator_jobs"
    assert "returned jobs that are not execution jobs: decide (decision)" in behaviour.message
    (definition,) = errors(findings, "PGC004")
    assert definition.object == "function claim_orchestrator_jobs" and "'decision'" in definition.message


@pytest.fixture
def worker_role(other: Conn) -> Iterator[str]:
    """A login role such as a worker of this pipeline would use: it may run the pipeline's functions and
    read and update the queue, not insert into it. Dropped afterwards (roles are cluster-wide)."""
    name = f"other_orchestrator_{uuid.uuid4().hex[:8]}"
    other.execute(f"CREATE ROLE {name} LOGIN")
    other.execute(f"GRANT SELECT, UPDATE ON executor_jobs TO {name}")
    yield name
    other.execute(f"REVOKE ALL ON executor_jobs FROM {name}")
    other.execute(f"DROP ROLE {name}")


def test_worker_role_granted_direct_insert_is_caught(
    other_dsn: str, other: Conn, config: Config, worker_role: str
) -> None:
    with_roles = dataclasses.replace(config, worker_roles=(worker_role,))
    assert errors(check_live(other_dsn, with_roles).findings) == []
    other.execute(f"GRANT INSERT ON executor_jobs TO {worker_role}")
    (found,) = errors(check_live(other_dsn, with_roles).findings)
    assert (found.rule, found.object) == ("PGC008", f"role {worker_role}")
    assert "its own privileges: table-level INSERT" in found.message


def test_missing_guard_is_caught_and_the_direct_insert_seen_kept(
    other_dsn: str, other: Conn, config: Config
) -> None:
    other.execute("DROP TRIGGER guard_executor_jobs ON executor_jobs")
    found = [f.message for f in errors(check_live(other_dsn, config).findings, "PGC006")]
    assert any("does not exist" in m for m in found)
    assert any("gateway_mode is compat but a direct insert was kept as inserted (1 row)" in m for m in found)


def test_strict_rejection_is_judged_by_the_configured_sqlstate(
    other_dsn: str, other: Conn, config: Config
) -> None:
    """Its guard refuses with 42501, a class-42 code the reference's rule would not take for a rejection:
    strict_reject_sqlstate says what a strict refusal is here, and a refusal with another code is caught."""
    other.execute("UPDATE config SET gateway_mode = 'strict'")
    report = check_live(other_dsn, config)
    assert errors(report.findings) == []
    assert any(
        "gateway_mode=strict" in e and "rejected with SQLSTATE 42501" in e for e in report.evidence["PGC006"]
    )
    elsewhere = dataclasses.replace(config, strict_reject_sqlstate="P0001")
    (found,) = errors(check_live(other_dsn, elsewhere).findings, "PGC006")
    assert "refused for another reason (42501:" in found.message and "SQLSTATE P0001" in found.message


def test_the_gates_strict_probe_switches_the_mode_through_the_config(other_dsn: str, config: Config) -> None:
    """The phase-2 probe: gateway_mode_set switches this pipeline to strict inside the rolled-back
    transaction; with no modes declared, the probe says it is not applicable instead of failing."""
    with connect(other_dsn) as conn:
        probe = probe_direct_insert(conn, "protect", mode="strict", config=config)
        assert probe.mode == "strict" and probe.rejected and probe.error_sqlstate == "42501"
        assert conn.execute("SELECT gateway_mode FROM config").fetchone()[0] == "compat"  # rolled back
        modeless = dataclasses.replace(config, gateway_mode_read="none", gateway_mode_set="none")
        probe = probe_direct_insert(conn, "protect", mode="strict", config=modeless)
    assert not probe.rejected and probe.not_applicable and "gateway_mode_set = none" in probe.not_applicable


def test_a_pipeline_without_modes_or_warnings_is_judged_on_what_it_has(
    other_dsn: str, other: Conn, config: Config
) -> None:
    """Declared absent ("none"): the direct insert must still be redirected or rejected, and what was not
    checked is a note; a guard that lets the insert through is still a violation."""
    modeless = dataclasses.replace(config, gateway_mode_read="none", compat_warnings_read="none")
    findings = check_live(other_dsn, modeless).findings
    assert errors(findings) == []
    assert {(f.rule, f.object) for f in findings if f.level is Level.NOTE} == {
        ("PGC006", "config compat_warnings_read"),
        ("PGC011", "config compat_warnings_read"),
        ("PGC008", "config worker_roles"),
    }
    other.execute("ALTER TABLE executor_jobs DISABLE TRIGGER guard_executor_jobs")
    found = [f.message for f in errors(check_live(other_dsn, modeless).findings, "PGC006")]
    assert any(
        "with no gateway mode known it must be redirected" in m and "kept as inserted" in m for m in found
    )


@pytest.fixture
def without_fix_dsn(pg: EmbeddedPostgres) -> Iterator[str]:
    """The other pipeline as first shipped: its migration set without-dedupe-fix (0005 skipped)."""
    with pg.database(MigrationPlan(OTHER / "migrations", skip=("0005",))) as fresh:
        yield fresh


def test_ambiguous_dedupe_key_is_caught_on_its_gateway_as_first_shipped(
    without_fix_dsn: str, config: Config
) -> None:
    (found,) = errors(check_live(without_fix_dsn, config).findings, "PGC009")
    assert found.object == "function enqueue_from_event"
    assert "SQLSTATE 42702" in found.message and "not applied" in found.message


def test_harness_cli_builds_its_schema_and_every_contract_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`harness contracts check --postgres embedded --sut <its SUT file>`: the CLI builds this pipeline's
    schema (not the reference's), and the static and live contracts hold under its config."""
    code = main(
        [
            "contracts",
            "check",
            "--postgres",
            "embedded",
            "--sut",
            str(OTHER / "harness.toml"),
            "--config",
            str(OTHER / "contracts.toml"),
            "--source",
            str(OTHER),
            "--format",
            "json",
            "--output",
            str(tmp_path / "report.json"),
        ]
    )
    capsys.readouterr()
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 0, report["findings"]
    assert report["ok"] and not [f for f in report["findings"] if f["level"] in ("error", "warning")]
    assert any("enqueue_from_event called twice" in e for e in report["evidence"]["PGC009"])


def test_gateway_that_returns_nothing_for_a_known_event_is_caught(
    other_dsn: str, other: Conn, config: Config
) -> None:
    """A gateway that dedupes but forgets to return the job it already has: PGC009 says so, rather than
    taking the missing id for a second job."""
    replace_in(
        other,
        "enqueue_from_event",
        "SELECT j.id INTO v_id FROM executor_jobs j WHERE j.dedupe_key = v_dedupe_key;",
        "NULL;",
    )
    (found,) = errors(check_live(other_dsn, config).findings, "PGC009")
    assert found.object == "function enqueue_from_event"
    assert "returned no job for the second call for the same source event" in found.message


def test_claim_calls_come_from_the_config_and_an_unfit_one_is_a_warning(
    other_dsn: str, config: Config
) -> None:
    """[claim_calls] is how each claim is called; one that does not fit the database (here, a function of
    the reference's signature that this pipeline lacks) leaves that claim unjudged with a warning, and the
    other claim is still judged."""
    unfit = dataclasses.replace(
        config,
        claim_calls={
            "claim_orchestrator_jobs": "SELECT * FROM claim_orchestrator_jobs(%(worker)s, %(limit)s, 30.0, now())"
        },
    )
    report = check_live(other_dsn, unfit)
    found = [f for f in report.findings if f.rule == "PGC003"]
    assert [(f.level, f.object) for f in found] == [
        (Level.WARNING, "config claim_calls.claim_orchestrator_jobs")
    ]
    assert "SQLSTATE 42883" in found[0].message and "from the contracts config" in found[0].message
    assert "claim_initial_decision_jobs returned: decide (decision)" in report.evidence["PGC003"][0]


def test_its_handler_table_is_read_from_a_module_level_dict(other_dsn: str, config: Config) -> None:
    """Its orchestrator's handlers are `HANDLERS = {...}` at module level, not a function returning the
    dict: the phase-4 criterion reads it and finds every execution type handled; a handler removed from it
    is caught as an unhandled type."""
    table = read_handler_table(OTHER, config.handlers_file, config.handlers_function)
    assert (table.path, table.job_types) == ("app/orchestrator.py", ("protect", "tsa", "anchor"))
    facts = GateFacts(other_dsn, OTHER, config, CheckResult(), CanaryResult(0), 3600, True)
    assert no_dead_handler(facts).ok
    with psycopg.connect(other_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO job_types (name, kind) VALUES ('notarize', 'execution')")
    criterion = no_dead_handler(facts)
    assert not criterion.ok and "execution types without a handler: notarize" in criterion.evidence[-1]
