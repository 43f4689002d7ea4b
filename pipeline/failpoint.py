"""Named failpoints inside the workers, armed at run time to crash, hang or raise at exactly one point.

The idea of TiKV's `fail` and Go's `gofail`: code calls `failpoints.hit("orchestrator.after_side_effect")`
at the points where a fault is interesting; unarmed, that is one dict lookup. A failpoint is armed by the
environment at start (`PIPELINE_FAILPOINTS="name=action;name=action"`) or at run time with
`SELECT arm_failpoint(name, action)`, which notifies every worker to reload. Every hit is counted in the
`failpoints` table before the action runs, so a harness can prove the fault took effect, and so `N*action`
fires N times in all, across restarts of the worker.

Actions: `crash` (SIGKILL this process), `hang` or `hang(S)` (sleep S seconds, forever if absent),
`raise` or `raise(message)`, `sleep(MS)`, `off`; an optional `N*` prefix limits the hits that act.

A failpoint can be scoped to a job type, `name@type` (e.g. `orchestrator.before_result_event@tsa`): it acts
only when the work at that point includes a job of that type, so a crash after a side effect can be aimed at
the steps that call an external service rather than at whichever batch comes first. Hits of a scoped
failpoint are counted under its scoped name.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.errors import FailpointError, PipelineError

POINTS: tuple[str, ...] = (
    "fase1.after_claim",
    "fase1.before_commit",
    "orchestrator.after_claim",
    "orchestrator.after_side_effect",
    "orchestrator.before_result_event",
    "orchestrator.before_commit",
)

_ACTION = re.compile(r"^(?:(?P<count>\d+)\*)?(?P<verb>crash|hang|raise|sleep|off)(?:\((?P<arg>[^)]*)\))?$")


class BadFailpoint(PipelineError):
    """Bad failpoint specification: use name=[N*]crash|hang[(S)]|raise[(msg)]|sleep(MS)|off."""


@dataclass(frozen=True)
class Action:
    verb: str
    arg: str | None
    count: int | None
    text: str


def parse_action(text: str) -> Action:
    match = _ACTION.match(text.strip())
    if not match:
        raise BadFailpoint(
            f"bad failpoint action {text!r}; expected [N*]crash|hang[(S)]|raise[(msg)]|sleep(MS)|off"
        )
    count = match.group("count")
    return Action(match.group("verb"), match.group("arg"), int(count) if count else None, text.strip())


def parse_spec(spec: str) -> dict[str, Action]:
    """Parse `name=action;name=action` (the PIPELINE_FAILPOINTS format)."""
    armed: dict[str, Action] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, action = part.partition("=")
        if not sep:
            raise BadFailpoint(f"bad failpoint {part!r}; expected name=action")
        if name.strip().partition("@")[0] not in POINTS:
            raise BadFailpoint(
                f"unknown failpoint {name.strip()!r}; known: {', '.join(POINTS)} (each may be @type)"
            )
        armed[name.strip()] = parse_action(action)
    return armed


class Failpoints:
    """The armed failpoints of one worker process. `record` counts a hit durably and returns the count."""

    def __init__(self, record: Callable[[str, str], int]) -> None:
        self._record = record
        self._armed: dict[str, Action] = parse_spec(os.environ.get("PIPELINE_FAILPOINTS", ""))

    def load(self, rows: list[tuple[str, str]]) -> None:
        """Replace the run-time armed set with rows read from the failpoints table (environment ones stay)."""
        fresh = parse_spec(os.environ.get("PIPELINE_FAILPOINTS", ""))
        for name, action in rows:
            try:
                fresh[name] = parse_action(action)
            except BadFailpoint:
                continue  # a bad row must not take a worker down; the arming call validated what it could
        self._armed = fresh

    def hit(self, name: str, job_types: Iterable[str] = ()) -> None:
        """Act if `name` is armed, or `name@type` for one of the job types of the work at this point."""
        key, action = name, self._armed.get(name)
        if action is None:
            for job_type in sorted(set(job_types)):
                scoped = self._armed.get(f"{name}@{job_type}")
                if scoped is not None:
                    key, action = f"{name}@{job_type}", scoped
                    break
        if action is None or action.verb == "off":
            return
        hits = self._record(key, action.text)
        if action.count is not None and hits > action.count:
            return
        if action.verb == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action.verb == "hang":
            time.sleep(float(action.arg) if action.arg else 10**9)
        elif action.verb == "sleep":
            time.sleep(float(action.arg or 0) / 1000.0)
        elif action.verb == "raise":
            raise FailpointError(action.arg or f"failpoint {name} raised")
