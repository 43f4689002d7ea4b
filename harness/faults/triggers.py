"""Trigger faults: the core trigger off (three ways) and the projection trigger off."""

from __future__ import annotations

from typing import Any

import psycopg

from harness.faults.base import Fault, FaultContext, Param, param, register

CORE = "on_document_entity_events_change"
PROJECTION = "project_user_documents"


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
        if param(ctx, "replay", DisableCoreTrigger) and ctx.sql("replay_available")[0][0]:
            replayed = int(ctx.sql("replay_missed", {"window_s": 3600})[0][0] or 0)
        return {"replayed": replayed}


@register
class DisableProjectionTrigger(Fault):
    name = "disable-projection-trigger"
    description = "the best-effort user_documents projection stops; the pipeline must not notice"
    params = {}

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.sql("disable_projection_trigger", fetch=False)
        return {}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        rows = ctx.sql("trigger_state", {"name": PROJECTION})
        return bool(rows and rows[0][0] == "D"), f"pg_trigger.tgenabled = {rows[0][0] if rows else 'absent'}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.sql("enable_projection_trigger", fetch=False)
        return {}
