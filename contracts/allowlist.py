"""Justified exceptions: an allowlist entry suppresses the findings it matches, and must say why.

The file is TOML, a list of `[[allow]]` tables:

    [[allow]]
    rule = "PGC101"                 # required: the rule id
    path = "tests/**"               # a glob relative to the source root, or
    object = "function my_fn"       # a live schema object (exact), or both; one of them is required
    line = 12                       # optional: only this line
    contains = "dedupe"             # optional: only findings whose message contains this text
    reason = "tests plant direct inserts on purpose to prove the guard rejects them"   # required

A suppressed finding is still reported (text: counted; JSON: with its reason; SARIF: as a suppression with
the reason as justification), so exceptions stay visible. An entry that matches nothing is reported as
PGC107 (note), so stale exceptions get removed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import ContractInputError
from contracts.finding import Finding, Level
from contracts.pathglob import matches
from contracts.rules import BY_ID, rule


@dataclass(frozen=True)
class Entry:
    rule: str
    reason: str
    path: str | None = None
    object: str | None = None
    line: int | None = None
    contains: str | None = None
    index: int = 0
    at_line: int | None = None  # where the entry starts in the allowlist file

    def covers(self, finding: Finding) -> bool:
        if finding.rule != self.rule:
            return False
        if self.path is not None and (finding.path is None or not matches(finding.path, self.path)):
            return False
        if self.object is not None and finding.object != self.object:
            return False
        if self.line is not None and finding.line != self.line:
            return False
        return self.contains is None or self.contains in finding.message


@dataclass(frozen=True)
class Allowlist:
    entries: tuple[Entry, ...] = ()
    path: str | None = None

    def apply(self, findings: list[Finding], report_unused: bool = True) -> list[Finding]:
        """The findings with covered ones marked suppressed, plus a PGC107 note per unused entry."""
        used: set[int] = set()
        out = []
        for finding in findings:
            entry = next((e for e in self.entries if e.covers(finding)), None)
            if entry is None:
                out.append(finding)
            else:
                used.add(entry.index)
                out.append(finding.suppress(entry.reason))
        if report_unused:
            for entry in self.entries:
                if entry.index not in used:
                    where = entry.path or entry.object
                    out.append(
                        Finding(
                            "PGC107",
                            Level.NOTE,
                            f"allowlist entry {entry.index + 1} ({entry.rule} at {where}) matches no finding",
                            rule("PGC107").help,
                            path=self.path,
                            line=entry.at_line,
                            object=None,
                        )
                    )
        return out


def load_allowlist(path: Path | None, display: str | None = None) -> Allowlist:
    """Read and validate an allowlist; every problem is reported at once, naming the entry."""
    if path is None:
        return Allowlist()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractInputError(f"cannot read allowlist {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContractInputError(f"{path}: not valid TOML: {exc}") from exc
    raw = data.get("allow", [])
    problems: list[str] = []
    if not isinstance(raw, list):
        raise ContractInputError(f"{path}: expected [[allow]] tables")
    entries = []
    text = path.read_text(encoding="utf-8")
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith("[[allow]]")]
    for index, item in enumerate(raw):
        where = f"allow[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a table")
            continue
        unknown = set(item) - {"rule", "reason", "path", "object", "line", "contains"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if item.get("rule") not in BY_ID:
            problems.append(f"{where}.rule: {item.get('rule')!r} is not a rule id (one of {_ids()})")
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}.reason: missing; every exception needs its justification")
        if item.get("path") is None and item.get("object") is None:
            problems.append(f"{where}: give a path glob or a schema object to match")
        if "line" in item and not isinstance(item["line"], int):
            problems.append(f"{where}.line: expected an integer")
        entries.append(
            Entry(
                rule=str(item.get("rule")),
                reason=str(reason or "").strip(),
                path=item.get("path"),
                object=item.get("object"),
                line=item.get("line"),
                contains=item.get("contains"),
                index=index,
                at_line=starts[index] if index < len(starts) else None,
            )
        )
    if problems:
        raise ContractInputError(f"{path}: " + "; ".join(problems))
    return Allowlist(tuple(entries), display or str(path))


def _ids() -> str:
    ids = sorted(BY_ID)
    return f"{ids[0]}...{ids[-1]}" if ids else "none"
