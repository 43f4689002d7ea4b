"""The command line, run as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import psycopg

from harness.wait import wait_until

HARNESS = [sys.executable, "-m", "harness.cli"]
PIPELINE = [sys.executable, "-m", "pipeline"]


def run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_e2e_json_summary_for_real_flows() -> None:
    done = run([*HARNESS, "e2e", "--flows", "8", "--json"])
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["flows_requested"] == summary["flows_completed"] == summary["traces_complete"] == 8
    assert summary["flows_per_s"] > 0 and set(summary["latency_ms"]) >= {"p50", "p99"}
    assert summary["postgres"]["provider"] == "embedded" and summary["postgres"]["version"]


def test_e2e_with_a_missing_postgres_binary_is_bad_input(tmp_path: Path) -> None:
    done = run([*HARNESS, "e2e", "--flows", "1"], env={"HARNESS_PG_BIN": str(tmp_path / "nowhere")})
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "HARNESS_PG_BIN" in done.stderr and "unset it" in done.stderr


def test_bad_arguments_exit_3() -> None:
    assert run([*HARNESS, "e2e", "--flows", "0"]).returncode == 3
    assert run([*HARNESS, "no-such-command"]).returncode == 3
    not_uuid = run([*HARNESS, "trace", "e3", "--postgres", "host=127.0.0.1 port=1"])
    assert not_uuid.returncode == 3 and "is not a uuid" in not_uuid.stderr


def test_trace_with_a_bad_dsn_is_one_clear_error() -> None:
    done = run(
        [*HARNESS, "trace", str(uuid.uuid4()), "--postgres", "host=127.0.0.1 port=1 connect_timeout=2"]
    )
    assert done.returncode == 3
    assert done.stderr.startswith("error: cannot connect to --postgres") and done.stderr.count("\n") == 1


def test_trace_of_an_unknown_entity_says_so(dsn: str) -> None:
    done = run([*HARNESS, "trace", str(uuid.uuid4()), "--postgres", dsn])
    assert done.returncode == 3 and "no entity" in done.stderr


def test_worker_bad_input_exits_3_with_one_line() -> None:
    unknown = run([*PIPELINE, "worker", "janitor", "--dsn", "host=x"])
    assert unknown.returncode == 3 and "unknown worker role 'janitor'" in unknown.stderr
    bad_dsn = run([*PIPELINE, "worker", "orchestrator", "--dsn", "host=127.0.0.1 port=1"])
    assert bad_dsn.returncode == 3 and "cannot connect to the database" in bad_dsn.stderr
    bad_fp = run(
        [*PIPELINE, "worker", "orchestrator", "--dsn", "x"], env={"PIPELINE_FAILPOINTS": "nowhere=crash"}
    )
    assert bad_fp.returncode == 3 and "unknown failpoint 'nowhere'" in bad_fp.stderr
    bad_writers = run([*PIPELINE, "worker", "orchestrator", "--dsn", "x", "--writers", "-1"])
    assert bad_writers.returncode == 3 and "--writers must be 0 or more, got -1" in bad_writers.stderr


def test_up_runs_until_ctrl_c_and_leaves_nothing_behind() -> None:
    proc = subprocess.Popen([*HARNESS, "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        while not any(line.startswith("running;") for line in lines):
            line = proc.stdout.readline()
            assert line, f"harness up ended early: {''.join(lines)}"
            lines.append(line)
        text = "".join(lines)
        dsn = re.search(r"^DSN\s+(.+)$", text, re.MULTILINE).group(1)
        worker_pids = [int(p) for p in re.findall(r"pid (\d+)", text)]
        with psycopg.connect(dsn, autocommit=True) as conn:
            entity = str(uuid.uuid4())
            conn.execute("SELECT request_protection(%s, 'hello')", (entity,))
            wait_until(
                lambda: conn.execute(
                    'SELECT events @> \'[{"type": "document.anchored"}]\' '
                    "FROM document_entities WHERE id = %s",
                    (entity,),
                ).fetchone()[0],
                30,
                "a flow requested by hand to complete under harness up",
            )
            server_pid = _postmaster_pid(conn)
        assert psutil.pid_exists(server_pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == 0
    assert not any(psutil.pid_exists(p) for p in [*worker_pids, server_pid])
    folder = Path(re.search(r"log (\S+)/fase1-executor-0.log", text).group(1))
    assert not folder.exists()


def _postmaster_pid(conn: psycopg.Connection) -> int:
    data = conn.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'").fetchone()[0]
    with conn.cursor() as cur:
        cur.execute("SELECT pg_read_file(%s)", (f"{data}/postmaster.pid",))
        return int(cur.fetchone()[0].splitlines()[0])


def test_bench_soak_reports_windows_and_their_ratio() -> None:
    bad = run([*HARNESS, "bench", "--soak-minutes", "0"])
    assert bad.returncode == 3 and "--soak-minutes must be positive" in bad.stderr
    no_rounds = run([*HARNESS, "bench", "--rounds", "0"])
    assert no_rounds.returncode == 3 and "--rounds must be at least 1" in no_rounds.stderr
    done = run([*HARNESS, "bench", "--soak-minutes", "0.05", "--json"])
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["figures"]
    assert figures["soak_first_window_jobs_per_s"] > 0 and "soak_last_vs_first" in figures
