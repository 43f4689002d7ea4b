"""The static contracts (PGC101-PGC107) on this repository and on planted violations in temp trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.config import Config
from contracts.errors import ContractInputError
from contracts.finding import Level
from contracts.migrations import classify
from harness.errors import BadInput
from harness.provision.migrations import load_migrations
from tests.contracts.plant import ROOT, line_of, static, violations, write

DIRECT = "cur.execute(\"insert into executor_jobs(job_type) values ('protect')\")  # planted"


def test_this_repository_passes_every_static_contract() -> None:
    result = static(ROOT)
    assert result.ok, [f"{f.where}: {f.rule} {f.message}" for f in result.violations]
    assert result.files > 20 and result.statements > 100
    historic = [f for f in result.findings if f.rule == "PGC101" and f.level is Level.NOTE]
    assert [(f.path, f.line) for f in historic] == [
        ("pipeline/sql/migrations/0007_legacy_gateway_v0.sql", 44)
    ]
    assert "0009_core_gateway_guard.sql" in historic[0].message


@pytest.mark.parametrize(
    "code",
    [
        DIRECT,
        "cur.execute(f\"INSERT INTO executor_jobs (job_type, entity_id) VALUES ('{kind}', %s)\", (e,))  # planted",
        "conn.execute('''\n    WITH j AS (INSERT INTO public.executor_jobs (job_type) VALUES (%(t)s) RETURNING id)\n"
        "    SELECT id FROM j''')  # planted",
        'cur.execute("COPY executor_jobs (job_type) FROM STDIN")  # planted',
        'cur.execute("MERGE INTO executor_jobs j USING s ON s.id = j.id "\n'
        '            "WHEN NOT MATCHED THEN INSERT (job_type) VALUES (s.t)")  # planted',
        'cur.execute("INSERT INTO executor_jobs (" + ", ".join(cols) + ") VALUES (%s)")  # planted',
    ],
    ids=["plain", "f-string", "cte-multiline", "copy", "merge", "concatenated-fragment"],
)
def test_direct_insert_in_a_python_string_is_found_at_its_line(tmp_path: Path, code: str) -> None:
    path = write(tmp_path, "app/jobs.py", f"import os\n\n\ndef enqueue(cur, e, kind, cols):\n    {code}\n")
    found = violations(static(tmp_path), "PGC101")
    assert [(f.path, f.level) for f in found] == [("app/jobs.py", Level.ERROR)]
    expected = line_of(path, "INSERT INTO public") if "WITH j" in code else line_of(path, "executor_jobs")
    assert found[0].line == expected
    assert "outside the gateway" in found[0].message and "append_event" in found[0].fix


def test_strings_that_only_mention_the_table_are_not_findings(tmp_path: Path) -> None:
    write(
        tmp_path,
        "app/doc.py",
        '''
        """insert into executor_jobs is forbidden; see contracts/README.md."""
        MESSAGE = "direct insert into executor_jobs rejected"
        QUERY = "SELECT count(*) FROM executor_jobs WHERE status = 'dead'"
    ''',
    )
    assert violations(static(tmp_path), "PGC101") == []


def test_direct_insert_inside_a_plpgsql_body_is_found_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "db/migrations/0001_core_enqueue.sql",
        """
        -- class: core
        CREATE FUNCTION enqueue_protect(p_entity uuid)
        RETURNS void
        LANGUAGE plpgsql
        AS $$
        DECLARE
            v_n int;
        BEGIN
            v_n := 1;
            INSERT INTO executor_jobs (job_type, entity_id)  -- planted
            VALUES ('protect', p_entity);
            EXECUTE 'INSERT INTO executor_jobs (job_type) VALUES (''tsa'')';  -- dynamic
        END
        $$;
    """,
    )
    found = violations(static(tmp_path), "PGC101")
    assert [(f.path, f.line) for f in found] == [
        ("db/migrations/0001_core_enqueue.sql", line_of(path, "-- planted")),
        ("db/migrations/0001_core_enqueue.sql", line_of(path, "-- dynamic")),
    ]
    assert "in function enqueue_protect" in found[0].message


def test_inserts_inside_the_gateway_definition_are_allowed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "db/migrations/0001_core_gateway.sql",
        """
        CREATE FUNCTION materialize_job(p_type text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO executor_jobs (job_type) VALUES (p_type);
        END $$;
        CREATE FUNCTION other() RETURNS void LANGUAGE sql AS $$ INSERT INTO executor_jobs (job_type) VALUES ('x') $$;
    """,
    )
    found = violations(static(tmp_path), "PGC101")
    assert [f.message for f in found] == [
        "INSERT into executor_jobs in function other, outside the gateway (materialize_job)"
    ]


def test_legacy_function_removed_later_is_historic_and_one_never_removed_is_a_violation(
    tmp_path: Path,
) -> None:
    body = (
        "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
        "    INSERT INTO executor_jobs (job_type) VALUES ('protect');\n    RETURN NULL;\nEND $$;\n"
    )
    write(
        tmp_path,
        "db/migrations/0001_legacy_old_path.sql",
        body.format(name="old_path") + body.format(name="kept"),
    )
    write(tmp_path, "db/migrations/0002_core_cleanup.sql", "DROP FUNCTION old_path();\n")
    result = static(tmp_path)
    by_level = {f.level: f for f in result.findings if f.rule == "PGC101"}
    assert set(by_level) == {Level.NOTE, Level.ERROR}
    assert (
        "old_path" in by_level[Level.NOTE].message and "0002_core_cleanup.sql" in by_level[Level.NOTE].message
    )
    assert "kept" in by_level[Level.ERROR].message


def test_claim_called_from_the_wrong_role_is_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipeline/worker/scheduler.py",
        """
        def step(conn):
            return conn.execute("SELECT * FROM claim_orchestrator_jobs(%s, 10)", ("s",)).fetchall()
    """,
    )
    write(
        tmp_path,
        "pipeline/sql/queries/orchestrator.sql",
        "-- name: claim\nSELECT * FROM claim_orchestrator_jobs(%(worker)s, %(limit)s)\n",
    )
    write(
        tmp_path,
        "pipeline/sql/queries/decision.sql",
        "-- name: claim\nSELECT * FROM claim_orchestrator_jobs(%(worker)s, %(limit)s)\n",
    )
    found = violations(static(tmp_path), "PGC102")
    assert [(f.path, f.line) for f in found] == [
        ("pipeline/sql/queries/decision.sql", 2),
        ("pipeline/worker/scheduler.py", line_of(path, "claim_orchestrator_jobs")),
    ]
    assert "role fase1-executor" in found[0].message and "only orchestrator" in found[0].message
    assert "role scheduler" in found[1].message


def test_roles_come_from_the_config(tmp_path: Path) -> None:
    write(tmp_path, "svc/executor.py", 'Q = "SELECT * FROM claim_orchestrator_jobs(%s, 1)"\n')
    default = violations(static(tmp_path), "PGC102")
    assert [f.path for f in default] == ["svc/executor.py"]
    config = Config(roles={"orchestrator": ("svc/executor.py",), "fase1-executor": ()})
    assert violations(static(tmp_path, config), "PGC102") == []


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("0010_add_column.sql", "ALTER TABLE executor_jobs ADD COLUMN x int;\n", "neither its name nor"),
        (
            "0010_core_add_column.sql",
            "-- class: legacy\nSELECT 1;\n",
            "name says 'core' but its header says 'legacy'",
        ),
        ("0010_add_column.sql", "-- Adds x.\n-- class: hotfix\nSELECT 1;\n", "header names 'hotfix'"),
        ("add_column.sql", "-- class: core\nSELECT 1;\n", "does not look like NNNN_"),
    ],
)
def test_unclassified_migration_is_found(tmp_path: Path, name: str, text: str, problem: str) -> None:
    write(tmp_path, "pipeline/sql/migrations/0001_core_base.sql", "SELECT 1;\n")
    path = write(tmp_path, f"pipeline/sql/migrations/{name}", text)
    found = violations(static(tmp_path), "PGC103")
    assert [(f.path, f.line) for f in found] == [
        (f"pipeline/sql/migrations/{name}", line_of(path, "class:") if "class:" in text else 1)
    ]
    assert problem in found[0].message


def test_classification_agrees_with_the_harness_migration_runner(tmp_path: Path) -> None:
    for migration in load_migrations(ROOT / "pipeline/sql/migrations"):
        assert classify(migration.path.name, migration.sql()).cls == migration.cls
    for name, text in [("0001_x.sql", "SELECT 1;"), ("0001_core_x.sql", "-- class: legacy\n")]:
        folder = tmp_path / name
        write(folder, name, text)
        with pytest.raises(BadInput):
            load_migrations(folder)
        assert classify(name, text).cls is None


def test_decision_path_read_of_the_projection_is_found_directly_and_through_a_function(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "db/migrations/0001_core_helpers.sql",
        """
        CREATE FUNCTION doc_status(p uuid) RETURNS text LANGUAGE sql AS $$
            SELECT status FROM user_documents WHERE id = p
        $$;
        CREATE FUNCTION decide_helper(p uuid) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            RETURN doc_status(p);
        END $$;
    """,
    )
    path = write(
        tmp_path,
        "pipeline/sql/queries/decision.sql",
        """
        -- name: status
        SELECT u.status FROM document_entities e JOIN user_documents u ON u.id = e.id WHERE e.id = %(id)s

        -- name: helper
        SELECT decide_helper(%(id)s)
    """,
    )
    write(tmp_path, "pipeline/worker/orchestrator.py", 'Q = "SELECT status FROM user_documents"\n')
    found = violations(static(tmp_path), "PGC104")
    assert [(f.path, f.line) for f in found] == [
        ("pipeline/sql/queries/decision.sql", line_of(path, "JOIN user_documents")),
        ("pipeline/sql/queries/decision.sql", line_of(path, "decide_helper(")),
    ]
    assert "decide_helper -> doc_status" in found[1].message
    assert "db/migrations/0001_core_helpers.sql:2" in found[1].message


def test_disabling_the_core_trigger_or_the_guard_in_code_is_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ops/maintenance.sql",
        """
        ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change;
        ALTER TABLE executor_jobs DISABLE TRIGGER ALL;
        SET session_replication_role = replica;
        ALTER TABLE user_documents DISABLE TRIGGER some_projection_helper;
    """,
    )
    found = violations(static(tmp_path), "PGC105")
    assert [f.line for f in found] == [1, 2, line_of(path, "session_replication_role")]


def test_js_and_ts_string_literals_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "web/api.ts",
        """
        // insert into executor_jobs in a comment is not code
        export async function enqueue(db: Db, type: string) {
          await db.query(`INSERT INTO executor_jobs (job_type) VALUES (${type})`);
        }
    """,
    )
    found = violations(static(tmp_path), "PGC101")
    assert [(f.path, f.line) for f in found] == [("web/api.ts", line_of(path, "db.query"))]


def test_unparsable_sql_file_is_a_warning_not_a_violation(tmp_path: Path) -> None:
    write(tmp_path, "db/broken.sql", "SELEC 1;\n")
    result = static(tmp_path)
    assert result.ok
    assert [(f.rule, f.level, f.line) for f in result.findings] == [("PGC106", Level.WARNING, 1)]


def test_psycopg_binary_and_text_placeholders_parse(tmp_path: Path) -> None:
    write(
        tmp_path,
        "app/sql/queries.sql",
        "-- name: complete\nSELECT job_id FROM complete_jobs(%(ids)b::bigint[], %(runs)t::bigint[], %s)\n",
    )
    result = static(tmp_path)
    assert [f.rule for f in result.findings] == [], [f.message for f in result.findings]


def test_allowlist_suppresses_with_its_reason_and_reports_stale_entries(tmp_path: Path) -> None:
    write(tmp_path, "app/jobs.py", DIRECT + "\n")
    write(
        tmp_path,
        "contracts/allowlist.toml",
        """
        [[allow]]
        rule = "PGC101"
        path = "app/*.py"
        reason = "backfill tool, run once under review"

        [[allow]]
        rule = "PGC102"
        path = "nothing/**"
        reason = "stale"
    """,
    )
    result = static(tmp_path)
    assert result.ok
    suppressed = [f for f in result.findings if f.rule == "PGC101"]
    assert [(f.suppressed, f.line) for f in suppressed] == [("backfill tool, run once under review", 1)]
    stale = [f for f in result.findings if f.rule == "PGC107"]
    assert [(f.path, f.line, f.level) for f in stale] == [("contracts/allowlist.toml", 6, Level.NOTE)]


def test_allowlist_entry_without_reason_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, "contracts/allowlist.toml", '[[allow]]\nrule = "PGC101"\npath = "x/**"\n')
    with pytest.raises(ContractInputError, match=r"allow\[0\]\.reason: missing"):
        static(tmp_path)
