"""A fault package: the fault, its heal, and how to tell it took effect (Jepsen's nemesis packages).

Each fault class declares its parameters (name -> allowed values or type), so scenario files are validated
before anything runs. `start` does the damage and returns evidence; `heal` undoes it (it always runs, also on
Ctrl-C); `took_effect` reads the system back (the trigger state, the process seen dead, a failpoint's hit
count) so a fault that never bit makes the scenario `unknown`, never `valid`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from harness.history import History
from harness.provision import Provider
from harness.records import FaultEffects
from harness.sut.adapter import SutSql
from harness.sut.system import RunningSystem


@dataclass(frozen=True)
class Param:
    """A fault parameter: its type, the values allowed (if a closed set) and its default."""

    kind: type
    default: Any = None
    choices: tuple[Any, ...] = ()
    required: bool = False

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        return {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}[self.kind]


@dataclass
class FaultContext:
    """What a fault may touch: the database, the server, the processes, the workload and the history."""

    dsn: str
    provider: Provider
    system: RunningSystem
    history: History
    rng: random.Random
    params: Mapping[str, Any]
    sut_sql: SutSql
    workload: Any = None  # harness.workload.Workload, for faults that change how clients write
    state: dict[str, Any] = field(default_factory=dict)  # what start() must hand to heal()

    def sql(
        self, name: str, args: Mapping[str, Any] | None = None, fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run a named query of harness/sql/faults.sql, rendered for this pipeline."""
        return self.execute(self.sut_sql.queries("faults")[name], args, fetch)

    def execute(
        self, statement: str, args: Mapping[str, Any] | None = None, fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run one statement (a named query, or one the SUT file gives) on its own autocommit connection."""
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(statement, args or {})
            return cur.fetchall() if fetch and cur.description else []


class Fault:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Param]] = {}
    needs_own_server: ClassVar[bool] = False
    needs_network: ClassVar[bool] = False  # the system must route its links through the proxy
    instantaneous: ClassVar[bool] = False  # done at once; heal right after (e.g. a burst of inserts)

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Capabilities of the pipeline this fault needs with these parameters (harness/sut/contract.py):
        a scenario whose pipeline lacks one is not applicable, naming it."""
        return ()

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        """Inject the fault; return evidence for the history."""
        raise NotImplementedError

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        """Undo the fault; return evidence. Must be safe to call even if start failed half-way."""
        return {}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        """Read the system back while the fault is on."""
        return None, "no read-back for this fault"

    def tick(self, ctx: FaultContext) -> None:
        """Called by the nemesis on every loop while the fault is on (a fault that must keep acting, like a
        process manager restarting what keeps crashing); nothing by default."""

    def confirm(self, ctx: FaultContext) -> tuple[bool | None, str] | None:
        """After the drain, for a fault whose proof shows only later: whether it really hit (None: nothing to
        add to what took_effect said while it was on)."""
        return None

    def effects(self, ctx: FaultContext) -> FaultEffects:
        """What this fault did that the checkers must account for (settings it held, writes it made around
        the pipeline), kept on its window as typed fields; nothing by default."""
        return FaultEffects()


REGISTRY: dict[str, type[Fault]] = {}


def register(cls: type[Fault]) -> type[Fault]:
    REGISTRY[cls.name] = cls
    return cls


def param(ctx: FaultContext, name: str, cls: type[Fault]) -> Any:
    spec = cls.params[name]
    return ctx.params.get(name, spec.default)


Action = Callable[[FaultContext], dict[str, Any]]


def catalogue_markdown() -> str:
    """The faults table of harness/scenarios/README.md, rendered from the registry so the documentation
    cannot drift from the faults a scenario may name (a test compares the two)."""

    def params(cls: type[Fault]) -> str:
        if not cls.params:
            return "none"
        parts = []
        for key, spec in cls.params.items():
            default = ", required" if spec.required else ""
            default += "" if spec.default is None else f", default {spec.default!r}"
            parts.append(f"`{key}` ({spec.describe()}{default})")
        return ", ".join(parts)

    rows = ["| fault | what it does | parameters |", "| --- | --- | --- |"]
    rows += [f"| `{n}` | {REGISTRY[n].description}. | {params(REGISTRY[n])} |" for n in sorted(REGISTRY)]
    return "\n".join(rows) + "\n"
