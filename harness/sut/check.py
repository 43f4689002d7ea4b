"""`harness sut check FILE`: a pipeline held against the SUT contract before anything runs against it.

Applies the pipeline's migrations to a disposable database, checks the required objects (each missing one
named with what to add), lists the capabilities found and absent (with how and why), starts the pipeline's
services and workers once to see they come up, and says for each scenario of the chosen suites whether it can
run or is not applicable, and why. Exit 3 when a required object is missing or the system does not start.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, SutIncomplete
from harness.provision import Provider
from harness.provision.migrations import MigrationPlan
from harness.sut.adapter import SutSql
from harness.sut.config import Sut
from harness.sut.contract import CAPABILITIES, REQUIRED_ITEMS
from harness.sut.system import RunningSystem


@dataclass
class SutReport:
    sut: str
    migrations: str
    missing: list[str] = field(default_factory=list)
    present: dict[str, str] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)
    started: str | None = None  # None: not tried (required objects missing); "" ok; else why it failed
    scenarios: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.started

    def as_dict(self) -> dict[str, Any]:
        return {
            "sut": self.sut,
            "migrations": self.migrations,
            "ok": self.ok,
            "missing": self.missing,
            "capabilities": self.present,
            "absent": self.absent,
            "system_started": self.started == "",
            "start_problem": self.started or None,
            "scenarios": self.scenarios,
        }


def check_sut(
    sut: Sut,
    provider: Provider,
    scenarios: Sequence[Any],
    applicability: Callable[[Any, SutSql, dict[str, str]], list[str]],
) -> SutReport:
    """Judge `sut` on a fresh database of `provider`; `applicability(scenario, sql, found)` gives what each
    scenario lacks (the runner's rule, handed in so this module stays below the run loop)."""
    report = SutReport(sut.name, str(sut.migrations))
    with provider.database(MigrationPlan(sut.migrations)) as dsn:
        try:
            sql = SutSql.connect(sut, dsn)
        except SutIncomplete as exc:
            report.missing = list(exc.missing)
            return report
        report.present = dict(sql.facts.present)
        report.absent = dict(sql.facts.absent)
        found: dict[str, str] = {}
        try:
            with (
                tempfile.TemporaryDirectory(prefix="harness-sut-check-") as logs,
                RunningSystem(sut, dsn, Path(logs), sql=sql) as system,
            ):
                found = dict(system.found)
            report.started = ""
        except HarnessError as exc:
            report.started = str(exc)
        report.present.update(found)
        for scenario in scenarios:
            missing = applicability(scenario, sql, found)
            report.scenarios.append(
                {
                    "name": scenario.name,
                    "suites": list(scenario.suites),
                    "applies": not missing,
                    "missing": missing,
                }
            )
    return report


def render(report: SutReport) -> str:
    lines = [f"pipeline {report.sut!r} (migrations {report.migrations})", "", "required (the RFC's names):"]
    for item, what in REQUIRED_ITEMS:
        problem = next((m for m in report.missing if m.startswith(item)), None)
        lines.append(
            f"  {'MISSING' if problem else 'ok':<8} {item}: {problem.split(': ', 1)[1] if problem else what}"
        )
    for extra in (m for m in report.missing if not any(m.startswith(i) for i, _ in REQUIRED_ITEMS)):
        lines.append(f"  MISSING  {extra}")
    if report.missing:
        lines += ["", "add what is missing, or map it in the SUT file (harness/sut/CONTRACT.md); exit 3"]
        return "\n".join(lines)
    lines += ["", "capabilities found:"]
    for name in sorted(report.present, key=_order):
        lines.append(f"  + {name:<40} {report.present[name]}")
    lines += ["", "capabilities absent (what they would unlock):"]
    for name in sorted(report.absent, key=_order):
        unlocks = CAPABILITIES.get(name.split(":", 1)[0], ("", ""))[1]
        lines.append(f"  - {name:<40} {report.absent[name]}" + (f" (unlocks {unlocks})" if unlocks else ""))
    lines += [
        "",
        "system: "
        + ("started, every worker ready" if report.started == "" else f"did not start: {report.started}"),
    ]
    if report.scenarios:
        runs = sum(1 for s in report.scenarios if s["applies"])
        lines += ["", f"scenarios: {runs} can run, {len(report.scenarios) - runs} not applicable"]
        for s in report.scenarios:
            state = "runs" if s["applies"] else "not-applicable: " + "; ".join(s["missing"])
            lines.append(f"  {s['name']:<34} {state}")
    return "\n".join(lines)


def _order(name: str) -> tuple[int, str]:
    return (1 if ":" in name else 0, name)
