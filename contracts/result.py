"""One run of the contracts: what was checked and every finding, in the order people read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.finding import Finding, Level

_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.NOTE: 2}


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    rules_run: list[str] = field(default_factory=list)  # the rule ids that were checked in this run
    source: str | None = None  # the source root checked, as given
    files: int = 0
    statements: int = 0
    server: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.violation]

    @property
    def ok(self) -> bool:
        return not self.violations

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (
                f.suppressed is not None,
                _ORDER[f.level],
                f.rule,
                f.path or "",
                f.line or 0,
                f.object or "",
            ),
        )

    def summary(self) -> str:
        counts = {
            level: sum(1 for f in self.findings if f.level is level and f.suppressed is None)
            for level in Level
        }
        suppressed = sum(1 for f in self.findings if f.suppressed is not None)
        checked = []
        if self.source is not None:
            checked.append(f"source {self.source} ({self.files} files, {self.statements} SQL statements)")
        if self.server:
            checked.append(f"database {self.server.get('database')} (Postgres {self.server.get('version')})")
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{verdict}: {counts[Level.ERROR]} violation(s), {counts[Level.WARNING]} warning(s), "
            f"{counts[Level.NOTE]} note(s), {suppressed} allowlisted; {len(self.rules_run)} rules on "
            + " and ".join(checked)
        )
