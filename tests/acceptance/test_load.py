"""`harness load`: Locust drives the reference pipeline, in every shape Locust runs in, and the verdict is
read from what the pipeline did with the load. Real subprocesses throughout: the harness, Locust (which must
run apart from the harness: it monkey-patches the standard library for gevent), workers and Postgres."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.load.driver import LOCUSTFILE
from harness.wait import wait_until

HARNESS = [sys.executable, "-m", "harness.cli", "load"]
SHORT = ["--users", "3", "--duration", "3", "--rate-per-user", "5", "--drain-timeout", "30", "--json"]


def load(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout)


def summary_of(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def test_the_reference_pipeline_holds_under_load_from_forked_locust_workers(tmp_path: Path) -> None:
    done = load(
        *SHORT, "--processes", "2", "--html", str(tmp_path / "locust.html"), "--csv", str(tmp_path / "s")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = summary_of(done)
    requests, flows, gap = summary["requests"], summary["flows"], summary["event_to_job_gap_ms"]
    assert summary["ok"] and summary["problems"] == []
    assert requests["count"] > 0 and requests["failures"] == 0
    assert set(requests["latency_ms"]) == {"p50", "p95", "p99", "max"}
    # Every acknowledged request is a flow, closed and traced.
    assert flows["flows_requested"] >= requests["count"]
    assert flows["flows_completed"] == flows["traces_complete"] == flows["flows_requested"]
    # Each flow appends three job.<type>.required events (protect, tsa, anchor), every one with its job.
    assert gap["events"] == 3 * flows["flows_requested"] and gap["without_job"] == 0
    assert 0 <= gap["p50"] <= gap["p99"] <= gap["max"]
    assert summary["locust"]["processes"] == 2
    assert (tmp_path / "locust.html").stat().st_size > 0 and (tmp_path / "s_stats.csv").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_locust_master_takes_its_users_from_a_worker_started_elsewhere(tmp_path: Path) -> None:
    """The multi-machine shape on one machine: `harness load --expect-workers 1` is the master, and a plain
    `locust --worker` (no DSN: the master hands it the DSN, owner and rate) runs every user."""
    port = str(_free_port())
    master = subprocess.Popen(
        [*HARNESS, *SHORT, "--expect-workers", "1", "--master-bind-port", port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_LOAD_DSN"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            port,
            "--loglevel",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        out, err = master.communicate(timeout=240)
        worker_err = worker.communicate(timeout=60)[1]
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.kill()
    assert master.returncode == 0, out + err + worker_err
    summary = json.loads(out)
    assert summary["locust"]["external_workers"] == 1
    assert (
        summary["requests"]["count"] > 0
        and summary["flows"]["flows_completed"] >= summary["requests"]["count"]
    )
    assert worker.returncode == 0, worker_err


def test_load_fails_when_flows_do_not_close_or_the_gap_limit_is_broken() -> None:
    """The verdict can fail: no orchestrator, so no flow closes; and a gap limit no pipeline can meet."""
    done = load(
        *SHORT[:-3], "--drain-timeout", "2", "--json", "--orchestrators", "0", "--gap-p99-ms", "0.0001"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    summary = summary_of(done)
    problems = " | ".join(summary["problems"])
    assert not summary["ok"]
    assert f"0 of {summary['flows']['flows_requested']} flows completed" in problems
    assert "event_to_job_gap p99" in problems and "above the limit of 0.0001 ms" in problems


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "0"], "--users must be at least 1, got 0"),
        (["--rate-per-user", "-1"], "--rate-per-user must be 0 (as fast as possible) or more, got -1.0"),
        (["--duration", "0"], "--duration must be positive, got 0.0"),
        (["--expect-workers", "1", "--processes", "2"], "--expect-workers and --processes do not combine"),
    ],
)
def test_bad_load_arguments_are_one_line_errors(args: list[str], message: str) -> None:
    done = load(*args, timeout=60)
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_load_without_locust_installed_says_how_to_get_it() -> None:
    hide = "import sys; sys.modules['locust'] = None; from harness.cli import main; sys.exit(main(['load']))"
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stderr.count("\n") == 1
    assert "harness load needs Locust: pip install -e '.[load]'" in done.stderr


def test_a_terminated_load_run_leaves_no_locust_worker_server_or_folder_behind() -> None:
    """CI ends an overrunning job with SIGTERM to the harness alone: Locust's forked workers, the pipeline's
    workers and Postgres must all go with it."""
    harness = subprocess.Popen(
        [*HARNESS, "--users", "2", "--duration", "120", "--processes", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = harness.stderr.readline()
        assert line.startswith("load: pipeline up"), line + harness.stderr.read()
        me = psutil.Process(harness.pid)

        def command_line(process: psutil.Process) -> str:
            # A child may exit between being listed and being read (a zombie, or gone): it is no Locust.
            try:
                return " ".join(process.cmdline())
            except psutil.Error:
                return ""

        def locusts() -> list[psutil.Process]:
            return [p for p in me.children(recursive=True) if "locust" in command_line(p)]

        wait_until(lambda: len(locusts()) >= 3, 30, "the Locust master and its 2 forked workers")
        everything = me.children(recursive=True)
        command = locusts()[0].cmdline()
        folder = Path(command[command.index("--json-file") + 1]).parent
        assert folder.exists()
        harness.send_signal(signal.SIGTERM)
        harness.wait(timeout=60)
    finally:
        if harness.poll() is None:
            harness.kill()
    try:
        assert harness.returncode == 4 and "terminated; cleaned up" in harness.stderr.read()
    finally:
        harness.stdout.close()
        harness.stderr.close()
    wait_until(
        lambda: not [p for p in everything if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
        15,
        "every process the load run started to be gone",
    )
    assert not folder.exists()
