"""`harness load` fails on a broken pipeline: copies of the reference pipeline with one planted bug each
(the same copies `harness run` must catch), loaded by Locust, must end with exit 1 and the problem named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.quality.test_planted_pipelines import planted_sut


@pytest.mark.parametrize(
    ("bug", "problem"),
    [
        # Requests acknowledged and dropped: Locust counts more successes than the database holds flows.
        ("request-dropped", "requests were acknowledged but only"),
        # Valid requests refused: Locust's failures, with the database's message.
        ("request-rejected", "requests failed"),
        # The core trigger skips a quarter of the events: required events with no job.
        ("trigger-skips-events", "job.<type>.required events have no job"),
    ],
)
def test_load_catches_a_planted_bug(tmp_path: Path, bug: str, problem: str) -> None:
    config = planted_sut(tmp_path, bug)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "load",
            "--sut",
            str(config),
            "--users",
            "3",
            "--duration",
            "3",
            "--rate-per-user",
            "8",
            "--drain-timeout",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert not summary["ok"]
    assert any(problem in p for p in summary["problems"]), summary["problems"]
    if bug == "request-rejected":
        messages = summary["requests"]["failure_messages"]
        assert messages and "planted: request refused for" in messages[0], messages
