"""The harness catches a broken pipeline: copies of the reference pipeline, each with one planted bug, are
pointed at through a SUT config file, and `harness run` must exit 1 naming the broken check and entities.

Each bug is one extra core migration that redefines a function of the reference schema, run under the
scenario that exposes it (a claim that also takes decision jobs only bites while the decision worker is down:
otherwise it wins every race for them).
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

ROOT = Path(__file__).resolve().parents[2]


def _request_protection_with(planted: str) -> str:
    """request_protection as 0003 defines it, but for a quarter of the entities (ids starting 0-3), which get
    the `planted` statement instead."""
    return f"""
CREATE OR REPLACE FUNCTION request_protection(p_entity_id uuid, p_document text, p_owner_id text DEFAULT NULL,
    p_correlation_id uuid DEFAULT NULL, p_trace_id text DEFAULT NULL, p_event_id uuid DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE v_first jsonb;
BEGIN
    IF left(p_entity_id::text, 1) IN ('0', '1', '2', '3') THEN
        {planted}
    END IF;
    INSERT INTO document_entities (id, owner_id) VALUES (p_entity_id, p_owner_id) ON CONFLICT (id) DO NOTHING;
    SELECT x INTO v_first FROM document_entities e, jsonb_array_elements(e.events) x
     WHERE e.id = p_entity_id AND x ->> 'type' = 'document.protect.requested' LIMIT 1;
    RETURN append_event(p_entity_id, 'document.protect.requested', jsonb_build_object('document', p_document),
                        coalesce(p_correlation_id, (v_first ->> 'correlation_id')::uuid, gen_random_uuid()),
                        coalesce(p_trace_id, v_first ->> 'trace_id', new_trace_id()), NULL, p_event_id);
END $$;
"""


PLANTED = {
    "claim-returns-both-kinds": (
        """
CREATE OR REPLACE FUNCTION claim_orchestrator_jobs(
    p_worker text, p_limit int DEFAULT 1, p_lease_seconds double precision DEFAULT NULL,
    p_now timestamptz DEFAULT NULL)
RETURNS TABLE (job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt int,
    max_attempts int, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT * FROM claim_jobs_of_kind('execution', p_worker, p_limit, p_lease_seconds, p_now)
      UNION ALL SELECT * FROM claim_jobs_of_kind('decision', p_worker, p_limit, p_lease_seconds, p_now) $$;
""",
        "decision-worker-sigkill",
        {"flows_complete", "traces_complete"},
    ),
    "gateway-without-dedupe": (
        """
ALTER TABLE executor_jobs DROP CONSTRAINT executor_jobs_dedupe_key_key;
DROP FUNCTION materialize_job(text, uuid, uuid, jsonb, uuid, text, text);
CREATE FUNCTION materialize_job(
    p_job_type text, p_entity_id uuid, p_source_event_id uuid, p_payload jsonb DEFAULT '{}'::jsonb,
    p_correlation_id uuid DEFAULT NULL, p_trace_id text DEFAULT NULL, p_via text DEFAULT 'direct_call')
RETURNS materialized_job
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE v_kind text; v_result materialized_job;
BEGIN
    v_result.dedupe_key := p_entity_id::text || ':' || p_job_type || ':' || p_source_event_id::text;
    SELECT t.kind INTO v_kind FROM job_types t WHERE t.name = p_job_type;
    PERFORM set_config('pipeline.via_gateway', 'on', true);
    INSERT INTO executor_jobs AS j (job_type, kind, entity_id, dedupe_key, payload, source_event_id,
                                    correlation_id, trace_id, materialized_via)
    VALUES (p_job_type, v_kind, p_entity_id, v_result.dedupe_key, coalesce(p_payload, '{}'), p_source_event_id,
            p_correlation_id, p_trace_id, p_via)
    RETURNING j.id INTO v_result.job_id;
    INSERT INTO executor_job_queue (job_id, kind, state, due_at) SELECT j.id, j.kind, 'ready', j.run_at
      FROM executor_jobs j WHERE j.id = v_result.job_id;
    PERFORM set_config('pipeline.via_gateway', 'off', true);
    PERFORM pg_notify('executor_jobs_' || v_kind, '');
    v_result.created := true;
    RETURN v_result;
END $$;
""",
        "duplicate-events",
        {"no_duplicate_job"},
    ),
    "trigger-skips-events": (
        """
CREATE OR REPLACE FUNCTION materialize_job_sometimes(p_job_type text, p_entity_id uuid, p_source_event_id uuid,
    p_payload jsonb, p_correlation_id uuid, p_trace_id text, p_via text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF left(p_source_event_id::text, 1) IN ('0', '1', '2', '3') THEN
        RETURN;  -- the planted bug: a quarter of the events never reach the gateway
    END IF;
    PERFORM materialize_job(p_job_type, p_entity_id, p_source_event_id, p_payload, p_correlation_id, p_trace_id, p_via);
END $$;
CREATE OR REPLACE FUNCTION on_document_entity_events_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v_old_len int := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE jsonb_array_length(OLD.events) END;
        v_event jsonb; v_type text; v_match text[]; v_job_type text;
BEGIN
    FOR i IN v_old_len .. jsonb_array_length(NEW.events) - 1 LOOP
        v_event := NEW.events -> i; v_type := v_event ->> 'type'; v_job_type := NULL;
        v_match := regexp_match(v_type, '^job\\.([a-z][a-z0-9_]*)\\.(required|completed|failed)$');
        IF v_match IS NOT NULL AND v_match[2] = 'required' THEN v_job_type := v_match[1];
        ELSIF v_match IS NOT NULL AND v_match[1] IN ('protect', 'tsa', 'anchor') THEN v_job_type := 'decide_outcome';
        ELSIF v_type ~ '^document\\.[a-z0-9_]+\\.requested$' THEN v_job_type := 'decide_request';
        END IF;
        IF v_job_type IS NOT NULL THEN
            PERFORM materialize_job_sometimes(v_job_type, NEW.id, (v_event ->> 'id')::uuid, v_event -> 'payload',
                (v_event ->> 'correlation_id')::uuid, v_event ->> 'trace_id', 'trigger');
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
""",
        "steady-state",
        {"no_lost_job"},
    ),
    "request-dropped": (
        _request_protection_with(
            "RETURN gen_random_uuid();  -- the planted bug: a quarter of the requests are acknowledged, then dropped"
        ),
        "steady-state",
        {"flows_complete"},
    ),
    "request-rejected": (
        _request_protection_with(
            "RAISE EXCEPTION 'planted: request refused for %', p_entity_id;  -- the planted bug: a quarter refused"
        ),
        "steady-state",
        {"requests_accepted"},
    ),
    "result-emitted-twice": (
        """
CREATE OR REPLACE FUNCTION complete_jobs(p_job_ids bigint[], p_run_ids bigint[], p_results jsonb[] DEFAULT NULL,
    p_result_event_ids uuid[] DEFAULT NULL, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (job_id bigint, run_id bigint, result_event_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE v_job executor_jobs%ROWTYPE; v_event uuid; v_result jsonb;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_job_ids), 0) LOOP
        v_job := lock_job_for_run(p_job_ids[i], p_run_ids[i]);
        CONTINUE WHEN v_job.id IS NULL;
        v_event := p_result_event_ids[i];
        v_result := coalesce(p_results[i], '{}'::jsonb) || jsonb_build_object('job_id', v_job.id);
        IF v_job.kind = 'execution' THEN
            v_event := result_event_id_for(v_job.id, 'completed');
            PERFORM append_event(v_job.entity_id, 'job.' || v_job.job_type || '.completed', v_result,
                                 v_job.correlation_id, v_job.trace_id, v_job.source_event_id, v_event);
            -- the planted bug: the canonical result goes out a second time, under a fresh id
            PERFORM append_event(v_job.entity_id, 'job.' || v_job.job_type || '.completed', v_result,
                                 v_job.correlation_id, v_job.trace_id, v_job.source_event_id);
        END IF;
        UPDATE executor_job_runs r SET finished_at = clock_timestamp(), outcome = 'succeeded',
               result_event_id = v_event WHERE r.id = p_run_ids[i];
        UPDATE executor_jobs j SET status = 'succeeded', finished_at = clock_timestamp(), lease_owner = NULL,
               lease_expires_at = NULL WHERE j.id = v_job.id;
        job_id := v_job.id; run_id := p_run_ids[i];
        result_event_id := coalesce(v_event, '00000000-0000-0000-0000-000000000000'::uuid);
        RETURN NEXT;
    END LOOP;
END $$;
""",
        "steady-state",
        {"one_result_per_job"},
    ),
}


def planted_sut(tmp_path: Path, bug: str) -> Path:
    reference = reference_sut()
    migrations = tmp_path / "migrations"
    shutil.copytree(reference.migrations, migrations)
    (migrations / "0999_core_planted_bug.sql").write_text(
        f"-- class: core\n-- planted bug: {bug}\n{PLANTED[bug][0]}"
    )
    config = tmp_path / "sut.toml"
    config.write_text(to_toml(reference, migrations))
    return config


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_harness_run_catches_a_planted_bug(tmp_path: Path, bug: str) -> None:
    _sql, scenario, expected_checks = PLANTED[bug]
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
        assert anomalies and all(a["entities"] for a in anomalies), anomalies[:2]
    assert any(name in done.stdout for name in expected_checks)
