"""Evasions of the static contracts, one family at a time: each is planted in a throw-away tree and must be
caught with its rule id at its line, and the healthy variant beside it must not be (a check that flags
everything would pass the first half). The families are the ones a first round of evasions got through:
SQL built at run time, a view over the projection, SQL in files that are not .sql/.py/.js, a `legacy`
migration that rewrites the core, and replica mode set as a default."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.finding import Level
from tests.contracts.plant import line_of, notebook, static, where, write

# -- SQL built at run time ---------------------------------------------------------------------------------

PLPGSQL_DYNAMIC = {
    "concatenation": "EXECUTE 'INSERT INTO ' || 'executor' || '_jobs (job_type) VALUES ($1)' USING p;",
    "variable": "EXECUTE 'INSERT INTO ' || v_queue || ' (job_type) VALUES ($1)' USING p;",
    "format-I-constant": "EXECUTE format('INSERT INTO %I (job_type) VALUES ($1)', 'executor_jobs') USING p;",
    "format-I-variable": "EXECUTE format('INSERT INTO %I (job_type) VALUES (%L)', v_queue, p);",
    "format-positional": "EXECUTE format('INSERT INTO %1$I (job_type) VALUES (%2$L)', v_queue, p);",
    "quote_ident": "EXECUTE 'INSERT INTO ' || quote_ident(v_queue) || ' (job_type) VALUES ($1)' USING p;",
    "assigned-later": "v_sql := 'INSERT INTO ' || v_queue; EXECUTE v_sql || ' (job_type) VALUES ($1)' USING p;",
    "copy": "EXECUTE format('COPY %I (job_type) FROM STDIN', v_queue);",
}


@pytest.mark.parametrize("statement", list(PLPGSQL_DYNAMIC.values()), ids=list(PLPGSQL_DYNAMIC))
def test_plpgsql_execute_of_a_built_string_into_the_queue_is_found_at_its_line(
    tmp_path: Path, statement: str
) -> None:
    path = write(
        tmp_path,
        "db/migrations/0001_core_enqueue.sql",
        f"""
        CREATE FUNCTION enqueue(p text) RETURNS void LANGUAGE plpgsql AS $$
        DECLARE
            v_queue text := 'executor_jobs';
            v_sql   text;
        BEGIN
            {statement}  -- planted
        END $$;
    """,
    )
    result = static(tmp_path)
    assert where(result, "PGC101") == [("db/migrations/0001_core_enqueue.sql", line_of(path, "-- planted"))]
    assert "in function enqueue" in next(f for f in result.findings if f.rule == "PGC101").message


def test_execute_with_a_target_only_known_at_run_time_is_a_warning_and_other_tables_are_not(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "db/migrations/0001_core_tools.sql",
        """
        CREATE FUNCTION copy_into(p_table text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format('INSERT INTO %I (job_type) VALUES (1)', p_table);  -- unknown target
            EXECUTE format('INSERT INTO %I (x) VALUES (1)', 'audit_log');     -- known, not the queue
            EXECUTE format('CREATE ROLE %I NOLOGIN', p_table);                -- not a write
        END $$;
    """,
    )
    result = static(tmp_path)
    assert result.ok and where(result, "PGC101") == []
    assert where(result, "PGC109", "warning") == [
        ("db/migrations/0001_core_tools.sql", line_of(path, "unknown target"))
    ]


PYTHON_DYNAMIC = {
    "psycopg-identifier": (
        "from psycopg import sql\n",
        'cur.execute(sql.SQL("INSERT INTO {} (job_type) VALUES (%s)").format(sql.Identifier("executor_jobs")), (t,))',
    ),
    "psycopg-identifier-constant": (
        'from psycopg import sql\nQUEUE = "executor_jobs"\n',
        'cur.execute(sql.SQL("INSERT INTO {q} (job_type) VALUES (%s)").format(q=sql.Identifier(QUEUE)), (t,))',
    ),
    "f-string-constant": (
        'QUEUE = "executor_jobs"\n',
        'cur.execute(f"INSERT INTO {QUEUE} (job_type) VALUES (%s)", (t,))',
    ),
    "f-string-class-attribute": (
        'class Names:\n    QUEUE = "executor" + "_jobs"\n',
        'cur.execute(f"INSERT INTO {Names.QUEUE} (job_type) VALUES (%s)", (t,))',
    ),
    "str-format": (
        'TABLE = "executor_jobs"\n',
        'cur.execute("INSERT INTO {} (job_type) VALUES (%s)".format(TABLE), (t,))',
    ),
    "percent-format": (
        'TABLE = "executor_jobs"\n',
        "cur.execute(\"INSERT INTO %s (job_type) VALUES ('protect')\" % TABLE)",
    ),
    "concatenation": (
        'TABLE = "executor_jobs"\n',
        'cur.execute("INSERT INTO " + TABLE + " (job_type) VALUES (%s)", (t,))',
    ),
    "local-variable": (
        "",
        'q = "executor_jobs"\n    cur.execute(f"INSERT INTO {q} (job_type) VALUES (%s)", (t,))',
    ),
}


@pytest.mark.parametrize(("prelude", "call"), list(PYTHON_DYNAMIC.values()), ids=list(PYTHON_DYNAMIC))
def test_python_sql_built_from_constants_is_found_at_its_line(
    tmp_path: Path, prelude: str, call: str
) -> None:
    path = write(tmp_path, "app/jobs.py", f"{prelude}\n\ndef enqueue(cur, t):\n    {call}  # planted\n")
    assert where(static(tmp_path), "PGC101") == [("app/jobs.py", line_of(path, "# planted"))]


def test_a_table_name_imported_from_another_module_is_followed(tmp_path: Path) -> None:
    write(tmp_path, "app/__init__.py", "")
    write(tmp_path, "app/names.py", 'QUEUE = "executor_jobs"\nOTHER = "audit_log"\n')
    path = write(
        tmp_path,
        "app/jobs.py",
        """
        from app import names
        from app.names import OTHER, QUEUE


        def enqueue(cur, t):
            cur.execute(f"INSERT INTO {QUEUE} (job_type) VALUES (%s)", (t,))  # planted
            cur.execute(f"INSERT INTO {names.QUEUE} (job_type) VALUES (%s)", (t,))  # module attribute
            cur.execute(f"INSERT INTO {OTHER} (x) VALUES (%s)", (t,))  # another table
    """,
    )
    assert where(static(tmp_path), "PGC101") == [
        ("app/jobs.py", line_of(path, "# planted")),
        ("app/jobs.py", line_of(path, "# module attribute")),
    ]


def test_a_name_that_is_not_the_queue_in_this_scope_is_not_a_finding(tmp_path: Path) -> None:
    """The value of a name is taken from the function that uses it first: another function's local of the
    same name, holding the queue's name, must not make this insert one into the queue."""
    write(
        tmp_path,
        "app/tables.py",
        """
        def count(cur):
            table = "executor_jobs"
            return cur.execute(f"SELECT count(*) FROM {table}").fetchone()


        def audit(cur, row):
            table = "audit_log"
            cur.execute(f"INSERT INTO {table} (row) VALUES (%s)", (row,))
    """,
    )
    result = static(tmp_path)
    assert result.ok and where(result, "PGC101") == []


def test_js_template_and_concatenation_from_a_constant_are_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "web/api.ts",
        """
        const QUEUE = "executor_jobs";
        export async function a(db: Db, t: string) {
          await db.query(`INSERT INTO ${QUEUE} (job_type) VALUES ($1)`, [t]);  // template
        }
        export async function b(db: Db, t: string) {
          await db.query("INSERT INTO " + QUEUE + " (job_type) VALUES ($1)", [t]);  // concatenation
        }
    """,
    )
    assert where(static(tmp_path), "PGC101") == [
        ("web/api.ts", line_of(path, "// template")),
        ("web/api.ts", line_of(path, "// concatenation")),
    ]


