"""SARIF 2.1.0, as GitHub code scanning reads it.

`tool.driver.rules` holds every rule (id, name, shortDescription, fullDescription, help, default level); each
result names its ruleId and level and is located by `physicalLocation.artifactLocation.uri` (relative to the
source root, `uriBaseId` %SRCROOT%) and `region.startLine`. A live finding is located on its schema object
(`logicalLocations`) and, when the same run scanned a source tree, also on the file that defines the object.
Allowlisted findings are kept as results with an external suppression whose justification is the reason.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.finding import Finding
from contracts.render import TOOL
from contracts.result import CheckResult
from contracts.rules import RULES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def sarif(result: CheckResult, version: str = "0.1.0") -> str:
    index = {rule.id: i for i, rule in enumerate(RULES)}
    rules = [
        {
            "id": rule.id,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.summary},
            "help": {
                "text": rule.help,
                "markdown": f"**{rule.id} {rule.name}**: {rule.summary}\n\nFix: {rule.help}",
            },
            "defaultConfiguration": {"level": str(rule.level)},
            "properties": {"tags": ["anti-drift", rule.scope], "precision": "high"},
        }
        for rule in RULES
    ]
    results = [_result(f, index[f.rule]) for f in result.sorted_findings()]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {"name": TOOL, "version": version, "semanticVersion": version, "rules": rules}
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the --source root"}}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": str(finding.level),
        "message": {"text": f"{finding.message}. Fix: {finding.fix}"},
    }
    location: dict[str, Any] = {}
    if finding.path:
        location["physicalLocation"] = {
            "artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": max(finding.line or 1, 1)},
        }
    if finding.object:
        kind = finding.object.split(" ", 1)[0]
        location["logicalLocations"] = [
            {
                "fullyQualifiedName": finding.object,
                "kind": kind if kind in ("function", "table") else "member",
            }
        ]
    if location:
        out["locations"] = [location]
    if finding.suppressed is not None:
        out["suppressions"] = [{"kind": "external", "justification": finding.suppressed}]
    return out
