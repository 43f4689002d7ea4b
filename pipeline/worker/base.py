"""The loop every worker role shares: claim, process, wait for a wake-up, survive the database going away.

A worker holds two connections: `work` for its transactions, and `side` (autocommit) for LISTEN, heartbeats
and failpoint hit counts, which must be durable even when the work transaction is about to be lost to a
crash. When the database restarts or crashes, the worker reconnects with capped backoff and carries on; jobs
it held come back to it or to a peer through lease expiry. SIGTERM (or Ctrl-C) asks it to stop: the current
batch is finished or released, then the loop ends with exit code 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pipeline.errors import translate
from pipeline.failpoint import Failpoints
from pipeline.sql import queries
from pipeline.supervised import orphaned
from pipeline.worker.writers import Writers, drop_cached_plans

log = logging.getLogger("pipeline.worker")

COMMON = queries("common")

# An idle worker replans: a claim made while idle (nothing claimed since it connected or since an empty
# claim) first drops the connection's cached generic plans, because a plan made while the tables looked empty
# reads whole indexes once a burst arrives (DECISIONS.md, "Idle workers replan"); a busy worker keeps its plans.


@dataclass
class WorkerConfig:
    dsn: str
    batch: int = 10
    poll_interval_s: float = 1.0
    lease_seconds: float | None = None
    heartbeat_interval_s: float = 2.0
    db_role: str | None = None  # None: the role's default; "" : stay as the connecting user
    worker_id: str | None = None
    supervisor_pid: int | None = None  # stop once this parent is gone (pipeline.supervised)
    writers: int | None = None  # background writers; None: the role's `writer_count`, 0: write inline


class Worker:
    """Subclasses set `role`, `default_db_role`, `channels` and implement `step()`; a role that writes its
    batches in the background (`hand_off`) sets `writer_count`."""

    role = "worker"
    default_db_role = ""
    channels: tuple[str, ...] = ()
    writer_count = 0

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.worker_id = config.worker_id or f"{self.role}@{socket.gethostname()}:{os.getpid()}"
        self.stopping = False
        self.jobs_done = 0
        self.work: psycopg.Connection[Any] | None = None
        self.side: psycopg.Connection[Any] | None = None
        self.failpoints = Failpoints(self._record_hit)
        self._last_heartbeat = 0.0
        self._db_role = ""
        self._idle = True  # nothing claimed since connecting or since the last empty claim
        # --writers applies to the roles that hand batches off; the others never write in the background.
        count = config.writers if config.writers is not None and self.writer_count else self.writer_count
        self.writers = Writers(count, f"{self.role}-write")

    # -- lifecycle -----------------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._ask_stop)
        signal.signal(signal.SIGINT, self._ask_stop)
        backoff = 0.05
        while not self.stopping:
            # At the top of every round, before connecting: a harness killed outright took its database with
            # it, and the worker would otherwise retry the connection forever.
            if orphaned(self.config.supervisor_pid):
                log.warning("event=supervisor_gone worker=%s: stopping", self.worker_id)
                break
            try:
                if self.work is None:
                    self._connect()
                    backoff = 0.05
                busy = self.step()
                self._housekeeping()
                if not busy and not self.stopping:
                    self._wait(self.config.poll_interval_s)
            except psycopg.OperationalError as exc:
                log.warning("event=db_unavailable worker=%s error=%s", self.worker_id, translate(exc))
                self._disconnect()
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:
                # A bug or an unexpected server error must not kill the worker: its jobs would wait for lease
                # expiry anyway. Log it whole, drop the connections and go on after a pause.
                log.exception("event=step_failed worker=%s", self.worker_id)
                self._disconnect()
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        self._disconnect()
        log.info("event=worker_stopped worker=%s jobs_done=%s", self.worker_id, self.jobs_done)
        return 0

    def step(self) -> bool:
        """Do one round of work; return True when there may be more right away."""
        raise NotImplementedError

    def claim(self, query: str) -> list[dict[str, Any]]:
        """Claim a batch with the role's own claim query, committed at once so the leases are visible."""
        assert self.work is not None
        params = {
            "worker": self.worker_id,
            "limit": self.config.batch,
            "lease_seconds": self.config.lease_seconds,
        }
        if self._idle:
            assert self.work is not None
            drop_cached_plans(self.work)
        jobs = self.alone(query, params)
        if jobs and self._idle:
            self._idle = False
            self.writers.discard_plans()
        return jobs

    def alone(
        self, query: str, params: dict[str, Any], conn: psycopg.Connection[Any] | None = None
    ) -> list[Any]:
        """Run one statement on `conn` (default `work`) as its own transaction: one round trip instead of
        three (BEGIN, the statement, COMMIT). Toggling autocommit is client-side only."""
        conn = conn or self.work
        assert conn is not None
        conn.autocommit = True
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.autocommit = False

    def hand_off(self, write: Callable[[psycopg.Connection[Any]], int], full: bool) -> bool:
        """Write a claimed batch in the background (`write(conn)` returns the jobs it finished) while the
        next is claimed; returns `full`, whether more work may be waiting.

        After a partial batch or when stopping, every write is waited for: the loop then waits for a wake-up
        on the side connection, behind which a failpoint hit by a write would queue, or ends."""
        if not self.writers.count:
            # No writers (--writers 0): write here, on the work connection, before the next claim.
            assert self.work is not None
            self.jobs_done += write(self.work)
            return full
        self.jobs_done += self.writers.submit(write)
        if not full or self.stopping:
            self.jobs_done += self.writers.settle()
        return full

    def idle(self) -> bool:
        """Nothing was claimed: wait for the writes in flight, then report no work."""
        self._idle = True
        self.jobs_done += self.writers.settle()
        return False

    def _ask_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    # -- connections ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._idle = True  # new sessions plan afresh; a backlog found at once is planned as it is
        self.side = psycopg.connect(
            self.config.dsn, autocommit=True, application_name=self.worker_id + "/side"
        )
        role = self.default_db_role if self.config.db_role is None else self.config.db_role
        has_role = role and self._one(COMMON["has_role"], {"role": role})
        self._db_role = role if has_role else ""
        if self._db_role:
            self.side.execute(COMMON["set_role"], {"role": self._db_role})
        self.work = self.open_work_connection("")
        self.writers.open(lambda i: self.open_work_connection(f"/write{i}"))
        for channel in (*self.channels, "pipeline_failpoints"):
            self.side.execute(f"LISTEN {channel}")  # channel names are constants of the worker class
        self._reload_failpoints()
        self._heartbeat()
        log.info("event=worker_connected worker=%s role=%s", self.worker_id, role or "(connecting user)")

    def open_work_connection(self, suffix: str) -> psycopg.Connection[Any]:
        """A transactional connection acting as the worker's database role (the side one must be open)."""
        conn = psycopg.connect(
            self.config.dsn, row_factory=dict_row, application_name=self.worker_id + suffix
        )
        if self._db_role:
            conn.execute(COMMON["set_role"], {"role": self._db_role})
            conn.commit()
        return conn

    def _disconnect(self) -> None:
        self.writers.close()  # the writes in flight end before their connections close under them
        for conn in (self.work, self.side):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
        self.work = self.side = None

    # -- waiting, heartbeats, failpoints -------------------------------------------------------------------
    def _wait(self, timeout_s: float) -> None:
        """Sleep until a NOTIFY on one of our channels, or the polling fallback's timeout."""
        assert self.side is not None
        # Collect first: the notifies() generator holds the connection, so a query run from inside the loop
        # (a failpoint reload) would wait for it forever.
        for channel in [note.channel for note in self.side.notifies(timeout=timeout_s, stop_after=1)]:
            self._on_notify(channel)

    def _housekeeping(self) -> None:
        assert self.side is not None
        for channel in [note.channel for note in self.side.notifies(timeout=0)]:
            self._on_notify(channel)
        if time.monotonic() - self._last_heartbeat >= self.config.heartbeat_interval_s:
            self._heartbeat()

    def _on_notify(self, channel: str) -> None:
        if channel == "pipeline_failpoints":
            self._reload_failpoints()

    def _heartbeat(self) -> None:
        assert self.side is not None
        self.side.execute(
            COMMON["heartbeat"],
            {
                "worker_id": self.worker_id,
                "role": self.role,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "jobs_done": self.jobs_done,
            },
        )
        self._last_heartbeat = time.monotonic()

    def _reload_failpoints(self) -> None:
        assert self.side is not None
        self.failpoints.load([(r[0], r[1]) for r in self.side.execute(COMMON["load_failpoints"]).fetchall()])

    def _record_hit(self, name: str, action: str) -> int:
        assert self.side is not None
        return int(self._one(COMMON["failpoint_hit"], {"name": name, "action": action}))

    def _one(self, query: str, params: dict[str, Any]) -> Any:
        """The value of a side-connection query that returns one row of one column."""
        assert self.side is not None
        row = self.side.execute(query, params).fetchone()
        assert row is not None
        return row[0]
