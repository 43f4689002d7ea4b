"""The workload: protection requests at a fixed rate (open loop), seeded, every call recorded in the history.

Each request is an op of client process `client-N`: invoke, then ok (committed), fail (certainly not: the
database said no) or info (unknown: the connection broke mid-call, so it may have landed). A share of requests
are duplicates: the same event appended again with its id (same_id), or the same document requested again
under a new id (same_intent). Ids come from the scenario's seed, so a run can be repeated exactly.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import psycopg

from harness.history import History, OpType
from harness.records import Workload as WorkloadSpec
from harness.sut.adapter import EntryFailed, EntryUnknown, SutSql


class Workload:
    def __init__(self, dsn: str, spec: WorkloadSpec, history: History, seed: int, sql: SutSql) -> None:
        self.dsn = dsn
        self.sql = sql
        self.Q = sql.queries("run")
        # Without an event id parameter, the entry point cannot append the same event twice: a same-id
        # duplicate is then appended to the authority directly (the pipeline must dedupe it either way).
        self.entry_takes_event_id = sql.sut.entry.takes("event_id")
        self.spec = spec
        self.history = history
        self.rng = random.Random(seed)
        self.plan = self._plan()
        self.replica_writers = False  # set by the disable-core-trigger fault (method replica)
        self.replica_writes = 0
        self.acknowledged: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.started_wall = 0.0
        self.ended_wall = 0.0

    def _plan(self) -> list[dict[str, Any]]:
        """Every request decided up front from the seed: which entity, which event id, which kind."""
        planned: list[dict[str, Any]] = []
        for index in range(self.spec.flows):
            roll = self.rng.random()
            earlier = [p for p in planned if p["kind"] == "new"]
            if earlier and roll < self.spec.duplicate_same_id:
                twin = self.rng.choice(earlier)
                planned.append(
                    {"kind": "same_id", "entity_id": twin["entity_id"], "event_id": twin["event_id"]}
                )
            elif earlier and roll < self.spec.duplicate_same_id + self.spec.duplicate_same_intent:
                twin = self.rng.choice(earlier)
                planned.append(
                    {
                        "kind": "same_intent",
                        "entity_id": twin["entity_id"],
                        "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                    }
                )
            else:
                planned.append(
                    {
                        "kind": "new",
                        "entity_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                        "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                    }
                )
            planned[-1]["at"] = index / self.spec.rate
        return planned

    def run(self, stop: threading.Event) -> None:
        """Issue every planned request on schedule, spread over `clients` client threads."""
        self.started_wall = time.time()
        start = time.monotonic()
        threads = [
            threading.Thread(target=self._client, args=(k, start, stop), name=f"client-{k}", daemon=True)
            for k in range(self.spec.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.ended_wall = time.time()

    def _client(self, k: int, start: float, stop: threading.Event) -> None:
        conn: psycopg.Connection[Any] | None = None
        process = f"client-{k}"
        for planned in self.plan[k :: self.spec.clients]:
            delay = start + planned["at"] - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            if stop.is_set():
                break
            event_id = planned["event_id"] if self.entry_takes_event_id else None
            value = {"entity_id": planned["entity_id"], "event_id": event_id, "kind": planned["kind"]}
            self.history.record(process, OpType.INVOKE, "request", value)
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                replica = self.replica_writers
                if replica:
                    conn.execute(self.Q["replica_on"])
                if planned["kind"] == "same_id" and not self.entry_takes_event_id:
                    conn.execute(self.sql.authority_write("reappend_same_event"), planned)
                else:
                    self.sql.request(
                        conn, planned["entity_id"], f"document {planned['entity_id']}", "workload", event_id
                    )
                if replica:
                    conn.execute(self.Q["replica_off"])
                    with self._lock:
                        self.replica_writes += 1
                self.history.record(process, OpType.OK, "request", value)
                with self._lock:
                    self.acknowledged.append(value)
            except (psycopg.OperationalError, EntryUnknown) as exc:
                self.history.record(process, OpType.INFO, "request", value, _first_line(exc))
                conn = None
            except psycopg.Error as exc:
                self.history.record(
                    process, OpType.FAIL, "request", value, f"{exc.sqlstate or ''} {_first_line(exc)}".strip()
                )
            except EntryFailed as exc:
                self.history.record(process, OpType.FAIL, "request", value, _first_line(exc))
        if conn is not None:
            conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
