"""The nemesis: runs a scenario's fault timeline beside the workload.

Each fault starts at its `at` (seconds after the workload starts) and heals after its `duration`, or when the
workload ends. While a fault is on, whether it took effect is read back until it has; heal always runs, also
when the run is interrupted, and every start and heal is an `info` op of process "nemesis" in the history.
"""

from __future__ import annotations

import dataclasses
import random
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from harness.faults import REGISTRY, Fault, FaultContext
from harness.history import History, OpType
from harness.records import FaultEffects, FaultSpec, FaultWindow


@dataclass
class _Active:
    spec: FaultSpec
    fault: Fault
    ctx: FaultContext
    start: float
    start_wall: float
    heal_at: float | None
    took_effect: bool | None = None
    evidence: str = ""
    end: float | None = None
    end_wall: float | None = None
    start_error: str | None = None


@dataclass
class Nemesis:
    specs: tuple[FaultSpec, ...]
    history: History
    make_context: Any  # Callable[[FaultSpec, random.Random], FaultContext]
    seed: int
    windows: list[FaultWindow] = field(default_factory=list)
    _healed: list[_Active] = field(default_factory=list)  # in the order of `windows`
    _pending: list[FaultSpec] = field(default_factory=list)
    _active: list[_Active] = field(default_factory=list)
    _t0: float = 0.0

    def begin(self) -> None:
        self._t0 = time.monotonic()
        self._pending = sorted(self.specs, key=lambda s: s.at)

    def tick(self, workload_done: bool) -> None:
        """Start what is due, read back what is on, heal what has run its course."""
        now = time.monotonic() - self._t0
        while self._pending and self._pending[0].at <= now:
            self._start(self._pending.pop(0), now)
        for active in list(self._active):
            if active.start_error is None:
                try:
                    active.fault.tick(active.ctx)
                except Exception as exc:  # a fault's own upkeep must not end the run
                    active.evidence += f"; tick failed: {type(exc).__name__}: {exc}"
            if active.took_effect is not True and active.start_error is None:
                self._read_back(active)
            due = active.heal_at is not None and now >= active.heal_at
            if due or (active.heal_at is None and workload_done) or active.fault.instantaneous:
                self._heal(active)

    @property
    def done(self) -> bool:
        return not self._pending and not self._active

    def heal_all(self) -> None:
        """Heal everything still on (the end of the run, an error, Ctrl-C); never raises."""
        self._pending.clear()
        for active in list(self._active):
            self._heal(active)

    def _start(self, spec: FaultSpec, now: float) -> None:
        fault = REGISTRY[spec.fault]()
        ctx = self.make_context(spec, random.Random(f"{self.seed}:{spec.label}:{spec.at}"))
        active = _Active(
            spec, fault, ctx, now, time.time(), None if spec.duration is None else now + spec.duration
        )
        self.history.record("nemesis", OpType.INVOKE, f"start:{spec.fault}", {"label": spec.label})
        # Registered before it starts: a start cut short (Ctrl-C while it waits for a lock) is healed too,
        # and every heal is safe on a fault that never fully took hold.
        self._active.append(active)
        try:
            evidence = fault.start(ctx)
            self.history.record(
                "nemesis", OpType.INFO, f"start:{spec.fault}", {"label": spec.label, **evidence}
            )
        except Exception as exc:  # a fault that cannot be injected makes the run unknown, not a crash
            active.start_error = f"{type(exc).__name__}: {exc}"
            active.took_effect, active.evidence = False, f"could not start: {active.start_error}"
            self.history.record(
                "nemesis",
                OpType.FAIL,
                f"start:{spec.fault}",
                {"label": spec.label},
                traceback.format_exc(limit=3),
            )

    def _read_back(self, active: _Active) -> None:
        try:
            took, evidence = active.fault.took_effect(active.ctx)
        except Exception as exc:
            took, evidence = None, f"read-back failed: {type(exc).__name__}: {exc}"
        if took or active.took_effect is None or not active.evidence:
            active.took_effect, active.evidence = took, evidence

    def _heal(self, active: _Active) -> None:
        if active.start_error is None and active.took_effect is not True:
            self._read_back(active)  # a last look while the fault is still on
        self._active.remove(active)
        now = time.monotonic() - self._t0
        try:
            evidence = active.fault.heal(active.ctx)
            self.history.record(
                "nemesis", OpType.INFO, f"heal:{active.spec.fault}", {"label": active.spec.label, **evidence}
            )
        except Exception as exc:
            self.history.record(
                "nemesis",
                OpType.FAIL,
                f"heal:{active.spec.fault}",
                {"label": active.spec.label},
                f"{type(exc).__name__}: {exc}",
            )
            active.evidence += f"; heal failed: {type(exc).__name__}: {exc}"
        self.windows.append(
            FaultWindow(
                fault=active.spec.fault,
                label=active.spec.label,
                start=round(self.history.now() - (now - active.start), 3),
                end=round(self.history.now(), 3),
                start_wall=active.start_wall,
                end_wall=time.time(),
                took_effect=active.took_effect,
                evidence=active.evidence,
                effects=self._effects(active),
            )
        )
        self._healed.append(active)

    def _effects(self, active: _Active) -> FaultEffects:
        try:
            return active.fault.effects(active.ctx)
        except Exception as exc:  # the window keeps what the fault could not say, as evidence
            active.evidence += f"; effects unreadable: {type(exc).__name__}: {exc}"
            return FaultEffects()

    def confirm_all(self) -> None:
        """After the drain: a fault whose proof shows only later (a kill proves itself when the jobs it left
        on a dead worker's lease run again) confirms or withdraws its window's took_effect; never raises."""
        for index, active in enumerate(self._healed):
            if active.start_error is not None or active.took_effect is not True:
                continue
            try:
                found = active.fault.confirm(active.ctx)
            except Exception as exc:
                found = None, f"confirmation failed: {type(exc).__name__}: {exc}"
            if found is None:
                continue
            took, evidence = found
            window = self.windows[index]
            self.windows[index] = dataclasses.replace(
                window, took_effect=took, evidence=f"{window.evidence}; {evidence}"
            )
            self.history.record(
                "nemesis",
                OpType.INFO,
                f"confirm:{active.spec.fault}",
                {"label": active.spec.label, "took_effect": took, "evidence": evidence},
            )
