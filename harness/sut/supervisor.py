"""Worker and service processes: start, SIGKILL at any moment, SIGSTOP/SIGCONT, graceful stop, restart.

Each process writes to its own log file; a service's first stdout line (`listening on URL`) is how its
address is learned. Every process is stopped when the supervisor closes, also after an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

_LISTENING = re.compile(r"listening on (\S+)")
# How a supervised process learns the harness's pid: a protocol with the SUT, not an import.
SUPERVISOR_ENV = "HARNESS_SUPERVISOR_PID"


@dataclass
class Managed:
    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.time)
    url: str | None = None
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Managed] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        wait_url_s: float | None = None,
    ) -> Managed:
        """Start a process. With `wait_url_s`, wait for its `listening on URL` line and keep the URL."""
        # Every child learns who supervises it, so a SUT's process can stop once the harness is gone even
        # after a SIGKILL (the reference pipeline's do: pipeline/supervised.py). Its own session keeps it
        # out of the harness's process group, and so out of a CI runner's group kill.
        full_env = {**os.environ, **(env or {}), SUPERVISOR_ENV: str(os.getpid())}
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stderr=log,
                stdout=subprocess.PIPE if wait_url_s else log,
                start_new_session=True,
            )
        managed = Managed(name, argv, env or {}, log_path, process)
        with self._lock:
            old = self.procs.get(name)
            if old is not None:
                managed.restarts = old.restarts + 1
            self.procs[name] = managed
        if wait_url_s:
            managed.url = self._read_url(managed, wait_url_s)
        return managed

    def _read_url(self, managed: Managed, timeout_s: float) -> str:
        stdout = managed.process.stdout
        assert stdout is not None
        found: list[str] = []

        def read() -> None:
            line = stdout.readline().decode(errors="replace")
            match = _LISTENING.search(line)
            if match:
                found.append(match.group(1))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not found:
            self.kill(managed.name)
            raise HarnessError(
                f"{managed.name} did not print 'listening on URL' within {timeout_s:.0f} s; "
                f"its log ({managed.log_path}):\n{tail(managed.log_path)}"
            )
        return found[0]

    def get(self, name: str) -> Managed:
        if name not in self.procs:
            raise HarnessError(f"no process named {name!r} (running: {', '.join(self.procs) or 'none'})")
        return self.procs[name]

    def kill(self, name: str) -> None:
        """SIGKILL, mid-whatever it is doing."""
        managed = self.get(name)
        with contextlib.suppress(ProcessLookupError):
            managed.process.send_signal(signal.SIGCONT)
            managed.process.kill()
        managed.process.wait(timeout=10)

    def pause(self, name: str) -> None:
        self.get(name).process.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.get(name).process.send_signal(signal.SIGCONT)

    def stop(self, name: str, timeout_s: float = 10) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; returns the exit code."""
        managed = self.get(name)
        if managed.alive:
            with contextlib.suppress(ProcessLookupError):
                managed.process.send_signal(signal.SIGCONT)
                managed.process.terminate()
            try:
                managed.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                managed.process.kill()
                managed.process.wait(timeout=10)
        return managed.process.returncode

    def restart(self, name: str, wait_url_s: float | None = None) -> Managed:
        old = self.get(name)
        if old.alive:
            self.kill(name)
        return self.start(name, old.argv, old.env, wait_url_s=wait_url_s)

    def close(self) -> None:
        for name in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop(name, timeout_s=5)
            stdout = self.procs[name].process.stdout
            if stdout is not None:
                stdout.close()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
