"""Workers and services the harness started stop once the harness is gone, even after a SIGKILL that gave
it no chance to stop them, and also when a wrapper (`sh -c`) stands between them and the harness, which
must not stop them while the harness lives; a bad HARNESS_SUPERVISOR_PID is one clear error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from harness.sut.supervisor import SUPERVISOR_ENV
from harness.wait import wait_until

# A stand-in for the harness: its own embedded Postgres, and a Supervisor starting a worker and a service on
# it; then it waits to be killed. Killed outright, it takes its Postgres along (the server dies with its
# parent), so the worker is left retrying a connection that cannot come back: the worst case.
PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import psycopg
    from harness.provision.migrations import MigrationPlan
    from harness.provision import EmbeddedPostgres
    from harness.sut.supervisor import Supervisor
    from harness.sut.config import reference_sut
    pg = EmbeddedPostgres(ready_clones=0).__enter__()
    dsn = pg.new_database(MigrationPlan(reference_sut().migrations))
    supervisor = Supervisor(Path(sys.argv[1]))
    worker = supervisor.start("scheduler", [sys.executable, "-m", "pipeline", "worker", "scheduler",
                                            "--dsn", dsn, "--poll-interval", "0.2"])
    service = supervisor.start("tsa", [sys.executable, "-m", "pipeline.services", "tsa", "--port", "0"],
                               wait_url_s=15)
    # A SUT whose command goes through a wrapper: the worker's parent is the shell, not the supervisor.
    wrapped = supervisor.start("wrapped", ["sh", "-c", f"{sys.executable} -m pipeline worker scheduler "
                                           f"--dsn '{dsn}' --poll-interval 0.2; true"])
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:  # both workers are in their loop once they beat
        while conn.execute("SELECT count(*) FROM worker_heartbeats").fetchone()[0] < 2:
            if time.monotonic() > deadline:
                sys.exit("the two workers did not both beat within 30 s (did one stop at once?)")
            time.sleep(0.05)
    time.sleep(1)  # a few rounds: a wrapped worker must not take the shell for a lost supervisor
    print(worker.pid, service.pid, wrapped.pid, pg.folder, flush=True)
    time.sleep(600)
    """
)


def test_a_sigkilled_harness_takes_its_workers_and_services_with_it(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    folder = ""
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "the stand-in harness ended before its children were up (its stderr is above)"
        *pids, folder = line.split()
        children = [psutil.Process(int(pid)) for pid in pids]
        children += children[-1].children()  # the wrapped worker, under its shell
        assert len(children) == 4 and all(c.is_running() for c in children)
        assert all(c.environ().get(SUPERVISOR_ENV) == str(parent.pid) for c in children)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)

        def all_gone() -> bool:
            return not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

        wait_until(all_gone, 15, "the workers, the shell and the service to stop once their supervisor died")
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        # The server went with its parent; its folder is what a SIGKILL leaves (the next start reaps it too).
        shutil.rmtree(folder, ignore_errors=True)


def test_a_bad_supervisor_pid_is_one_clear_error(dsn: str) -> None:
    env = {**os.environ, SUPERVISOR_ENV: "harness"}
    for argv in (["pipeline", "worker", "scheduler", "--dsn", dsn], ["pipeline.services", "tsa"]):
        done = subprocess.run(
            [sys.executable, "-m", *argv], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 3, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "HARNESS_SUPERVISOR_PID must be the supervising process's id" in lines[0]
