"""The faults behind the runbooks, each with its heal, and the light load a drill runs under.

A fault package is the fault, its heal and its label on the timeline (Jepsen's nemesis); heal always runs,
even when the drill is interrupted. Faults act only through the pipeline's SQL contract and the supervisor,
never by importing the pipeline.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from harness.sqlfile import named_queries
from harness.sut.adapter import SutSql
from harness.sut.system import RunningSystem

Q = named_queries("drill")


class Fault(Protocol):
    label: str
    description: str

    def plant(self, system: RunningSystem) -> None: ...

    def heal(self, system: RunningSystem) -> None: ...


def _execute(dsn: str, query: str, params: dict[str, Any] | None = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(Q[query], params or {})


@dataclass
class CoreTriggerDisabled:
    label: str = "core trigger disabled"
    description: str = "ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change"

    def plant(self, system: RunningSystem) -> None:
        _execute(system.dsn, "disable_core_trigger")

    def heal(self, system: RunningSystem) -> None:
        _execute(system.dsn, "enable_core_trigger")
        _execute(system.dsn, "replay", {"window_s": 3600})


@dataclass
class OrchestratorStopped:
    label: str = "orchestrator stopped"
    description: str = "every orchestrator process stopped (SIGTERM), none restarted"

    def plant(self, system: RunningSystem) -> None:
        for managed in system.workers("orchestrator"):
            system.supervisor.stop(managed.name, timeout_s=10)

    def heal(self, system: RunningSystem) -> None:
        if not any(m.alive for m in system.workers("orchestrator")):
            system.start_worker("orchestrator", 0)


@dataclass
class CrashBeforeResultEvent:
    """The orchestrator crashes (SIGKILL) after the side effect, before the result event; a process manager
    restarts it, so it crash-loops."""

    label: str = "orchestrator crash after side effect, before the result event"
    description: str = "SELECT arm_failpoint('orchestrator.before_result_event', 'crash'); restarted on exit"
    restart_delay_s: float = 0.3
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    restarts: int = 0

    def plant(self, system: RunningSystem) -> None:
        _execute(system.dsn, "arm_failpoint", {"name": "orchestrator.before_result_event", "action": "crash"})
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep_alive, args=(system,), daemon=True)
        self._thread.start()

    def _keep_alive(self, system: RunningSystem) -> None:
        while not self._stop.wait(self.restart_delay_s):
            for managed in system.workers("orchestrator"):
                if not managed.alive and not self._stop.is_set():
                    with contextlib.suppress(Exception):
                        system.supervisor.restart(managed.name)
                        self.restarts += 1

    def heal(self, system: RunningSystem) -> None:
        _execute(system.dsn, "disarm_failpoint", {"name": "orchestrator.before_result_event"})
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for managed in system.workers("orchestrator"):
            if not managed.alive:
                system.supervisor.restart(managed.name)


class LightLoad:
    """Requests `rate` new protections per second from a thread until stopped; remembers the entity ids."""

    def __init__(self, dsn: str, sql: SutSql, rate: float = 3.0) -> None:
        self.dsn = dsn
        self.sql = sql
        self.rate = rate
        self.entities: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="light-load")

    def __enter__(self) -> LightLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                entity = str(uuid.uuid4())
                try:
                    self.sql.request(conn, entity, f"drill {entity}", "drill")
                    self.entities.append(entity)
                except psycopg.Error as exc:  # the fault may make appends fail; the drill reports it
                    self.errors.append(str(exc).strip().splitlines()[0])
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def closed(self) -> int:
        if not self.entities:
            return 0
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            query = self.sql.queries("system")["count_closed"]
            return int(conn.execute(query, {"ids": list(self.entities)}).fetchone()[0])
