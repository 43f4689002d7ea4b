"""Process faults: SIGKILL or SIGSTOP a worker role, and failpoints armed inside the workers."""

from __future__ import annotations

from typing import Any

import psutil

from harness.faults.base import Fault, FaultContext, Param, param, register

ROLES = ("fase1-executor", "orchestrator", "scheduler", "monitor")


def _restart_dead(ctx: FaultContext) -> list[str]:
    """Bring back every worker that is dead (killed, or crashed by a failpoint), as a service manager would."""
    restarted = []
    for managed in ctx.system.workers():
        if not managed.alive:
            ctx.system.supervisor.restart(managed.name)
            restarted.append(managed.name)
    return restarted


@register
class KillWorker(Fault):
    name = "kill-worker"
    description = "SIGKILL every worker of a role mid-whatever it is doing; heal restarts them"
    params = {"role": Param(str, "orchestrator", ROLES)}

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        victims = ctx.system.workers(param(ctx, "role", KillWorker))
        for managed in victims:
            ctx.system.supervisor.kill(managed.name)
        ctx.state["victims"] = [m.name for m in victims]
        return {"killed": ctx.state["victims"]}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        names = ctx.state.get("victims", [])
        dead = [n for n in names if not ctx.system.supervisor.get(n).alive]
        return bool(names) and len(dead) == len(
            names
        ), f"seen dead: {', '.join(dead) or 'none'} of {len(names)}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        return {"restarted": _restart_dead(ctx)}


@register
class PauseWorker(Fault):
    name = "pause-worker"
    description = (
        "SIGSTOP every worker of a role (it holds its leases and connections, frozen); heal SIGCONTs"
    )
    params = {"role": Param(str, "orchestrator", ROLES)}

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        victims = ctx.system.workers(param(ctx, "role", PauseWorker))
        for managed in victims:
            ctx.system.supervisor.pause(managed.name)
        ctx.state["victims"] = [m.name for m in victims]
        return {"paused": ctx.state["victims"]}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        states = []
        for name in ctx.state.get("victims", []):
            try:
                states.append(psutil.Process(ctx.system.supervisor.get(name).pid).status())
            except psutil.Error:
                states.append("gone")
        stopped = [s for s in states if s == psutil.STATUS_STOPPED]
        return bool(states) and len(stopped) == len(states), f"process states: {', '.join(states) or 'none'}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        for name in ctx.state.get("victims", []):
            ctx.system.supervisor.resume(name)
        return {"resumed": ctx.state.get("victims", [])}


@register
class Failpoint(Fault):
    name = "failpoint"
    description = "arm a named failpoint inside the workers (crash, hang, raise at exactly one point); heal disarms it and restarts workers it crashed"
    params = {
        "name": Param(
            str,
            None,
            (
                "fase1.after_claim",
                "fase1.before_commit",
                "orchestrator.after_claim",
                "orchestrator.after_side_effect",
                "orchestrator.before_result_event",
                "orchestrator.before_commit",
            ),
            required=True,
        ),
        "action": Param(str, "1*crash"),
    }

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.sql("arm_failpoint", {"name": ctx.params["name"], "action": param(ctx, "action", Failpoint)})
        return {"armed": ctx.params["name"], "action": param(ctx, "action", Failpoint)}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        hits = int(ctx.sql("failpoint_hits", {"name": ctx.params["name"]})[0][0])
        ctx.state["hits"] = max(hits, ctx.state.get("hits", 0))
        return ctx.state["hits"] > 0, f"failpoint {ctx.params['name']} hit {ctx.state['hits']} time(s)"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        self.took_effect(ctx)
        ctx.sql("disarm_failpoint", {"name": ctx.params["name"]})
        return {"hits": ctx.state.get("hits", 0), "restarted": _restart_dead(ctx)}
