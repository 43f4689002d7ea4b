"""The history of a run: every operation and fault, as Jepsen records them, written as JSON Lines as it grows.

An op is `index, time, process, type, f, value, error`. `time` is seconds since the run started (monotonic);
`wall` is the wall clock, so ops line up with database timestamps. `type` is `invoke` (asked), `ok` (it
happened), `fail` (it certainly did not happen) or `info` (unknown: a timeout, a cut connection). Workload ops
have `process` = a client name; faults have `process` = "nemesis"; samples have `process` = "observer".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO


class OpType(StrEnum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True)
class Op:
    index: int
    time: float
    wall: float
    process: str
    type: OpType
    f: str
    value: Any = None
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "type": str(self.type)}, default=str, separators=(",", ":"))

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Op:
        return Op(
            data["index"],
            data["time"],
            data["wall"],
            data["process"],
            OpType(data["type"]),
            data["f"],
            data.get("value"),
            data.get("error"),
        )


class History:
    """Thread-safe, append-only; every op is flushed to `path` (when given) as soon as it is recorded."""

    def __init__(self, path: Path | None = None) -> None:
        self._ops: list[Op] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._file: TextIO | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def now(self) -> float:
        return time.monotonic() - self._t0

    def record(self, process: str, type_: OpType, f: str, value: Any = None, error: str | None = None) -> Op:
        with self._lock:
            op = Op(len(self._ops), round(self.now(), 6), time.time(), process, type_, f, value, error)
            self._ops.append(op)
            if self._file is not None:
                self._file.write(op.to_json() + "\n")
                self._file.flush()
        return op

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops())


def read_history(path: Path) -> list[Op]:
    with open(path, encoding="utf-8") as lines:
        return [Op.from_dict(json.loads(line)) for line in lines if line.strip()]


def pairs(ops: Iterable[Op], process_prefix: str = "") -> list[tuple[Op, Op | None]]:
    """Each invoke with its completion (the next op of the same process and f), or None if it never completed."""
    open_ops: dict[tuple[str, str], Op] = {}
    result: list[tuple[Op, Op | None]] = []
    index: dict[int, int] = {}
    for op in ops:
        if not op.process.startswith(process_prefix):
            continue
        key = (op.process, op.f)
        if op.type is OpType.INVOKE:
            open_ops[key] = op
            index[op.index] = len(result)
            result.append((op, None))
        elif key in open_ops:
            invoke = open_ops.pop(key)
            result[index[invoke.index]] = (invoke, op)
    return result
