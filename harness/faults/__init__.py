"""The nemesis catalogue: every fault the harness can inject, by name. A new fault is one new class."""

from __future__ import annotations

from harness.faults import database, events, network, processes, services, triggers  # noqa: F401 (register)
from harness.faults.base import REGISTRY, Fault, FaultContext, Param

__all__ = ["REGISTRY", "Fault", "FaultContext", "Param"]
