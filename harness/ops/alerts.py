"""`harness alerts export`: the pipeline's alert rules as a Prometheus rule file, and promtool unit tests.

The rules are read from the database (`alert_rules_current`: the metric each rule watches on the monitor's
/metrics, the comparison, the threshold, `for`), so the exported file means exactly what the SQL evaluator
does. A profile (`production`, `fast`) is applied inside a transaction that is rolled back: exporting never
changes the database. The unit tests give each rule a breaching series (it must not fire before `for`, and
must fire by `for` + two evaluation intervals) and a healthy one (it must never fire).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import yaml

from harness.errors import BadInput
from harness.sqlfile import named_queries

Q = named_queries("alerts")


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    op: str
    threshold: float
    for_s: float
    severity: str
    summary: str
    runbook: str
    promql: str
    series_labels: tuple[dict[str, str], ...]  # one per series the monitor exports ({} when unlabelled)


@dataclass(frozen=True)
class RuleSet:
    profile: str
    interval_s: float
    rules: tuple[Rule, ...]


def read_rules(conn: psycopg.Connection[Any], profile: str | None) -> RuleSet:
    has_rules = conn.execute(Q["has_rules"]).fetchone()
    assert has_rules is not None  # one row: whether the rules are there
    if not has_rules[0]:
        raise BadInput(
            "the database has no alert rules (alert_rules_current); migrate it with the pipeline's "
            "migrations first"
        )
    with conn.transaction(force_rollback=True):
        if profile is not None:
            known = [r[0] for r in conn.execute(Q["profiles"]).fetchall()]
            if profile not in known:
                raise BadInput(f"unknown alert profile {profile!r}; profiles: {', '.join(known)}")
            conn.execute(Q["apply_profile"], {"profile": profile})
        rows = conn.execute(Q["rules"]).fetchall()
    rules = tuple(
        Rule(
            r[0],
            r[1],
            r[2],
            float(r[3]),
            float(r[4]),
            r[5],
            r[6],
            r[7],
            r[8],
            tuple({"role": role.strip()} for role in r[11] if role.strip()) if r[11] else ({},),
        )
        for r in rows
    )
    return RuleSet(str(rows[0][10]) if rows else "production", float(rows[0][9]) if rows else 15.0, rules)


def duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds as `30s`, anything finer in milliseconds."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def rule_file(rules: RuleSet) -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "pipeline",
                "interval": duration(rules.interval_s),
                "rules": [
                    {
                        "alert": rule.name,
                        "expr": rule.promql,
                        "for": duration(rule.for_s),
                        "labels": {"severity": rule.severity},
                        "annotations": {"summary": rule.summary, "runbook": rule.runbook},
                    }
                    for rule in rules.rules
                ],
            }
        ]
    }


def _value(rule: Rule, breaching: bool) -> float:
    if rule.op == ">":
        return rule.threshold + 1 if breaching else rule.threshold
    return rule.threshold - 1 if breaching else rule.threshold


def unit_tests(rules: RuleSet, rule_file_name: str) -> dict[str, Any]:
    """promtool unit tests: per rule, silent before `for`, firing by `for` + 2 intervals; a healthy series never
    fires."""
    step = rules.interval_s
    tests = []
    for rule in rules.rules:
        steps = int((rule.for_s + 4 * step) / step) + 2
        labels = rule.series_labels[0]
        selector = rule.metric + (
            "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        )
        expected = [
            {
                "exp_labels": {**labels, "severity": rule.severity},
                "exp_annotations": {"summary": rule.summary, "runbook": rule.runbook},
            }
        ]
        checks = [
            {"eval_time": duration(rule.for_s + 2 * step), "alertname": rule.name, "exp_alerts": expected}
        ]
        if rule.for_s >= step:
            checks.insert(
                0,
                {"eval_time": duration(max(rule.for_s - step, 0)), "alertname": rule.name, "exp_alerts": []},
            )
        tests.append(
            {
                "interval": duration(step),
                "input_series": [{"series": selector, "values": f"{_value(rule, True):g}x{steps}"}],
                "alert_rule_test": checks,
            }
        )
        tests.append(
            {
                "interval": duration(step),
                "input_series": [{"series": selector, "values": f"{_value(rule, False):g}x{steps}"}],
                "alert_rule_test": [
                    {"eval_time": duration((steps - 1) * step), "alertname": rule.name, "exp_alerts": []}
                ],
            }
        )
    return {"rule_files": [rule_file_name], "evaluation_interval": duration(step), "tests": tests}


def dump(document: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(document, sort_keys=False, width=110)
