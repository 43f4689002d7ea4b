"""`harness init` as a team meets it: the files it writes are valid for the systems that read them (the
GitHub Actions and GitLab CI schemas, checked by a real validator, check-jsonschema's vendored schemas), its
example scenario validates, its SUT file leads `harness sut check` to the next thing to fill in, and once
filled in, the team's own suite runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from harness.sut.config import reference_sut

HARNESS = [sys.executable, "-m", "harness.cli"]
VALIDATOR = Path(sys.executable).with_name("check-jsonschema")
WORKFLOW = ".github/workflows/pipeline-harness.yml"
GITLAB = ".gitlab/pipeline-harness.gitlab-ci.yml"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HARNESS, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def _validate(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VALIDATOR), "--builtin-schema", schema, str(path)], capture_output=True, text=True, check=False
    )


def test_init_writes_ci_files_their_validators_accept(tmp_path: Path) -> None:
    done = _run("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("harness.toml", "chaos/example.yaml", "contracts.toml", WORKFLOW, GITLAB):
        assert (tmp_path / name).is_file(), name
    github = _validate("vendor.github-workflows", tmp_path / WORKFLOW)
    assert github.returncode == 0, github.stdout + github.stderr
    gitlab = _validate("vendor.gitlab-ci", tmp_path / GITLAB)
    assert gitlab.returncode == 0, gitlab.stdout + gitlab.stderr
    workflow = (tmp_path / WORKFLOW).read_text()
    assert "harness run nightly --sut harness.toml" in workflow and "schedule:" in workflow
    assert "upload-sarif" in workflow and "harness gate --phase 1" in workflow
    assert "harness run nightly" in (tmp_path / GITLAB).read_text()


def test_the_validator_refuses_a_broken_workflow(tmp_path: Path) -> None:
    # The check above is only worth something if the validator can fail: a job without runs-on is refused.
    _run("init", cwd=tmp_path)
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (tmp_path / WORKFLOW).read_text().replace("runs-on: ubuntu-latest", "run-on: ubuntu-latest")
    )
    assert _validate("vendor.github-workflows", broken).returncode != 0


def test_init_keeps_what_exists_and_finds_the_migrations(tmp_path: Path) -> None:
    shutil.copytree(reference_sut().migrations, tmp_path / "db" / "sql" / "migrations")
    (tmp_path / "harness.toml").write_text("# ours\n")
    done = _run("init", str(tmp_path), cwd=tmp_path.parent)
    assert "kept  " in done.stdout and (tmp_path / "harness.toml").read_text() == "# ours\n"
    (tmp_path / "harness.toml").unlink()
    _run("init", str(tmp_path), cwd=tmp_path.parent)
    assert tomllib.loads((tmp_path / "harness.toml").read_text())["migrations"] == "db/sql/migrations"


def test_the_template_leads_to_the_next_step_and_the_example_scenario_validates(tmp_path: Path) -> None:
    _run("init", cwd=tmp_path)
    validated = _run("scenarios", "validate", "chaos/example.yaml", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    check = _run("sut", "check", "harness.toml", cwd=tmp_path)
    assert check.returncode == 3
    assert check.stderr.strip().splitlines()[-1].startswith("error: migrations folder ")


def test_filled_in_the_teams_own_suite_runs(tmp_path: Path) -> None:
    # A team whose pipeline is the reference's code: its migrations copied, its commands the reference's.
    reference = reference_sut()
    shutil.copytree(reference.migrations, tmp_path / "db" / "migrations")
    _run("init", cwd=tmp_path)
    sut = tomllib.loads(reference.path.read_text())
    text = (tmp_path / "harness.toml").read_text()
    start, end = text.index("[entry]"), text.index("# Optional sections")
    lines = ["[entry]", f"request = {sut['entry']['request']!r}".replace("'", '"'), "", "[workers]"]
    lines += [
        f"{role} = [{', '.join(repr(p).replace(chr(39), chr(34)) for p in cmd)}]"
        for role, cmd in sut["workers"].items()
    ]
    lines += ["", "[services]"]
    lines += [
        f"{name} = [{', '.join(repr(p).replace(chr(39), chr(34)) for p in cmd)}]"
        for name, cmd in sut["services"].items()
    ]
    (tmp_path / "harness.toml").write_text(text[:start] + "\n".join(lines) + "\n\n" + text[end:])
    check = _run("sut", "check", "harness.toml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = _run("scenarios", "list", "--sut", "harness.toml", cwd=tmp_path)
    assert (
        "ours-orchestrator-crash-under-slow-tsa  [ours]" in listed.stdout and "suite ours: 1" in listed.stdout
    )
    ran = _run("run", "ours", "--sut", "harness.toml", "--report-dir", "reports/ours", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ours-orchestrator-crash-under-slow-tsa  valid" in ran.stdout