# -- a view over the projection on the decision path ----------------------------------------------------------


def test_decision_path_reading_a_view_over_the_projection_is_found_through_every_layer(
    tmp_path: Path,
) -> None:
    migration = write(
        tmp_path,
        "db/migrations/0001_core_views.sql",
        """
        CREATE VIEW doc_status AS SELECT id, status FROM user_documents;  -- over the projection
        CREATE VIEW doc_status_recent AS SELECT * FROM doc_status;
        CREATE MATERIALIZED VIEW doc_status_cache AS SELECT id, status FROM user_documents;
        CREATE VIEW entity_events AS SELECT id, events FROM document_entities;
        CREATE FUNCTION status_of(p uuid) RETURNS text LANGUAGE sql AS $$
            SELECT status FROM doc_status_recent WHERE id = p
        $$;
    """,
    )
    path = write(
        tmp_path,
        "pipeline/sql/queries/decision.sql",
        """
        -- name: via_view
        SELECT status FROM doc_status WHERE id = %(id)s

        -- name: via_view_of_view
        SELECT status FROM doc_status_recent WHERE id = %(id)s

        -- name: via_matview
        SELECT status FROM doc_status_cache WHERE id = %(id)s

        -- name: via_function
        SELECT status_of(%(id)s)

        -- name: healthy
        SELECT events FROM entity_events WHERE id = %(id)s
    """,
    )
    found = [f for f in static(tmp_path).findings if f.rule == "PGC104"]
    assert [(f.path, f.line) for f in found] == [
        ("pipeline/sql/queries/decision.sql", line_of(path, "FROM doc_status WHERE")),
        ("pipeline/sql/queries/decision.sql", line_of(path, "FROM doc_status_recent")),
        ("pipeline/sql/queries/decision.sql", line_of(path, "FROM doc_status_cache")),
        ("pipeline/sql/queries/decision.sql", line_of(path, "status_of(")),
    ]
    over = f"db/migrations/0001_core_views.sql:{line_of(migration, '-- over the projection')}"
    assert (
        found[0].message == f"the decision path reads view doc_status, which reads user_documents at {over}"
    )
    assert "view doc_status_recent -> view doc_status" in found[1].message
    assert "status_of -> view doc_status_recent -> view doc_status" in found[3].message


