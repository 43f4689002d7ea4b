"""The nemesis heals every fault it started, even one whose start was cut short by Ctrl-C."""

from __future__ import annotations

from typing import Any

import pytest

from harness.faults.base import REGISTRY, Fault
from harness.history import History
from harness.nemesis import Nemesis
from harness.records import FaultSpec


class _Interrupted(Fault):
    """Stands for a fault whose start waits (for a lock, a process) when the user presses Ctrl-C."""

    name = "interrupted-start"
    description = "start is interrupted"
    params: dict[str, Any] = {}
    healed: list[str] = []

    def start(self, ctx: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    def took_effect(self, ctx: Any) -> tuple[bool | None, str]:
        return None, "unknown"

    def heal(self, ctx: Any) -> dict[str, Any]:
        _Interrupted.healed.append("healed")
        return {}


def test_a_fault_interrupted_while_it_starts_is_still_healed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, _Interrupted.name, _Interrupted)
    _Interrupted.healed.clear()
    history = History()
    nemesis = Nemesis((FaultSpec(_Interrupted.name),), history, lambda spec, rng: None, seed=1)
    nemesis.begin()
    with pytest.raises(KeyboardInterrupt):
        nemesis.tick(workload_done=False)
    nemesis.heal_all()  # what the runner does on the way out
    assert _Interrupted.healed == ["healed"]
    assert [op.f for op in history.ops()] == ["start:interrupted-start", "heal:interrupted-start"]
    assert [w.fault for w in nemesis.windows] == ["interrupted-start"]
