"""The harness catches a broken pipeline: copies of the reference pipeline, each with one planted bug, are
pointed at through a SUT config file, and `harness run` must exit 1 naming the broken check and entities.

Each bug is one targeted change to the CURRENT definition of one function (`planting.plant`, from
pipeline/sql/schema.sql), written as one extra core migration, so a copy differs from the reference in its
bug and nothing else (a fast test below builds each copy and checks exactly that). Each runs under the
scenario that exposes it (a claim that also takes decision jobs only bites while the decision worker is down:
otherwise it wins every race for them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from harness.provision import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan
from harness.scenario import SCENARIO_DIR
from harness.sut.config import reference_sut, to_toml
from tests.quality.planting import current_definition, plant, planted_migrations
from tests.schema_snapshot import SCHEMA, differing, objects, render

# A quarter of the entities (ids starting 0-3) take the planted path in request_protection.
_QUARTER = "    IF left(p_entity_id::text, 1) IN ('0', '1', '2', '3') THEN\n        {}\n    END IF;\n"
_STORE = "    INSERT INTO document_entities (id, owner_id)"


class Bug(NamedTuple):
    function: str
    old: str  # the text of the current definition to change (it occurs there exactly once)
    new: str  # what it becomes
    scenario: str
    checks: set[str]  # the checks `harness run` must find invalid
    kinds: set[str] = set()  # anomaly kinds among theirs that name the bug's family (when one check has many)
    drain: str | None = None  # how the drain must end (stalled: the run did not wait out its timeout)


PLANTED = {
    "claim-returns-both-kinds": Bug(
        "claim_orchestrator_jobs",
        "claim_jobs_of_kind('execution', p_worker, p_limit, p_lease_seconds, p_now)",
        "claim_jobs_of_kind('execution', p_worker, p_limit, p_lease_seconds, p_now)\n"
        "      UNION ALL SELECT * FROM claim_jobs_of_kind('decision', p_worker, p_limit, p_lease_seconds, p_now)\n"
        "      -- the planted bug: the orchestrator claims decision jobs too\n",
        "decision-worker-sigkill",
        {"flows_complete", "traces_complete"},
    ),
    "gateway-without-dedupe": Bug(
        "materialize_job",
        "v_result.dedupe_key := p_entity_id::text || ':' || p_job_type || ':' || p_source_event_id::text;",
        "v_result.dedupe_key := gen_random_uuid()::text;  -- the planted bug: a key no second call shares",
        "duplicate-events",
        {"no_duplicate_job"},
    ),
    "gateway-conflicts-on-duplicates": Bug(
        "materialize_job",
        "        ON CONFLICT ON CONSTRAINT executor_jobs_dedupe_key_key DO NOTHING\n",
        "        -- the planted bug: no ON CONFLICT, so a duplicate hits the dedupe key's unique constraint\n",
        "duplicate-events",
        {"no_duplicate_job"},
        {"duplicate-conflict"},
    ),
    "trigger-skips-events": Bug(
        "on_document_entity_events_change",
        "IF v_job_type IS NOT NULL THEN",
        "IF v_job_type IS NOT NULL AND left(v_event ->> 'id', 1) NOT IN ('0', '1', '2', '3') THEN\n"
        "            -- the planted bug: a quarter of the events never reach the gateway",
        "steady-state",
        {"no_lost_job"},
    ),
    "request-dropped": Bug(
        "request_protection",
        _STORE,
        _QUARTER.format("RETURN gen_random_uuid();  -- the planted bug: acknowledged, then dropped") + _STORE,
        "steady-state",
        {"flows_complete"},
    ),
    "request-rejected": Bug(
        "request_protection",
        _STORE,
        _QUARTER.format("RAISE EXCEPTION 'planted: request refused for %', p_entity_id;  -- the planted bug")
        + _STORE,
        "steady-state",
        {"requests_accepted"},
    ),
    "result-emitted-twice": Bug(
        "complete_jobs",
        "SET events = e.events || n.events, updated_at = v_now",
        "SET events = e.events || n.events\n"
        "                  -- the planted bug: each canonical result goes out a second time, under a fresh id\n"
        "                  || (SELECT jsonb_agg(x || jsonb_build_object('id', gen_random_uuid()))\n"
        "                        FROM jsonb_array_elements(n.events) x),\n"
        "               updated_at = v_now",
        "steady-state",
        {"one_result_per_job"},
    ),
    # The families of bugs the nightly suite used to miss (detection power): races between workers of a role,
    # flows stuck on expired leases, transient faults turned into failed documents, alerts that ignore `for`,
    # a KPI blind to the loss it exists to show.
    "claim-without-lock": Bug(
        "claim_jobs_of_kind",
        "         FOR UPDATE OF q, j SKIP LOCKED\n",
        "         -- the planted bug: no FOR UPDATE ... SKIP LOCKED, two workers can claim one job\n",
        "concurrent-workers",
        {"exclusive_runs"},
        {"overlapping-runs"},
    ),
    "leases-never-reaped": Bug(
        "claim_jobs_of_kind",
        "        PERFORM reap_expired_leases(p_kind, v_now);",
        "        NULL;  -- the planted bug: an expired lease is never taken back",
        "orchestrator-sigkill-mid-call",
        {"no_stuck_job"},
        {"stuck"},
        "stalled",
    ),
    "retry-budget-too-small": Bug(
        "fail_job",
        "    IF p_retryable AND v_job.attempts < v_job.max_attempts THEN",
        "    IF p_retryable AND v_job.attempts < least(v_job.max_attempts, 2) THEN\n"
        "        -- the planted bug: two attempts, whatever max_attempts says: a short outage kills the job",
        "tsa-outage",
        {"flows_complete"},
        {"unexpected-outcome"},
    ),
    "alerts-ignore-for": Bug(
        "evaluate_alerts",
        "            v_to := CASE WHEN s.for_s <= 0 THEN 'firing' ELSE 'pending' END;",
        "            v_to := 'firing';  -- the planted bug: fires on the first evaluation that sees the condition",
        "alert-blip",
        {"alerts_quiet"},
        {"unexpected-alert"},
    ),
    "alerts-ignore-for-early": Bug(
        "evaluate_alerts",
        "            v_to := CASE WHEN s.for_s <= 0 THEN 'firing' ELSE 'pending' END;",
        "            v_to := 'firing';  -- the planted bug: fires on the first evaluation that sees the condition",
        "core-trigger-disabled",
        {"alerts_expected"},
        {"early-alert"},
    ),
    "kpi-blind": Bug(
        "event_to_job_gaps",
        "      LEFT JOIN executor_jobs j",
        "      JOIN executor_jobs j  -- the planted bug: an event with no job drops out of the KPI",
        "kpi-sees-missing-jobs",
        {"kpi_agrees"},
        {"kpi-blind"},
    ),
}


def planted_folder(tmp_path: Path, bug: str) -> Path:
    function, old, new, *_ = PLANTED[bug]
    return planted_migrations(tmp_path / "migrations", plant(function, old, new), bug)


def planted_sut(tmp_path: Path, bug: str) -> Path:
    """A SUT config pointing at a copy of the reference migrations with `bug` planted."""
    config = tmp_path / "sut.toml"
    config.write_text(to_toml(reference_sut(), planted_folder(tmp_path, bug)))
    return config


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_a_planted_copy_differs_from_the_reference_by_its_one_change(
    pg: EmbeddedPostgres, tmp_path: Path, bug: str
) -> None:
    """A copy that differed in more than its bug would prove nothing about the bug; one whose change did not
    take (an overload created beside the function, say) would prove nothing at all. So each copy is migrated
    and its whole catalogue compared with schema.sql: one function differs, by exactly the planted text."""
    function, old, new, *_ = PLANTED[bug]
    with pg.database(MigrationPlan(planted_folder(tmp_path, bug))) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            built = render(conn)
        live = current_definition(function, dsn=dsn)
    committed = SCHEMA.read_text(encoding="utf-8")
    (changed,) = differing(committed, built)
    key = changed.removesuffix(" (changed)")
    assert changed.endswith(" (changed)") and key.startswith(f"function {function}("), changed
    assert objects(built)[key] == objects(committed)[key].replace(old, new, 1)
    assert live == current_definition(function).replace(old, new, 1)


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_harness_run_catches_a_planted_bug(tmp_path: Path, bug: str) -> None:
    scenario, expected_checks, kinds = PLANTED[bug].scenario, PLANTED[bug].checks, PLANTED[bug].kinds
    config = planted_sut(tmp_path, bug)
    report_dir = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(SCENARIO_DIR / f"{scenario}.yaml"),
            "--sut",
            str(config),
            "--report-dir",
            str(report_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((report_dir / "report.json").read_text())
    assert report["verdict"] == "invalid"
    (result,) = report["scenarios"]
    broken = {c["name"]: c for c in result["checks"] if c["verdict"] == "invalid"}
    assert expected_checks <= set(broken), f"expected {expected_checks} among {set(broken)}"
    for name in expected_checks:
        anomalies = broken[name]["anomalies"]
        alerting = name.startswith("alerts_")  # an alert is about the system: its anomalies name no entity
        assert anomalies and (alerting or all(a["entities"] for a in anomalies)), anomalies[:2]
    found_kinds = {a["kind"] for name in expected_checks for a in broken[name]["anomalies"]}
    assert kinds <= found_kinds, f"expected anomaly kinds {kinds} among {found_kinds}"
    if PLANTED[bug].drain is not None:
        (drained,) = [c for c in result["checks"] if c["name"] == "drained"]
        assert drained["counts"]["drain_ended"] == PLANTED[bug].drain, drained
    assert any(name in done.stdout for name in expected_checks)
