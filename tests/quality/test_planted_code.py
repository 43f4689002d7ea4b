"""Bugs in the pipeline's Python, not its SQL: a copy of the reference's package with one line changed,
put first on the workers' PYTHONPATH through the SUT file, and caught by `harness run` with the right check.

A handler that sends a new idempotency key on every attempt instead of one per job: after a crash between
the timestamp authority's answer and the result event, the retried job gets a second token. The pipeline
still records exactly one canonical result (one_result_per_job stays valid); only the authority's own
record of what it issued shows the double side effect.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from harness.scenario import SCENARIO_DIR
from harness.sut.config import reference_sut, to_toml

ROOT = Path(__file__).resolve().parents[2]
PER_JOB = 'answer = self.tsa.post_json("/timestamp", body, idempotency_key=f"job-{job_id}")'
PER_ATTEMPT = (
    "answer = self.tsa.post_json(  # the planted bug: a new key on every attempt\n"
    '            "/timestamp", body, idempotency_key=f"job-{job_id}-{os.urandom(4).hex()}"\n'
    "        )"
)


def _planted_package(tmp_path: Path) -> Path:
    packages = tmp_path / "packages"
    shutil.copytree(ROOT / "pipeline", packages / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    handlers = packages / "pipeline" / "handlers.py"
    text = handlers.read_text()
    assert text.count(PER_JOB) == 1, "the handler changed: update the planted line"
    handlers.write_text(text.replace(PER_JOB, PER_ATTEMPT))
    return packages


def test_a_per_attempt_idempotency_key_is_caught_at_the_service(tmp_path: Path) -> None:
    packages = _planted_package(tmp_path)
    sut = tmp_path / "sut.toml"
    sut.write_text(to_toml(reference_sut()) + f'\n[env]\nPYTHONPATH = "{packages}"\n')
    work = tmp_path / "work"  # not the checkout: the workers must import the planted copy, not ./pipeline
    work.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(SCENARIO_DIR / "crash-after-side-effect.yaml"),
            "--sut",
            str(sut),
            "--report-dir",
            str(tmp_path / "report"),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    (result,) = json.loads((tmp_path / "report" / "report.json").read_text())["scenarios"]
    checks = {c["name"]: c for c in result["checks"]}
    effects = checks["one_side_effect_per_job"]
    assert effects["verdict"] == "invalid", effects
    assert {a["kind"] for a in effects["anomalies"]} == {"duplicated-side-effect"}
    assert all(a["entities"] for a in effects["anomalies"])
    assert checks["one_result_per_job"]["verdict"] == "valid"  # the pipeline's own records look fine