# -- SQL in files that are not .sql, .py or .js ------------------------------------------------------------------


def test_sql_in_a_notebook_is_found_at_the_line_of_its_raw_json(tmp_path: Path) -> None:
    path = notebook(
        tmp_path,
        "analysis/backfill.ipynb",
        'QUEUE = "executor_jobs"',
        """
        import psycopg
        conn = psycopg.connect(DSN)
        conn.execute(f"INSERT INTO {QUEUE} (job_type) VALUES ('protect')")  # python cell
        """,
        "%%sql\nSELECT 1;\nINSERT INTO executor_jobs (job_type) VALUES ('tsa');",
        "!psql -c \"INSERT INTO executor_jobs (job_type) VALUES ('anchor')\"",
    )
    assert where(static(tmp_path), "PGC101") == [
        ("analysis/backfill.ipynb", line_of(path, "# python cell")),
        ("analysis/backfill.ipynb", line_of(path, "VALUES ('tsa')")),
        ("analysis/backfill.ipynb", line_of(path, "VALUES ('anchor')")),
    ]


def test_sql_in_shell_scripts_ci_files_and_markdown_blocks_is_found(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "scripts/requeue.sh",
        """
        #!/usr/bin/env bash
        # psql -c "INSERT INTO executor_jobs (job_type) VALUES ('x')" in a comment is not code
        QUEUE=executor_jobs
        psql "$DSN" -c "INSERT INTO $QUEUE (job_type) VALUES ('protect')"   # variable
        psql "$DSN" <<'SQL'
        \\set ON_ERROR_STOP on
        INSERT INTO executor_jobs (job_type) VALUES ('tsa');
        SQL
        psql "$DSN" -c "\\copy executor_jobs (job_type) from 'jobs.csv'"   # psql copy
    """,
    )
    workflow = write(
        tmp_path,
        ".github/workflows/backfill.yml",
        """
        jobs:
          backfill:
            steps:
              - run: psql "$DSN" -c "INSERT INTO executor_jobs (job_type) VALUES ('anchor')"
    """,
    )
    runbook = write(
        tmp_path,
        "docs/runbook.md",
        """
        Never `INSERT INTO executor_jobs (...)` by hand: prose is not code.

        ```sql
        INSERT INTO executor_jobs (job_type) VALUES ('protect');
        ```

        ```python
        cur.execute("INSERT INTO executor_jobs (job_type) VALUES ('x')")  # an example, not run
        ```
    """,
    )
    assert where(static(tmp_path), "PGC101") == [
        (".github/workflows/backfill.yml", line_of(workflow, "psql")),
        ("docs/runbook.md", line_of(runbook, "VALUES ('protect');")),
        ("scripts/requeue.sh", line_of(script, "# variable")),
        ("scripts/requeue.sh", line_of(script, "VALUES ('tsa')")),
        ("scripts/requeue.sh", line_of(script, "# psql copy")),
    ]


