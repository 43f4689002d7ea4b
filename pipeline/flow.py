"""The decision worker's state machine: a pure function of an entity's events.

`decide(events)` says which events to append next, and nothing else: no I/O, no clock. Because it reads only
the canonical events, it is idempotent: run twice over the same events it asks for nothing the second time,
so a duplicated request, a re-delivered decision job or a retried decision never starts a second flow.

A flow: document.protect.requested -> job.protect.required -> job.protect.completed -> job.tsa.required ->
... -> job.anchor.completed -> document.anchored. A job.<step>.failed (the job is dead) ends the flow with
document.failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STEPS: tuple[str, ...] = ("protect", "tsa", "anchor")
REQUEST = "document.protect.requested"
ANCHORED = "document.anchored"
FAILED = "document.failed"

Event = Mapping[str, Any]


@dataclass(frozen=True)
class NewEvent:
    """An event the decision asks to append, under the flow's correlation and trace ids."""

    type: str
    payload: dict[str, Any]
    causation_id: str | None
    correlation_id: str | None = None
    trace_id: str | None = None


@dataclass
class _Fold:
    request: Event | None = None
    closed: bool = False
    required: set[str] = field(default_factory=set)
    completed: dict[str, Event] = field(default_factory=dict)
    failed: dict[str, Event] = field(default_factory=dict)


def _fold(events: Sequence[Event]) -> _Fold:
    state = _Fold()
    for event in events:
        kind = event.get("type", "")
        if kind == REQUEST and state.request is None:
            state.request = event
        elif kind in (ANCHORED, FAILED):
            state.closed = True
        elif kind.startswith("job.") and kind.count(".") == 2:
            _, step, outcome = kind.split(".")
            if outcome == "required":
                state.required.add(step)
            elif outcome == "completed":
                state.completed.setdefault(step, event)
            elif outcome == "failed":
                state.failed.setdefault(step, event)
    return state


def step_payload(step: str, request: Event, completed: Mapping[str, Event]) -> dict[str, Any]:
    """What each step needs from the request and the steps before it."""
    if step == "protect":
        return {"document": request.get("payload", {}).get("document", "")}
    protect = completed["protect"].get("payload", {})
    if step == "tsa":
        return {"digest": protect.get("sha256")}
    tsa = completed["tsa"].get("payload", {})
    return {"digest": protect.get("sha256"), "tsa_signature": tsa.get("signature")}


def decide(events: Sequence[Event]) -> list[NewEvent]:
    """The events to append so the entity's flow advances; empty when there is nothing to do."""
    state = _fold(events)
    request = state.request
    if request is None or state.closed:
        return []
    ids = {"correlation_id": request.get("correlation_id"), "trace_id": request.get("trace_id")}
    previous: Event = request
    for step in STEPS:
        if step in state.completed:
            previous = state.completed[step]
            continue
        if step in state.failed:
            failure = state.failed[step]
            reason = failure.get("payload", {}).get("reason", "unknown")
            return [NewEvent(FAILED, {"step": step, "reason": reason}, failure.get("id"), **ids)]
        if step in state.required:
            return []  # under way
        payload = step_payload(step, request, state.completed)
        return [NewEvent(f"job.{step}.required", payload, previous.get("id"), **ids)]
    summary = {
        "sha256": state.completed["protect"].get("payload", {}).get("sha256"),
        "tsa_serial": state.completed["tsa"].get("payload", {}).get("token", {}).get("serial"),
        "anchor_height": state.completed["anchor"].get("payload", {}).get("receipt", {}).get("height"),
    }
    return [NewEvent(ANCHORED, summary, previous.get("id"), **ids)]
