"""The text, JSON and JUnit renderings of a contracts run (SARIF has its own module)."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from contracts import __name__ as _package
from contracts.result import CheckResult
from contracts.rules import BY_ID, RULES

TOOL = "pipeline-contracts"


def text(result: CheckResult, verbose: bool = False) -> str:
    """For people: one block per finding (path:line, level, rule, what, fix), then the verdict line."""
    lines = []
    for finding in result.sorted_findings():
        if finding.suppressed is not None and not verbose:
            continue
        name = BY_ID[finding.rule].name
        tag = f"allowlisted ({finding.suppressed})" if finding.suppressed else str(finding.level)
        lines.append(f"{finding.where}: {tag} {finding.rule} [{name}] {finding.message}")
        if finding.suppressed is None and finding.level != "note":
            lines.append(f"    fix: {finding.fix}")
    lines.append(result.summary())
    return "\n".join(lines) + "\n"


def as_json(result: CheckResult) -> str:
    data = {
        "tool": TOOL,
        "package": _package,
        "ok": result.ok,
        "summary": result.summary(),
        "checked": {
            "source": result.source,
            "files": result.files,
            "statements": result.statements,
            "database": result.server,
        },
        "rules": [
            {
                "id": r.id,
                "name": r.name,
                "scope": r.scope,
                "summary": r.summary,
                "level": str(r.level),
                "checked": r.id in result.rules_run,
            }
            for r in RULES
        ],
        "findings": [f.as_dict() for f in result.sorted_findings()],
        "evidence": result.evidence,
    }
    return json.dumps(data, indent=2) + "\n"


def junit(result: CheckResult) -> str:
    """One test case per rule checked; a rule with violations fails, listing each; warnings go to system-out."""
    suites = ET.Element("testsuites", name=TOOL)
    for scope in ("live", "static"):
        rules = [r for r in RULES if r.scope == scope and r.id in result.rules_run]
        if not rules:
            continue
        suite = ET.SubElement(suites, "testsuite", name=f"contracts.{scope}", tests=str(len(rules)))
        failures = 0
        for rule in rules:
            case = ET.SubElement(
                suite, "testcase", classname=f"contracts.{scope}", name=f"{rule.id} {rule.name}"
            )
            mine = [f for f in result.sorted_findings() if f.rule == rule.id]
            bad = [f for f in mine if f.violation]
            if bad:
                failures += 1
                failure = ET.SubElement(
                    case, "failure", message=f"{len(bad)} violation(s) of {rule.id}: {rule.summary}"
                )
                failure.text = "\n".join(f"{f.where}: {f.message}\n    fix: {f.fix}" for f in bad)
            other = [f for f in mine if not f.violation]
            if other or result.evidence.get(rule.id):
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(
                    [
                        *(
                            f"{f.where}: {(f.suppressed and 'allowlisted') or f.level} {f.message}"
                            for f in other
                        ),
                        *result.evidence.get(rule.id, []),
                    ]
                )
        suite.set("failures", str(failures))
        suite.set("errors", "0")
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
