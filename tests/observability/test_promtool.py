"""The exported Prometheus rule file passes `promtool check rules`, and its generated unit tests pass
`promtool test rules` (each rule silent before `for`, firing by `for` + 2 intervals, never on healthy
values). promtool comes from the Debian package `prometheus`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed: Debian package `prometheus` (apt-get install -y prometheus)",
)


def export(dsn: str, folder: Path, profile: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "alerts",
            "export",
            "--postgres",
            dsn,
            "--profile",
            profile,
            "-o",
            str(folder / "rules.yml"),
            "--tests",
            str(folder / "rules_test.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_promtool
@pytest.mark.parametrize("profile", ["production", "fast"])
def test_exported_rules_pass_promtool(dsn: str, tmp_path: Path, profile: str) -> None:
    done = export(dsn, tmp_path, profile)
    assert done.returncode == 0, done.stderr
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "core_trigger_disabled",
        "event_to_job_gap_breached",
        "backlog_ready_jobs",
        "backlog_oldest_age",
        "retry_storm",
        "dead_jobs",
        "compat_warnings_present",
        "worker_role_absent",
    }
    check = subprocess.run(
        [PROMTOOL, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 8 rules found" in check.stdout + check.stderr
    test = subprocess.run(
        [PROMTOOL, "test", "rules", "rules_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_export_reads_the_profile_without_changing_the_database(conn, dsn: str, tmp_path: Path) -> None:
    assert export(dsn, tmp_path, "fast").returncode == 0
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"][0]
    assert rules["interval"] == "1s"
    assert conn.execute("SELECT pipeline_setting('alert_profile')").fetchone()[0] == "production"


def test_export_with_an_unknown_profile_is_bad_input(dsn: str, tmp_path: Path) -> None:
    done = export(dsn, tmp_path, "turbo")
    assert done.returncode == 3
    assert "unknown alert profile 'turbo'; profiles: fast, production" in done.stderr
