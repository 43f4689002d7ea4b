"""The pytest plugin, used the way a team would: its own test file, run by pytest in a separate process."""

from __future__ import annotations

import pytest

USER_TEST = """
import uuid
import psycopg
from harness.wait import wait_until


def test_orchestrator_crash_loses_nothing(pipeline_dsn, pipeline_system, harness_nemesis, harness_check):
    system = pipeline_system()
    with psycopg.connect(pipeline_dsn, autocommit=True) as conn:
        conn.execute("UPDATE pipeline_settings SET value = '1' WHERE key = 'lease_seconds'")
        # slow the orchestrator down, so it holds jobs when it is killed: a kill of an idle worker proves
        # nothing, and the harness's kill waits for work in flight
        conn.execute("SELECT arm_failpoint('orchestrator.after_claim', 'sleep(300)')")
        ids = [str(uuid.uuid4()) for _ in range(5)]
        for entity in ids:
            conn.execute("SELECT request_protection(%s, 'doc')", (entity,))
        fault, ctx = harness_nemesis("kill-worker", role="orchestrator")
        assert fault.took_effect(ctx)[0], fault.took_effect(ctx)
        conn.execute("SELECT disarm_failpoint('orchestrator.after_claim')")
        fault.heal(ctx)
        wait_until(lambda: conn.execute(
            "SELECT count(*) FROM document_entities WHERE events @> '[{\\"type\\": \\"document.anchored\\"}]'"
        ).fetchone()[0] == 5, 30, "flows to complete after the orchestrator came back")
    results = harness_check(["no_lost_job", "one_result_per_job", "traces_complete"])
    assert [r.verdict for r in results] == ["valid"] * 3, results


def test_the_checkers_see_a_planted_loss(pipeline_dsn, pipeline_system, harness_check):
    with psycopg.connect(pipeline_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
        conn.execute("SELECT request_protection(gen_random_uuid(), 'doc')")
    (result,) = harness_check(["no_lost_job"])
    assert result.verdict == "invalid" and result.anomalies[0].kind == "lost"


def test_an_unknown_fault_is_a_usage_error(pipeline_system, harness_nemesis):
    pipeline_system()
    harness_nemesis("meteor")
"""


def test_a_teams_own_chaos_tests_run_with_the_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_chaos=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=600)
    result.assert_outcomes(passed=2, errors=0, failed=1)
    result.stdout.fnmatch_lines(["*unknown fault 'meteor'; known: *kill-worker*"])