def test_binary_cache_and_prose_files_are_not_findings(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "We never INSERT INTO executor_jobs outside the gateway; see the RFC.\n")
    write(tmp_path, ".cache/x.sql", "INSERT INTO executor_jobs (job_type) VALUES ('protect');\n")
    (tmp_path / "blob.bin").write_bytes(b"\0INSERT INTO executor_jobs (job_type) VALUES ('x')")
    assert where(static(tmp_path), "PGC101") == []


# -- a legacy migration that rewrites the core --------------------------------------------------------------

CORE = """
-- class: core
CREATE TABLE document_entities (id uuid PRIMARY KEY, events jsonb NOT NULL DEFAULT '[]');
CREATE TABLE user_documents (id uuid PRIMARY KEY, status text);
CREATE FUNCTION on_document_entity_events_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END $$;
CREATE TRIGGER on_document_entity_events_change AFTER UPDATE OF events ON document_entities
    FOR EACH ROW EXECUTE FUNCTION on_document_entity_events_change();
"""


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        (
            "CREATE OR REPLACE FUNCTION on_document_entity_events_change() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$;",
            "creates or replaces function on_document_entity_events_change",
        ),
        (
            "DROP TRIGGER on_document_entity_events_change ON document_entities;",
            "drops trigger on_document_entity_events_change",
        ),
        (
            "CREATE TRIGGER shadow AFTER UPDATE ON document_entities FOR EACH ROW EXECUTE FUNCTION f();",
            "creates trigger shadow on table document_entities",
        ),
        ("ALTER FUNCTION materialize_job SECURITY INVOKER;", "alters function materialize_job"),
        ("CREATE OR REPLACE VIEW executor_jobs AS SELECT 1;", "creates or replaces table executor_jobs"),
    ],
    ids=[
        "replace-core-function",
        "drop-core-trigger",
        "trigger-on-core-table",
        "alter-gateway",
        "shadow-table",
    ],
)
def test_a_legacy_or_infra_migration_that_changes_a_core_object_is_found(
    tmp_path: Path, statement: str, what: str
) -> None:
    write(tmp_path, "db/migrations/0001_core_base.sql", CORE)
    for cls in ("legacy", "infra"):
        path = write(
            tmp_path, f"db/migrations/0002_{cls}_hotfix.sql", f"SELECT 1;\n{statement}  -- planted\n"
        )
        found = [f for f in static(tmp_path).findings if f.rule == "PGC108" and f.level is Level.ERROR]
        assert [(f.path, f.line) for f in found] == [(f"db/migrations/0002_{cls}_hotfix.sql", 2)]
        assert found[0].line == line_of(path, "-- planted")
        assert f"{cls} migration 0002_{cls}_hotfix.sql {what}" in found[0].message
        path.unlink()


