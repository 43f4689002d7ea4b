"""Process faults: SIGKILL or SIGSTOP a worker role, and failpoints armed inside the workers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import psutil

from harness.faults.base import Fault, FaultContext, Param, param, register
from harness.sut.config import FAILPOINT_ACTIONS, FAILPOINT_POINTS, ROLES
from harness.wait import WaitTimeout, wait_until

# The kind of job each role holds: a kill or a pause of that role proves something only while it holds one.
ROLE_KIND = {"fase1-executor": "decision", "orchestrator": "execution"}
IN_FLIGHT_WAIT_S = 5.0
# After SIGSTOP, a statement the worker had already sent (its complete_job, say) still runs to its end on the
# server: the jobs still held this long after the signal are the ones the pause froze.
SIGNAL_SETTLE_S = 0.05


def _held_now(ctx: FaultContext, kind: str) -> list[Any]:
    """The jobs of `kind` held right now, kept with the database's clock for `confirm` (a job can finish
    between this read and the signal)."""
    now, ids = ctx.sql("in_flight", {"kind": kind})[0]
    ctx.state["held"], ctx.state["struck_at"] = list(ids), now
    return list(ids)


def _wait_for_work(ctx: FaultContext, role: str) -> int | None:
    """Wait (up to a bound) until workers of `role` hold at least one job; how many they hold then (None for
    a role that holds no jobs: the scheduler, the monitor). Hitting an idle worker proves nothing about
    recovery, so the fault strikes when there is work in flight, or its read-back says there was none."""
    kind = ROLE_KIND.get(role)
    if kind is None:
        return None

    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: _held_now(ctx, kind), IN_FLIGHT_WAIT_S, f"a {kind} job in flight", 0.02)
    return len(ctx.state["held"])


def _victims(ctx: FaultContext, role: str, count: int) -> list[Any]:
    """The role's workers to strike: all of them (count 0), or the first `count`."""
    workers = ctx.system.workers(role)
    return workers if count <= 0 else workers[:count]


def _held(ctx: FaultContext) -> tuple[bool, str]:
    held = ctx.state.get("in_flight")
    if held is None:
        return True, ""
    return (
        held > 0,
        f"; {held} job(s) in flight when it struck"
        if held
        else "; no job was held when it struck (tried for 5 s)",
    )


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
    description = (
        "SIGKILL the workers of a role (all, or `count` of them) while they hold work (it waits up to 5 s for a "
        "job in flight); heal restarts them"
    )
    params = {"role": Param(str, "orchestrator", ROLES), "count": Param(int, 0)}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"role:{params.get('role', 'orchestrator')}",)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        role = param(ctx, "role", KillWorker)
        ctx.state["in_flight"] = _wait_for_work(ctx, role)
        victims = _victims(ctx, role, param(ctx, "count", KillWorker))
        for managed in victims:
            ctx.system.supervisor.kill(managed.name)
        ctx.state["victims"] = [m.name for m in victims]
        return {"killed": ctx.state["victims"], "in_flight": ctx.state["in_flight"]}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        names = ctx.state.get("victims", [])
        dead = [n for n in names if not ctx.system.supervisor.get(n).alive]
        held, note = _held(ctx)
        return (
            bool(names) and len(dead) == len(names) and held,
            f"seen dead: {', '.join(dead) or 'none'} of {len(names)}{note}",
        )

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        return {"restarted": _restart_dead(ctx)}

    def confirm(self, ctx: FaultContext) -> tuple[bool | None, str] | None:
        """The kill left work behind: some job held when it struck ran again later, taken back from the dead
        worker's lease, or its run from before the kill is still open (left with the dead worker; the
        liveness checks judge whether that is stuck). Neither: the victims had finished their work before
        the signal landed."""
        held = ctx.state.get("held")
        if not held:
            return None
        args = {"ids": held, "at": ctx.state["struck_at"]}
        again = int(ctx.sql("ran_again", args)[0][0])
        left = int(ctx.sql("left_behind", args)[0][0])
        if again or left:
            parts = [f"{again} ran again after it"] if again else []
            parts += [f"{left} still in the dead worker's run at the final read"] if left else []
            return True, f"of the {len(held)} job(s) held at the kill: {'; '.join(parts)}"
        return False, (
            f"none of the {len(held)} job(s) held when it struck ran again: the killed worker(s) had finished "
            "them before the signal landed, so nothing was left to recover"
        )


