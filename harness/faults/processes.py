"""Process faults: SIGKILL or SIGSTOP a worker role, and failpoints armed inside the workers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psutil

from harness.faults.base import Fault, FaultContext, Param, param, register
from harness.sut.config import FAILPOINT_ACTIONS, FAILPOINT_POINTS, ROLES


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

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"role:{params.get('role', 'orchestrator')}",)

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

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"role:{params.get('role', 'orchestrator')}",)

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
    description = (
        "arm a failpoint inside the workers at a named point (crash, hang or raise exactly there; the SUT file "
        "maps each point to the pipeline's own failpoint); heal disarms it and restarts workers it crashed"
    )
    params = {
        "point": Param(str, None, FAILPOINT_POINTS, required=True),
        "action": Param(str, "crash-once", FAILPOINT_ACTIONS),
    }

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"failpoint:{params.get('point')}",)

    def _name(self, ctx: FaultContext) -> str:
        return ctx.sut_sql.failpoint(ctx.params["point"])

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        action = ctx.sut_sql.failpoint_action(param(ctx, "action", Failpoint))
        fp = ctx.sut_sql.sut.failpoints
        assert fp.arm is not None  # requires() made sure
        ctx.execute(fp.arm, {"name": self._name(ctx), "action": action}, fetch=False)
        return {"armed": self._name(ctx), "point": ctx.params["point"], "action": action}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        fp = ctx.sut_sql.sut.failpoints
        assert fp.hits is not None
        rows = ctx.execute(fp.hits, {"name": self._name(ctx)})
        hits = int(rows[0][0] or 0) if rows else 0
        ctx.state["hits"] = max(hits, ctx.state.get("hits", 0))
        return ctx.state["hits"] > 0, f"failpoint {self._name(ctx)} hit {ctx.state['hits']} time(s)"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        self.took_effect(ctx)
        fp = ctx.sut_sql.sut.failpoints
        assert fp.disarm is not None
        ctx.execute(fp.disarm, {"name": self._name(ctx)}, fetch=False)
        return {"hits": ctx.state.get("hits", 0), "restarted": _restart_dead(ctx)}
