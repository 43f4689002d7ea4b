"""Trigger faults: the core trigger off (three ways) and the projection trigger off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from harness.errors import HarnessError
from harness.faults.base import Fault, FaultContext, Param, param, register

CORE = "on_document_entity_events_change"  # the RFC's name for the core trigger


@register
class DisableCoreTrigger(Fault):
    name = "disable-core-trigger"
    description = (
        "the core trigger stops materializing jobs: by ALTER TABLE ... DISABLE TRIGGER (alter), by "
        "writers whose session_replication_role = replica, which skips triggers while the catalog still "
        "says enabled (replica), or by dropping it (drop); heal re-enables it and replays the events "
        "that got no job, as the not-enqueued runbook prescribes"
    )
    params = {"method": Param(str, "alter", ("alter", "replica", "drop")), "replay": Param(bool, True)}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        # Without a replay, the events appended while the trigger was off keep no job after the heal: the
        # harness would then blame the pipeline for damage its own fault left behind.
        return ("replay",) if params.get("replay", True) else ()

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        method = param(ctx, "method", DisableCoreTrigger)
        if method == "alter":
            ctx.sql("disable_core_trigger", fetch=False)
        elif method == "drop":
            ctx.state["definition"] = ctx.sql("trigger_def", {"name": CORE})[0][0]
            ctx.sql("drop_core_trigger", fetch=False)
        else:
            ctx.workload.replica_writers = True
        return {"method": method}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        method = param(ctx, "method", DisableCoreTrigger)
        rows = ctx.sql("trigger_state", {"name": CORE})
        if method == "alter":
            return bool(
                rows and rows[0][0] == "D"
            ), f"pg_trigger.tgenabled = {rows[0][0] if rows else 'absent'}"
        if method == "drop":
            return not rows, "trigger absent from pg_trigger" if not rows else "trigger still present"
        writes = ctx.workload.replica_writes if ctx.workload else 0
        return (
            writes > 0,
            f"{writes} request(s) appended by replica-role writers; catalog says {rows[0][0] if rows else '?'}",
        )

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        method = param(ctx, "method", DisableCoreTrigger)
        if method == "alter":
            ctx.sql("enable_core_trigger", fetch=False)
        elif method == "drop" and "definition" in ctx.state and not ctx.sql("trigger_state", {"name": CORE}):
            with psycopg.connect(ctx.dsn, autocommit=True) as conn:
                conn.execute(ctx.state["definition"])  # the trigger's own definition, read before dropping it
        if ctx.workload is not None:
            ctx.workload.replica_writers = False
        replayed = 0
        statement = ctx.sut_sql.sut.conventions.replay
        if param(ctx, "replay", DisableCoreTrigger) and statement:
            rows = ctx.execute(statement, {"window_s": 3600})
            replayed = int(rows[0][0] or 0) if rows and rows[0] and isinstance(rows[0][0], int) else 0
        return {"replayed": replayed}


@register
class DisableProjectionTrigger(Fault):
    name = "disable-projection-trigger"
    description = "the best-effort user_documents projection stops; the pipeline must not notice"
    params = {}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return ("projection-trigger",)

    def _alter(self, ctx: FaultContext, action: str) -> None:
        name = ctx.sut_sql.facts.projection_trigger
        if name is None:  # requires() names the capability, so a scenario without it never starts this
            raise HarnessError("the pipeline has no projection trigger to disable")
        with psycopg.connect(ctx.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER TABLE document_entities {} TRIGGER {}").format(
                    sql.SQL(action), sql.Identifier(name)
                )
            )

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        self._alter(ctx, "DISABLE")
        return {"trigger": ctx.sut_sql.facts.projection_trigger}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        rows = ctx.sql("trigger_state", {"name": ctx.sut_sql.facts.projection_trigger})
        return bool(rows and rows[0][0] == "D"), f"pg_trigger.tgenabled = {rows[0][0] if rows else 'absent'}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        self._alter(ctx, "ENABLE")
        return {}