@register
class PauseWorker(Fault):
    name = "pause-worker"
    description = (
        "SIGSTOP the workers of a role (all, or `count` of them) while they hold work: frozen with their "
        "leases and connections; heal SIGCONTs"
    )
    params = {"role": Param(str, "orchestrator", ROLES), "count": Param(int, 0)}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"role:{params.get('role', 'orchestrator')}",)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        """Pause while the role holds work, and make sure the pause caught some: jobs of a fast step often
        finish between the read that saw them and the signal, so a pause that froze nothing is lifted at once
        and tried again, within the in-flight bound."""
        role = param(ctx, "role", PauseWorker)
        victims = _victims(ctx, role, param(ctx, "count", PauseWorker))
        ctx.state["victims"] = [m.name for m in victims]
        kind = ROLE_KIND.get(role)
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        tries = 0
        while True:
            tries += 1
            ctx.state["in_flight"] = _wait_for_work(ctx, role)
            for managed in victims:
                ctx.system.supervisor.pause(managed.name)
            if kind is None or not ctx.state["in_flight"]:
                break
            time.sleep(SIGNAL_SETTLE_S)
            frozen = _held_now(ctx, kind)
            if frozen or time.monotonic() >= deadline:
                ctx.state["in_flight"] = len(frozen)
                break
            for managed in victims:
                ctx.system.supervisor.resume(managed.name)
        return {"paused": ctx.state["victims"], "in_flight": ctx.state["in_flight"], "tries": tries}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        states: list[str] = []
        for name in ctx.state.get("victims", []):
            try:
                states.append(psutil.Process(ctx.system.supervisor.get(name).pid).status())
            except psutil.Error:
                states.append("gone")
        stopped = [s for s in states if s == psutil.STATUS_STOPPED]
        held, note = _held(ctx)
        return (
            bool(states) and len(stopped) == len(states) and held,
            f"process states: {', '.join(states) or 'none'}{note}",
        )

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        # read before the signal: a resumed worker finishes its frozen jobs within a millisecond, before a read
        # after SIGCONT would come back, and they would look finished before the resume
        ctx.state["resumed_at"] = ctx.sql("db_now")[0][0]
        for name in ctx.state.get("victims", []):
            ctx.system.supervisor.resume(name)
        return {"resumed": ctx.state.get("victims", [])}

    def confirm(self, ctx: FaultContext) -> tuple[bool | None, str] | None:
        """The pause froze work: some job held when it struck was still in its run when the worker resumed,
        or was taken back from its lease meanwhile."""
        held = ctx.state.get("held")
        if not held or "resumed_at" not in ctx.state:
            return None
        args = {"ids": held, "paused": ctx.state["struck_at"], "resumed": ctx.state["resumed_at"]}
        frozen = int(ctx.sql("held_through", args)[0][0])
        if frozen:
            return True, f"{frozen} of the {len(held)} job(s) held at the pause stayed frozen through it"
        return False, (
            f"none of the {len(held)} job(s) held when it struck was frozen by it: they finished before the "
            "signal landed"
        )


@register
class StopWorker(Fault):
    name = "stop-worker"
    description = (
        "stop every worker of a role gracefully (SIGTERM) and keep it down: nobody claims that role's jobs "
        "until heal starts them again"
    )
    params = {"role": Param(str, "orchestrator", ROLES)}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"role:{params.get('role', 'orchestrator')}",)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        victims = ctx.system.workers(param(ctx, "role", StopWorker))
        codes = {m.name: ctx.system.supervisor.stop(m.name, timeout_s=10) for m in victims}
        ctx.state["victims"] = list(codes)
        return {"stopped": codes}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        names = ctx.state.get("victims", [])
        down = [n for n in names if not ctx.system.supervisor.get(n).alive]
        return bool(names) and len(down) == len(
            names
        ), f"stopped: {', '.join(down) or 'none'} of {len(names)}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        return {"restarted": _restart_dead(ctx)}


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
        "job_type": Param(str, None),  # only where the work at that point includes a job of this type
        "restart": Param(bool, False),  # restart crashed workers while armed, as a process manager would
    }

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        scoped = ("failpoint-scope",) if params.get("job_type") else ()
        return (f"failpoint:{params.get('point')}", *scoped)

    def _name(self, ctx: FaultContext) -> str:
        name = ctx.sut_sql.failpoint(ctx.params["point"])
        job_type = ctx.params.get("job_type")
        template = ctx.sut_sql.sut.failpoints.scoped
        return template.format(name=name, job_type=job_type) if job_type and template else name

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        action = ctx.sut_sql.failpoint_action(param(ctx, "action", Failpoint))
        fp = ctx.sut_sql.sut.failpoints
        assert fp.arm is not None  # requires() made sure
        ctx.execute(fp.arm, {"name": self._name(ctx), "action": action}, fetch=False)
        return {"armed": self._name(ctx), "point": ctx.params["point"], "action": action}

    def tick(self, ctx: FaultContext) -> None:
        """With `restart`: a crashed worker is started again at once, as a process manager restarts a service
        that exits, so a crashing failpoint becomes a crash loop (what a real deployment would show)."""
        if param(ctx, "restart", Failpoint):
            restarted = _restart_dead(ctx)
            ctx.state["restarts"] = ctx.state.get("restarts", 0) + len(restarted)

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
