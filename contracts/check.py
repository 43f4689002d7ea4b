"""One contracts run: the static checks over a source tree and/or the live checks against a DSN, then the
allowlist, then live findings located on the files that define their objects."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from contracts.allowlist import load_allowlist
from contracts.config import Config
from contracts.finding import Finding
from contracts.result import CheckResult
from contracts.rules import RULES

DEFINED_KINDS = ("function", "trigger", "view", "table")  # live objects a migration of the tree may define


def run_checks(config: Config, source: Path | None = None, dsn: str | None = None) -> CheckResult:
    """Every contract that the given inputs allow; at least one of `source` and `dsn` is needed."""
    result = CheckResult()
    scan = None
    if source is not None:
        from contracts.source import scan_tree
        from contracts.static import check_source

        scan = scan_tree(source, config)
        result.source = str(source)
        result.files = len(scan.files)
        result.statements = sum(f.facts.statements for f in scan.files)
        result.findings.extend(check_source(scan, config))
        result.rules_run.extend(r.id for r in RULES if r.scope == "static")
    if dsn is not None:
        from contracts.live import check_live

        live = check_live(dsn, config)
        result.server = live.server
        result.evidence.update(live.evidence)
        located = _locate(live.findings, scan.definitions() if scan else {})
        result.findings.extend(located)
        result.rules_run[:0] = [r.id for r in RULES if r.scope == "live"]
    if config.allowlist is not None:
        display = _relative(config.allowlist, scan.root if scan else None)
        allowlist = load_allowlist(config.allowlist, display)
        result.findings = allowlist.apply(result.findings, report_unused=source is not None)
    return result


def _locate(findings: list[Finding], definitions: dict[tuple[str, str], tuple[str, int]]) -> list[Finding]:
    out = []
    for finding in findings:
        kind, _, rest = (finding.object or "").partition(" ")
        where = definitions.get((kind, rest.split(" ", 1)[0])) if kind in DEFINED_KINDS else None
        out.append(
            replace(finding, path=where[0], line=where[1]) if where and finding.path is None else finding
        )
    return out


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
