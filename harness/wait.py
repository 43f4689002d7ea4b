"""Waiting on signals, never on bare sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class WaitTimeout(AssertionError):
    """A condition did not come true in time."""


def wait_until(
    predicate: Callable[[], Any], timeout: float = 30, describe: str = "condition", interval: float = 0.05
) -> Any:
    """Poll `predicate` until it returns a truthy value and return that value; on timeout raise WaitTimeout
    saying what was awaited and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {describe}; last value: {last!r}")
        time.sleep(interval)
