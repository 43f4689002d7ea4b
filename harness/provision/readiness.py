"""Waiting for a server to accept connections: a strategy with a deadline and a list of transient errors,
never a bare sleep (the testcontainers habit)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg


def wait_for_postgres(
    dsn: str,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    describe: str = "Postgres",
) -> str:
    """Poll until `dsn` answers `SELECT 1`; return the server version string.

    Raises TimeoutError (with the last error seen) when the deadline passes, and RuntimeError as soon as
    `alive()` says the server process is gone, so a server that died at start fails fast.
    """
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    delay = 0.01
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{describe} exited before accepting connections")
        try:
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                assert row is not None  # SHOW returns one row
                return str(row[0])
        except psycopg.OperationalError as exc:
            last = exc
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    raise TimeoutError(f"{describe} did not accept connections within {timeout_s:.0f} s (last error: {last})")