def test_a_legacy_change_superseded_by_a_later_core_migration_is_historic_and_others_are_fine(
    tmp_path: Path,
) -> None:
    write(tmp_path, "db/migrations/0001_core_base.sql", CORE)
    write(
        tmp_path,
        "db/migrations/0002_legacy_old_trigger.sql",
        "CREATE OR REPLACE FUNCTION on_document_entity_events_change() RETURNS trigger LANGUAGE sql "
        "AS $$ SELECT NULL::trigger $$;\n"
        "CREATE TABLE legacy_audit (id int);\n"
        "CREATE TRIGGER legacy_audit_t AFTER INSERT ON legacy_audit FOR EACH ROW EXECUTE FUNCTION f();\n",
    )
    write(
        tmp_path,
        "db/migrations/0003_core_restore.sql",
        "CREATE OR REPLACE FUNCTION on_document_entity_events_change() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END $$;\n",
    )
    result = static(tmp_path)
    assert result.ok
    notes = [f for f in result.findings if f.rule == "PGC108"]
    assert [(f.level, f.line) for f in notes] == [(Level.NOTE, 1)]
    assert "0003_core_restore.sql" in notes[0].message


def test_the_reference_legacy_migration_is_historic_only() -> None:
    from tests.contracts.plant import ROOT

    result = static(ROOT / "pipeline")
    found = [f for f in result.findings if f.rule == "PGC108"]
    assert {f.level for f in found} == {Level.NOTE}
    assert {f.path for f in found} == {"sql/migrations/0007_legacy_gateway_v0.sql"}


# -- replica mode as a default ------------------------------------------------------------------------------


def test_replica_mode_as_a_default_or_through_set_config_is_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ops/tuning.sql",
        """
        ALTER DATABASE pipeline SET session_replication_role = replica;
        ALTER ROLE pipeline_writer SET session_replication_role TO 'replica';
        ALTER ROLE pipeline_writer IN DATABASE pipeline SET session_replication_role = replica;
        ALTER SYSTEM SET session_replication_role = 'replica';
        SELECT set_config('session_replication_role', 'replica', false);
        ALTER DATABASE pipeline SET session_replication_role = origin;
    """,
    )
    found = [f for f in static(tmp_path).findings if f.rule == "PGC105"]
    assert [f.line for f in found] == [1, 2, 3, 4, line_of(path, "set_config")]
    assert "by ALTER DATABASE pipeline SET, a default for every new session" in found[0].message
    assert "by ALTER ROLE pipeline_writer IN DATABASE pipeline SET" in found[2].message


def test_an_insert_through_a_view_over_the_queue_is_a_direct_insert(tmp_path: Path) -> None:
    """An auto-updatable view over executor_jobs (or over such a view) passes an INSERT to the table."""
    write(
        tmp_path,
        "db/migrations/0001_core_views.sql",
        """
        CREATE VIEW jobs_inbox AS SELECT * FROM executor_jobs;
        CREATE VIEW protect_inbox AS SELECT * FROM jobs_inbox WHERE job_type = 'protect';
        CREATE VIEW recent_documents AS SELECT * FROM user_documents;
    """,
    )
    path = write(
        tmp_path,
        "app/jobs.py",
        """
        def enqueue(cur, e):
            cur.execute("INSERT INTO protect_inbox (job_type, entity_id) VALUES ('protect', %s)", (e,))  # planted
            cur.execute("INSERT INTO recent_documents (id) VALUES (%s)", (e,))  # another table
    """,
    )
    result = static(tmp_path)
    assert where(result, "PGC101") == [("app/jobs.py", line_of(path, "# planted"))]
    assert (
        "into executor_jobs through view protect_inbox"
        in next(f for f in result.findings if f.rule == "PGC101").message
    )


def test_replica_mode_in_connection_options_is_found(tmp_path: Path) -> None:
    python = write(
        tmp_path,
        "app/db.py",
        "DSN = \"host=db dbname=pipeline options='-c session_replication_role=replica'\"  # planted\n",
    )
    compose = write(
        tmp_path,
        "deploy/compose.yaml",
        """
        services:
          worker:
            environment:
              PGOPTIONS: -c session_replication_role=replica
              OTHER: -c statement_timeout=5s
    """,
    )
    found = where(static(tmp_path), "PGC105")
    assert found == [
        ("app/db.py", line_of(python, "# planted")),
        ("deploy/compose.yaml", line_of(compose, "PGOPTIONS")),
    ]
