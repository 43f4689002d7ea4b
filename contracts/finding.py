"""What a check reports: a finding names its rule, its level, where it is, what was found and the fix.

Findings cross every module boundary (checks -> allowlist -> output formats), so they are frozen records.
A finding is located either in a file (path relative to the source root, and a line) or on a schema object
of the live database (`object`, e.g. "function materialize_job"); a live finding may also carry the file
that defines the object, when a source tree was checked in the same run.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Level(StrEnum):
    """SARIF's levels. Only `error` is a violation (exit 1); warnings and notes are reported, never fatal."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    rule: str
    level: Level
    message: str
    fix: str
    path: str | None = None
    line: int | None = None
    object: str | None = None
    suppressed: str | None = None  # the allowlist's reason, when an entry covers this finding
    evidence: tuple[str, ...] = field(default=())

    @property
    def violation(self) -> bool:
        return self.level is Level.ERROR and self.suppressed is None

    @property
    def where(self) -> str:
        """`path:line`, or the schema object, or both, for people."""
        place = f"{self.path}:{self.line or 1}" if self.path else ""
        if self.object:
            return f"{place} ({self.object})" if place else self.object
        return place or "(no location)"

    def located(self, path: str | None, line: int | None) -> Finding:
        return replace(self, path=path, line=line)

    def suppress(self, reason: str) -> Finding:
        return replace(self, suppressed=reason)

    def as_dict(self) -> dict[str, builtins.object]:  # `object` in this class is the field
        return {
            "rule": self.rule,
            "level": str(self.level),
            "message": self.message,
            "fix": self.fix,
            "path": self.path,
            "line": self.line,
            "object": self.object,
            "suppressed": self.suppressed,
            "evidence": list(self.evidence),
        }
