"""pipeline/sql/schema.sql is what the migrations build: the catalogue of a freshly migrated database,
rendered by tests/schema_snapshot.py, must equal the committed file byte for byte.

A reader takes schema.sql for the current definition of every function; if a migration redefined one and
the file was not regenerated, the reader (and every planted-bug copy built from the file) would be working
from a stale definition. The failure names each object that differs and gives the command that
regenerates the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from harness.provision import EmbeddedPostgres
from harness.provision.migrations import MigrationPlan
from tests.quality.planting import plant
from tests.schema_snapshot import MIGRATIONS, REGENERATE, SCHEMA, drift, render


def test_the_migrations_build_exactly_schema_sql(conn: psycopg.Connection) -> None:
    """The reference migrations, applied to a fresh database, build exactly what schema.sql shows."""
    report = drift(SCHEMA.read_text(encoding="utf-8"), render(conn))
    if report:
        pytest.fail(report, pytrace=False)


def test_a_migration_the_snapshot_does_not_know_fails_naming_each_object(
    pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """A new migration committed without regenerating schema.sql (it redefines a function, adds one, adds an
    index, disables a trigger, grants a privilege and changes a seed row): the test above must fail, name
    each object that differs and nothing else, show the changed lines, and say how to regenerate."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    redefined = plant("new_trace_id", "replace(gen_random_uuid()::text, '-', '')", "md5(random()::text)")
    (folder / "0999_core_unsnapshotted.sql").write_text(
        f"{redefined};\n"
        "CREATE FUNCTION planted_helper() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
        "CREATE INDEX executor_jobs_planted_idx ON executor_jobs (trace_id);\n"
        "ALTER TABLE pipeline_settings DISABLE TRIGGER pipeline_settings_validate;\n"
        "GRANT INSERT ON job_types TO pipeline_reader;\n"
        "UPDATE pipeline_settings SET value = 'strict' WHERE key = 'gateway_mode';\n",
        encoding="utf-8",
    )
    with pg.database(MigrationPlan(folder)) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        report = drift(SCHEMA.read_text(encoding="utf-8"), render(conn))
    assert report is not None
    first = report.splitlines()[0]
    assert first == (
        "pipeline/sql/schema.sql is not what the migrations build; differing: table executor_jobs (changed); "
        "table job_types (changed); table pipeline_settings (changed); function new_trace_id() (changed); "
        "function planted_helper() (added); data pipeline_settings (changed)."
    )
    assert f"regenerate it with `{REGENERATE}`" in report
    diff = report.splitlines()
    assert "-AS $function$ SELECT replace(gen_random_uuid()::text, '-', '') $function$;" in diff
    assert "+AS $function$ SELECT md5(random()::text) $function$;" in diff
    assert "+CREATE INDEX executor_jobs_planted_idx ON public.executor_jobs USING btree (trace_id);" in diff
    assert "+-- function planted_helper()" in diff
    assert "+ALTER TABLE pipeline_settings DISABLE TRIGGER pipeline_settings_validate;" in diff
    assert "+GRANT SELECT, INSERT ON TABLE job_types TO pipeline_reader;" in diff
    assert any(line.startswith("+    ('gateway_mode', 'strict', ") for line in diff)
