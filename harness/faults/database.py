"""Server faults on the embedded Postgres: restart, crash (SIGKILL of every server process), pause."""

from __future__ import annotations

from typing import Any

import psutil

from harness.faults.base import Fault, FaultContext, Param, param, register


@register
class PostgresRestart(Fault):
    name = "postgres-restart"
    description = "stop the server (fast or immediate) and start it again at once; clients must reconnect"
    params = {"mode": Param(str, "fast", ("smart", "fast", "immediate"))}
    needs_own_server = True
    instantaneous = True

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.state["old_pid"] = ctx.provider.postmaster_pid()
        ctx.provider.restart(param(ctx, "mode", PostgresRestart))
        return {"old_pid": ctx.state["old_pid"], "new_pid": ctx.provider.postmaster_pid()}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        new = ctx.provider.postmaster_pid()
        return new != ctx.state.get("old_pid"), f"postmaster pid {ctx.state.get('old_pid')} -> {new}"


@register
class PostgresCrash(Fault):
    name = "postgres-crash"
    description = (
        "SIGKILL the postmaster and every backend (a machine crash); heal starts it again (crash recovery)"
    )
    params = {}
    needs_own_server = True

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.state["old_pid"] = ctx.provider.postmaster_pid()
        ctx.provider.crash()
        return {"killed_pid": ctx.state["old_pid"]}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        old = ctx.state.get("old_pid")
        gone = old is not None and not psutil.pid_exists(old)
        return gone, f"postmaster {old} {'gone' if gone else 'still alive'}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.provider.start_again()
        return {"new_pid": ctx.provider.postmaster_pid()}


@register
class PostgresPause(Fault):
    name = "postgres-pause"
    description = "SIGSTOP every server process: connections hang, nothing is lost; heal SIGCONTs"
    params = {}
    needs_own_server = True

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.provider.pause()
        return {}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        try:
            status = psutil.Process(ctx.provider.postmaster_pid()).status()
        except psutil.Error:
            return False, "postmaster gone"
        return status == psutil.STATUS_STOPPED, f"postmaster state {status}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.provider.resume()
        return {}
