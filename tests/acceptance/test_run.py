"""`harness run` as CI and a person use it: exit codes, the three reports, and Ctrl-C (or CI's SIGTERM)
mid-fault."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from harness.scenario import SCENARIO_DIR
from harness.wait import wait_until

HARNESS = [sys.executable, "-m", "harness.cli"]


def test_smoke_suite_passes_and_writes_three_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [*HARNESS, "run", "smoke", "--report-dir", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert (
        report["verdict"] == "valid"
        and report["git_sha"]
        and report["command"].startswith("harness run smoke")
    )
    assert {s["name"] for s in report["scenarios"]} == {"steady-state"}
    assert all(c["verdict"] == "valid" for s in report["scenarios"] for c in s["checks"])
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    assert sum(1 for _ in cases) >= 10
    assert "steady-state" in (tmp_path / "report.html").read_text()
    assert (tmp_path / "steady-state" / "history.jsonl").stat().st_size > 0
    assert "verdict: VALID" in done.stdout


def test_bad_scenario_file_is_bad_input_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ndescription: d\nsuites: [nightly]\nfaults:\n  - {fault: kill-worker, role: some}\n"
    )
    done = subprocess.run(
        [*HARNESS, "run", str(bad), "--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "bad.yaml: faults[0].role: 'some' is not allowed" in done.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_mid_fault_heals_tears_down_and_reports(tmp_path: Path, stop_signal: signal.Signals) -> None:
    proc = subprocess.Popen(
        [
            *HARNESS,
            "run",
            str(SCENARIO_DIR / "core-trigger-disabled.yaml"),
            "--report-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    history = tmp_path / "core-trigger-disabled" / "history.jsonl"
    wait_until(
        lambda: history.exists() and '"start:disable-core-trigger"' in history.read_text(),
        60,
        "the fault to start",
    )
    family = psutil.Process(proc.pid).children(recursive=True)
    assert len(family) >= 4  # postgres, services, workers
    proc.send_signal(stop_signal)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out  # interrupted: unknown, never valid
    assert '"heal:disable-core-trigger"' in history.read_text()
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] is True and report["verdict"] == "unknown"
