"""Background writers: a worker's batches written on connections of their own while it claims the next.

Both roles that take jobs use them: the orchestrator for its outcomes, the decision worker for its decisions.
Why: a completion is most of a job's server time. A worker that waits for it leaves its backend idle while it
claims and runs handlers, and itself idle while the backend writes. With the writes handed to a thread (the
GIL is released while psycopg waits on the socket), the claim of the next batch and its handlers overlap the
commit of the last. Two writers are enough on a 2-core machine: measured in-process at batch 10, one writer
gave 2,300-3,300 jobs/s, two 3,500-3,750, three the same as two (the server's CPU is then the limit).

A standard-library thread pool does the threading; what it lacks is a connection per thread and a bound on
the work in flight, kept here.
"""

from __future__ import annotations

import collections
import contextlib
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg

Connection = psycopg.Connection[Any]


def drop_cached_plans(conn: Connection) -> None:
    """DISCARD PLANS on an idle connection, as a statement of its own: a caller that opens a transaction next
    expects none open (see "An idle worker replans" in pipeline.worker.base)."""
    conn.autocommit = True
    try:
        conn.execute("DISCARD PLANS")
    finally:
        conn.autocommit = False


class Writers:
    """`count` threads, each write on a connection no other write is using at that moment.

    At most `count` writes are in flight: `submit` first waits for the oldest until fewer are. An error of a
    write (its connection lost, a bug) is raised by the `settle` or `submit` that collects it, so the worker's
    loop meets it as if its own step had raised it (a `submit` raises it after starting its own write).
    """

    def __init__(self, count: int, name: str) -> None:
        self.count = count
        # Threads start on the first submit, so a role with no writers (count 0) never starts one.
        self._pool = ThreadPoolExecutor(max_workers=max(count, 1), thread_name_prefix=name)
        self._free: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._connections: list[Connection] = []
        self._in_flight: collections.deque[Future[int]] = collections.deque()
        # Connections to drop their cached plans before their next write (ids; set and popped atomically).
        self._replan: dict[int, bool] = {}

    def open(self, connect: Callable[[int], Connection]) -> None:
        # One at a time into the list, so a failure part way leaves the ones opened for `close`.
        for i in range(self.count):
            self._connections.append(connect(i))
            self._free.put(self._connections[-1])

    def submit(self, write: Callable[[Connection], int]) -> int:
        """Start `write(conn)` in the background; returns what the writes collected meanwhile returned.

        The new write is started even when a collected one failed, and that error is raised after: the batch
        in hand then still reaches the database (the caller's `close` waits for it) instead of waiting for its
        leases to expire."""
        done, error = self._collect(keep=self.count - 1)
        self._in_flight.append(self._pool.submit(self._run, write))
        if error is not None:
            raise error
        return done

    def discard_plans(self) -> None:
        """Have every connection drop its cached plans before its next write (see pipeline.worker.base)."""
        for conn in self._connections:
            self._replan[id(conn)] = True

    def settle(self, keep: int = 0) -> int:
        """Wait until at most `keep` writes are in flight, oldest first; the sum of what they returned."""
        done, error = self._collect(keep)
        if error is not None:
            raise error
        return done

    def close(self) -> None:
        """Wait for every write in flight (their errors are dropped: the caller is already giving up on the
        connections), then close the connections."""
        self._collect(keep=0)
        for conn in self._connections:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        self._connections = []
        self._free = queue.SimpleQueue()

    def _collect(self, keep: int) -> tuple[int, Exception | None]:
        """Wait for the oldest writes until `keep` are in flight: what they returned, and the first error."""
        done, error = 0, None
        while len(self._in_flight) > keep:
            try:
                done += self._in_flight.popleft().result()
            except Exception as exc:
                error = error or exc
        return done, error

    def _run(self, write: Callable[[Connection], int]) -> int:
        conn = self._free.get()
        try:
            if self._replan.pop(id(conn), False):
                drop_cached_plans(conn)
            return write(conn)
        finally:
            self._free.put(conn)
