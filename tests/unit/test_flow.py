"""The decision state machine, as a pure function of events."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.flow import ANCHORED, FAILED, REQUEST, STEPS, decide


def event(kind: str, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "payload": payload,
        "correlation_id": "c",
        "trace_id": "t" * 32,
    }


def apply(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append what decide asks for (as the decision worker would)."""
    for new in decide(events):
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": new.type,
                "payload": new.payload,
                "correlation_id": new.correlation_id,
                "trace_id": new.trace_id,
                "causation_id": new.causation_id,
            }
        )
    return events


def complete(step: str) -> dict[str, Any]:
    results = {
        "protect": {"sha256": "ab" * 32},
        "tsa": {"token": {"serial": 7}, "signature": "cd" * 32},
        "anchor": {"receipt": {"height": 3}},
    }
    return event(f"job.{step}.completed", **results[step])


def test_a_full_flow_in_order() -> None:
    events = apply([event(REQUEST, document="doc")])
    assert events[-1]["type"] == "job.protect.required" and events[-1]["payload"] == {"document": "doc"}
    for step, following in zip(STEPS, [*STEPS[1:], None], strict=True):
        events.append(complete(step))
        apply(events)
        if following:
            assert events[-1]["type"] == f"job.{following}.required"
    assert events[-1]["type"] == ANCHORED
    assert events[-1]["payload"] == {"sha256": "ab" * 32, "tsa_serial": 7, "anchor_height": 3}
    assert {e["correlation_id"] for e in events} == {"c"}


def test_tsa_and_anchor_receive_what_the_steps_before_produced() -> None:
    events = [event(REQUEST, document="d"), event("job.protect.required"), complete("protect")]
    assert decide(events)[0].payload == {"digest": "ab" * 32}
    events += [event("job.tsa.required"), complete("tsa")]
    assert decide(events)[0].payload == {"digest": "ab" * 32, "tsa_signature": "cd" * 32}


def test_a_dead_step_fails_the_flow_once() -> None:
    events = [event(REQUEST), event("job.protect.required"), event("job.protect.failed", reason="poison")]
    (failed,) = decide(events)
    assert failed.type == FAILED and failed.payload == {"step": "protect", "reason": "poison"}
    events.append(event(FAILED))
    assert decide(events) == []


def test_nothing_to_do_without_a_request() -> None:
    assert decide([]) == [] and decide([event("job.protect.completed")]) == []


kinds = st.sampled_from(
    [
        REQUEST,
        "job.protect.required",
        "job.protect.completed",
        "job.tsa.required",
        "job.tsa.completed",
        "job.anchor.required",
        "job.anchor.completed",
        "job.tsa.failed",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(kinds, max_size=12), st.integers(min_value=1, max_value=4))
def test_deciding_is_idempotent_and_a_repeated_request_starts_nothing(
    prefix: list[str], repeats: int
) -> None:
    events = [complete(k.split(".")[1]) if k.endswith(".completed") else event(k) for k in prefix]
    apply(events)
    assert decide(events) == []  # a second decision over the same events asks for nothing
    before = len(events)
    for _ in range(repeats):
        events.append(event(REQUEST, document="again"))
        apply(events)
    requires = [e["type"] for e in events[before:] if e["type"].endswith(".required")]
    already = {e["type"] for e in events[:before]}
    assert not [r for r in requires if r in already]  # never a second required event for a started step
