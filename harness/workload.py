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
from harness.sqlfile import named_queries

Q = named_queries("run")


class Workload:
    def __init__(self, dsn: str, spec: WorkloadSpec, history: History, seed: int) -> None:
        self.dsn = dsn
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
            value = {
                "entity_id": planned["entity_id"],
                "event_id": planned["event_id"],
                "kind": planned["kind"],
            }
            self.history.record(process, OpType.INVOKE, "request", value)
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
                replica = self.replica_writers
                if replica:
                    conn.execute(Q["replica_on"])
                appended = conn.execute(
                    Q["request"], {**planned, "document": f"document {planned['entity_id']}"}
                ).fetchone()[0]
                if replica:
                    conn.execute(Q["replica_off"])
                    with self._lock:
                        self.replica_writes += 1
                self.history.record(
                    process, OpType.OK, "request", {**value, "appended": appended is not None}
                )
                with self._lock:
                    self.acknowledged.append(value)
            except psycopg.OperationalError as exc:
                self.history.record(process, OpType.INFO, "request", value, _first_line(exc))
                conn = None
            except psycopg.Error as exc:
                self.history.record(
                    process, OpType.FAIL, "request", value, f"{exc.sqlstate or ''} {_first_line(exc)}".strip()
                )
        if conn is not None:
            conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
