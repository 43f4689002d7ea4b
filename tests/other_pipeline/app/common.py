"""What every worker of this pipeline shares: its lifecycle, its connections, and the loop that survives
the database going away.

- Lifecycle: SIGTERM/SIGINT ask for a graceful stop; when the process that supervises us
  (HARNESS_SUPERVISOR_PID) is gone, we stop too, and exit hard if a graceful stop takes too long.
- Connections: autocommit, a short connect timeout and TCP keepalives, so a cut link is noticed.
- Waking: a listener thread LISTENs on the pipeline's channels (the gateway and the scheduler NOTIFY them)
  and sets an event; the loop also polls, so a lost notification only costs a poll interval.
- `serve`: reconnect with backoff on any connection error; the work itself is safe to cut anywhere, since
  a job held by a vanished worker comes back when its lease expires.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

GRACE_S = 10.0  # a stop that takes longer than this (a hung database) ends in os._exit


def setup(
    role: str, argv: Sequence[str] | None, extra: Callable[[argparse.ArgumentParser], None] | None = None
):
    """Parse the common arguments (--dsn, --batch, --poll) and set up logging to stderr."""
    parser = argparse.ArgumentParser(prog=role)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between polls when not woken")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {role}[%(process)d] %(levelname)s %(message)s",
    )
    return args


class Lifecycle:
    """Stop and wake events, with the signal handlers and the supervisor watch that set them."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.name = f"{role}/{socket.gethostname()}/{os.getpid()}"
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.log = logging.getLogger(role)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        supervisor = os.environ.get("HARNESS_SUPERVISOR_PID")
        if supervisor and supervisor.isdigit():
            threading.Thread(target=self._watch, args=(int(supervisor),), daemon=True).start()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.log.info("signal %d: stopping", signum)
        self.request_stop()

    def request_stop(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            self.wake.set()
            timer = threading.Timer(GRACE_S, self._hard_exit)
            timer.daemon = True
            timer.start()

    def _hard_exit(self) -> None:
        self.log.warning("graceful stop took over %.0f s: exiting now", GRACE_S)
        os._exit(3)

    def _watch(self, pid: int) -> None:
        while not self.stop.wait(1.0):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.log.info("supervisor %d is gone: stopping", pid)
                self.request_stop()
            except PermissionError:
                pass  # alive, owned by another user

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)


def connect(dsn: str, name: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=3,
        application_name=name[:63],
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=2,
    )


def listen(life: Lifecycle, dsn: str, channels: Sequence[str]) -> threading.Thread:
    """A thread that sets life.wake on every notification of `channels`, reconnecting as needed."""

    def run() -> None:
        delay = 0.1
        while not life.stop.is_set():
            try:
                with connect(dsn, life.name + "/listen") as conn:
                    for channel in channels:
                        conn.execute(f"LISTEN {channel}")
                    life.wake.set()  # whatever was announced while we were away
                    delay = 0.1
                    while not life.stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            life.wake.set()
            except psycopg.Error as exc:
                life.log.warning("listener: %s; reconnecting in %.1f s", first_line(exc), delay)
                life.sleep(delay)
                delay = min(delay * 2, 2.0)

    thread = threading.Thread(target=run, daemon=True, name="listen")
    thread.start()
    return thread


def serve(life: Lifecycle, dsn: str, poll_s: float, step: Callable[[psycopg.Connection[Any]], bool]) -> None:
    """Call `step(conn)` until stopped; it returns whether it did anything (else wait for a wake or a poll).
    A lost connection is reopened with backoff; `step` must leave nothing half-done that a lease cannot
    recover."""
    conn: psycopg.Connection[Any] | None = None
    delay = 0.1
    while not life.stop.is_set():
        try:
            if conn is None or conn.closed:
                conn = connect(dsn, life.name)
                life.log.info("connected")
                delay = 0.1
            life.wake.clear()
            if not step(conn):
                life.wake.wait(poll_s)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            life.log.warning("database unreachable: %s; reconnecting in %.1f s", first_line(exc), delay)
        except Exception:
            life.log.exception("unexpected error; starting over on a new connection in %.1f s", delay)
        else:
            continue
        if conn is not None:
            conn.close()
        conn = None
        life.sleep(delay)
        delay = min(delay * 2, 2.0)
    if conn is not None:
        conn.close()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
