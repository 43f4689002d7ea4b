"""The exit criteria of each RFC phase, as checks with evidence (seeds: RFC section 3, roadmap per phase).

Each criterion is computed from facts the gate gathered once (`GateFacts`: the contracts run, the canary
flows, the live database): a criterion says ok or not and the evidence that decided it, in sentences a
reviewer can check by hand (queries run, counts, trace ids, timings). A criterion whose parts do not exist
yet is not met, with the evidence line saying what is absent; nothing is assumed.

A failed criterion names its cause, not only its symptom: after the evidence come `cause:` lines, one per
violated contract rule that can explain it (rule id, location `path:line` or schema object, message), or one
line saying that none of those rules is violated, so the symptom is all there is to go on.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contracts.config import Config
from contracts.finding import Finding
from contracts.handlertable import read_handler_table
from contracts.result import CheckResult
from harness.gate.canary import CanaryResult
from harness.sqlfile import named_queries
from harness.sut.adapter import SutSql
from harness.sut.config import Sut

Q = named_queries("gate")
STATIC_GUARDRAILS = ("PGC101", "PGC102", "PGC103", "PGC104", "PGC105", "PGC108")
CORE_TRIGGER_ON = ("PGC001", "PGC010", "PGC011")  # present and enabled, not silenced, still working
# What can stop a real flow or make its jobs come from elsewhere than the trigger and the gateway.
FLOW_CAUSES = (
    "PGC001",
    "PGC003",
    "PGC004",
    "PGC005",
    "PGC006",
    "PGC007",
    "PGC009",
    "PGC010",
    "PGC011",
    "PGC012",
)
DIRECT_WRITERS = ("PGC006", "PGC008", "PGC012", "PGC101", "PGC011")
RUNBOOKS = ("not-enqueued", "enqueued-not-executed", "executed-no-event")


@dataclass(frozen=True)
class Criterion:
    name: str
    ok: bool
    evidence: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "evidence": list(self.evidence)}


@dataclass
class GateFacts:
    dsn: str
    source: Path
    config: Config
    contracts: CheckResult
    canary: CanaryResult
    window_s: float
    owned: bool  # the gate built this database itself (so "the window" is this run)
    runbooks: Path | None = None  # None: <source>/runbooks when the tree has one, else the harness's own
    extra: dict[str, Any] = field(default_factory=dict)
    sut: Sut | None = None  # the pipeline's SUT file: its relations and conventions (None: the RFC's names)

    @functools.cached_property
    def sql(self) -> SutSql:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return SutSql.discovered(conn, self.sut)

    def rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        statement = self.sql.render(Q[query])
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            return [dict(r) for r in cur.execute(statement, params).fetchall()]

    def via(self) -> tuple[tuple[str, ...], str | None, str | None]:
        """The pipeline's materialized_via values: those of the gateway, a compat redirect, a direct call."""
        conventions = self.sut.conventions if self.sut else None
        if conventions is None:
            return (), None, None
        return conventions.via_gateway, conventions.via_redirect, conventions.via_direct_call


def _violations(facts: GateFacts, *rules: str) -> list[Finding]:
    return [f for f in facts.contracts.findings if f.rule in rules and f.violation]


def _cause(finding: Finding) -> str:
    return f"cause: {finding.rule} {finding.where}: {finding.message}"


def _rules_criterion(facts: GateFacts, name: str, *rules: str) -> Criterion:
    bad = _violations(facts, *rules)
    evidence = [_cause(f) for f in bad]
    for rule_id in rules:
        evidence.extend(f"{rule_id}: {line}" for line in facts.contracts.evidence.get(rule_id, []))
    if not bad:
        evidence.insert(0, f"{', '.join(rules)}: no violation")
    return Criterion(name, not bad, tuple(evidence))


Judge = Callable[["GateFacts"], Criterion]


def _caused(judge: Judge, *rules: str) -> Judge:
    """`judge`, whose failed criterion also lists the violations of `rules` that explain it (its causes)."""

    @functools.wraps(judge)
    def judged(facts: GateFacts) -> Criterion:
        criterion = judge(facts)
        if criterion.ok:
            return criterion
        causes = [c for c in (_cause(f) for f in _violations(facts, *rules)) if c not in criterion.evidence]
        if not causes and not any(line.startswith("cause:") for line in criterion.evidence):
            checked = ", ".join(rules) if rules else "no contract rule covers this criterion"
            causes = [
                f"cause: no contract rule names one ({checked}: no violation); the evidence above is the symptom"
                if rules
                else f"cause: {checked}; the evidence above says what is missing"
            ]
        return Criterion(criterion.name, False, (*criterion.evidence, *causes))

    return judged


def static_guardrails(facts: GateFacts) -> Criterion:
    criterion = _rules_criterion(
        facts,
        "static guardrails pass (no direct insert, claims by role, migrations "
        "classified, no projection read, core trigger never disabled)",
        *STATIC_GUARDRAILS,
    )
    suppressed = sum(1 for f in facts.contracts.findings if f.suppressed and f.rule.startswith("PGC1"))
    return Criterion(
        criterion.name,
        criterion.ok,
        (
            *criterion.evidence,
            f"source {facts.source}: "
            f"{facts.contracts.files} files, {facts.contracts.statements} SQL statements parsed; "
            f"{suppressed} allowlisted exception(s), each with its reason",
        ),
    )


def canary_flows(facts: GateFacts) -> Criterion:
    canary = facts.canary
    evidence = [
        f"{canary.consecutive_ok} of {canary.wanted} consecutive protect -> tsa -> anchor flows completed "
        "with a complete trace (event -> job -> run -> result)"
    ]
    evidence += [f"flow {i + 1}: {flow.line()}" for i, flow in enumerate(canary.flows)]
    return Criterion(
        f"{canary.wanted} consecutive real protect -> tsa -> anchor flows with complete trace",
        canary.ok,
        tuple(evidence),
    )


def no_manual_sql(facts: GateFacts) -> Criterion:
    ids = facts.canary.entities
    gateway, _redirect, direct = facts.via()
    # Normal progression: every job of a canary flow came through the gateway from an event, none asked for by
    # name (a direct call is what a person running SQL by hand would make).
    normal = {v for v in gateway if v != direct}
    known = facts.sql.has("jobs") and bool(normal)
    via = (
        {r["materialized_via"]: int(r["jobs"]) for r in facts.rows("via_of_entities", ids=ids)}
        if ids and known
        else {}
    )
    ok = facts.canary.ok and (not known or set(via) <= normal)
    return Criterion(
        "no manual SQL needed for normal progression",
        ok,
        (
            "the gate wrote only its requests, through the pipeline's entry point; every other row was written "
            "by the pipeline's trigger, gateway and workers",
            f"jobs of the canary entities by materialized_via: {via or 'none'}"
            + ("" if set(via) <= normal else f" (expected only {', '.join(sorted(normal))})")
            if known
            else "how jobs were materialized is not recorded, or the SUT file names no [conventions] via_gateway: "
            "judged on the canary alone",
        ),
    )


def _live_rule(name: str, *rules: str) -> Callable[[GateFacts], Criterion]:
    return lambda facts: _rules_criterion(facts, name, *rules)


def all_through_gateway(facts: GateFacts) -> Criterion:
    gateway, redirect, _direct = facts.via()
    allowed = (*gateway, *((redirect,) if redirect else ()))
    guard = _rules_criterion(facts, "guard", "PGC006", "PGC101")
    window = "this gate's run" if facts.owned else f"the last {facts.window_s / 86400:g} day(s)"
    if not allowed:
        return Criterion(
            "100% of jobs materialized through the gateway",
            False,
            (
                "the SUT file names no [conventions] via_gateway: the materialized_via values of jobs the gateway "
                "made cannot be told from others (pass --sut with them)",
                *guard.evidence,
            ),
        )
    via = {
        r["materialized_via"]: int(r["jobs"]) for r in facts.rows("via_in_window", window_s=facts.window_s)
    }
    outside = {k: v for k, v in via.items() if k not in allowed}
    evidence = (
        f"jobs created over {window} by materialized_via: {via or 'none'}; values the gateway writes: "
        f"{', '.join(allowed)}" + (f"; OUTSIDE the gateway: {outside}" if outside else ""),
        *guard.evidence,
    )
    return Criterion(
        "100% of jobs materialized through the gateway", not outside and bool(via) and guard.ok, evidence
    )


def compat_warnings_zero(facts: GateFacts) -> Criterion:
    if not facts.sql.has("compat_warnings"):
        return Criterion(
            "compat warnings zero over the window",
            False,
            (f"compat warnings cannot be read: {facts.sql.facts.why_not('compat-warnings')}",),
        )
    row = facts.rows("compat_warnings_in_window", window_s=facts.window_s)[0]
    window = "this gate's run" if facts.owned else f"the last {facts.window_s / 86400:g} day(s)"
    return Criterion(
        "compat warnings zero over the window",
        int(row["warnings"]) == 0,
        (
            f"compat_warnings over {window}: {row['warnings']}"
            + (f" (first {row['first']}, last {row['last']})" if row["warnings"] else ""),
        ),
    )


def strict_rejects(facts: GateFacts) -> Criterion:
    from contracts.live import connect
    from contracts.probe import probe_direct_insert

    execution = sorted(n for n, k in facts.config.job_types.items() if k == "execution")
    with connect(facts.dsn) as conn:
        probe = probe_direct_insert(
            conn, "protect" if "protect" in execution else execution[0], mode="strict", config=facts.config
        )
    return Criterion(
        "strict mode rejects direct inserts",
        probe.rejected,
        ("gateway_mode set to strict inside a rolled-back transaction only", *probe.evidence),
    )


def decision_path_clean(facts: GateFacts) -> Criterion:
    from contracts.decisionpath import live_decision_reads

    static = _rules_criterion(facts, "static", "PGC104")
    live_hits, walked = live_decision_reads(facts.dsn, facts.config, facts.source)
    evidence = (
        *static.evidence,
        f"live: functions and views reachable from the decision role: {', '.join(walked)}",
        *(f"cause: live {hit}" for hit in live_hits),
    )
    return Criterion(
        "no authoritative read of user_documents in the decision path", static.ok and not live_hits, evidence
    )


def _present(facts: GateFacts, pattern: str, functions: bool = False) -> list[str]:
    return [
        r["name"] for r in facts.rows("functions_like" if functions else "relations_like", pattern=pattern)
    ]


def _pack(facts: GateFacts) -> dict[str, Any]:
    """Whether the harness's observability pack is installed (the KPI and alerts it provides)."""
    return facts.rows("pack_installed")[0]


def kpi_present(facts: GateFacts) -> Criterion:
    found = _present(facts, "event\\_to\\_job\\_gap%", functions=True)
    found += _present(facts, "event\\_to\\_job\\_gap%")
    if _pack(facts)["kpi"]:
        found.append("harness_obs.event_to_job_gap (the harness's observability pack)")
    return Criterion(
        "KPI event_to_job_gap present",
        bool(found),
        (
            f"live schema objects named event_to_job_gap*: {', '.join(found)}"
            if found
            else "no function or view named event_to_job_gap* in the live schema (KPI not deployed)",
        ),
    )


def alerts_present(facts: GateFacts) -> Criterion:
    own = bool(_present(facts, "alert\\_rules"))
    if not own and not _pack(facts)["rules"]:
        return Criterion(
            "alerts: core trigger off, gap, backlog, retry, dead jobs",
            False,
            (
                "no alert_rules table in the live schema and no harness observability pack (alerting not "
                "deployed: `harness obs install` provides the RFC's alerts)",
            ),
        )
    rules = facts.rows("alert_rules" if own else "pack_rules")
    text = " ".join(f"{r['name']} {r['metric']}" for r in rules).replace("-", "_")
    needed = {
        "core trigger disabled": "core_trigger",
        "event_to_job_gap": "gap",
        "backlog": "backlog",
        "retry": "retry",
        "dead jobs": "dead",
    }
    missing = [label for label, word in needed.items() if word not in text]
    return Criterion(
        "alerts: core trigger off, gap, backlog, retry, dead jobs",
        not missing,
        (
            f"alert_rules: {', '.join(r['name'] for r in rules)}",
            f"missing: {', '.join(missing)}" if missing else "every required alert has a rule",
        ),
    )


def dashboard_present(facts: GateFacts) -> Criterion:
    views = _present(facts, "dashboard%")
    needed = {
        "recent events": "recent_events",
        "jobs per entity": "jobs_per_entity",
        "runs with errors": "error",
    }
    missing = [label for label, word in needed.items() if not any(word in v for v in views)]
    candidates = [
        p.relative_to(facts.source).as_posix()
        for p in facts.source.glob("**/dashboard*")
        if p.suffix in ("", ".py")
    ]
    web = sorted(
        rel
        for rel in candidates
        if not any(part.startswith(".") or part == "tests" for part in rel.split("/"))
    )
    ok = not missing and bool(web)
    return Criterion(
        "single dashboard: recent events, jobs per entity, runs with errors",
        ok,
        (
            f"dashboard views: {', '.join(views) or 'none'}"
            + (f"; missing: {', '.join(missing)}" if missing else ""),
            f"web dashboard module: {', '.join(web)}"
            if web
            else "no web dashboard module (harness/ops/dashboard*) in the source tree",
        ),
    )


def runbook_drills(facts: GateFacts) -> Criterion:
    from harness.ops.runbook import runbooks_dir

    folder = facts.runbooks or (
        facts.source / "runbooks" if (facts.source / "runbooks").is_dir() else runbooks_dir()
    )
    present = [name for name in RUNBOOKS if (folder / f"{name}.md").is_file()]
    evidence = [f"runbooks present: {', '.join(present) or 'none'} (of {', '.join(RUNBOOKS)})"]
    probe = subprocess.run(
        [sys.executable, "-m", "harness.cli", "drill", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if probe.returncode != 0:
        evidence.append("`harness drill` does not exist yet: no drill was run, no detection time measured")
        return Criterion(
            "the three runbooks pass their incident drills, with detection times", False, tuple(evidence)
        )
    ok = len(present) == len(RUNBOOKS)
    for name in present:
        auto = ["--auto"] if "--auto" in probe.stdout else []  # unattended: no one at the keyboard
        if facts.sut is not None and facts.sut.path is not None and "--sut" in probe.stdout:
            auto += ["--sut", str(facts.sut.path)]  # drill the pipeline under judgement, not the reference
        run = subprocess.run(
            [sys.executable, "-m", "harness.cli", "drill", name, *auto],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        # a drill that cannot run says why in one line on stderr (not applicable, bad input)
        said = run.stdout.strip().splitlines() + run.stderr.strip().splitlines()[-1:]
        tail = (said or ["(no output)"])[-3:]
        evidence.append(f"harness drill {name}: exit {run.returncode}; " + " | ".join(tail))
        ok = ok and run.returncode == 0
    return Criterion(
        "the three runbooks pass their incident drills, with detection times", ok, tuple(evidence)
    )


def traceability(facts: GateFacts) -> Criterion:
    ids = facts.canary.entities
    missing = facts.rows("ids_missing", ids=ids)[0] if ids else {"jobs": 0, "runs": 0}
    ok = facts.canary.ok and not missing["jobs"] and not missing["runs"]
    return Criterion(
        "end-to-end trace for any entity; correlation_id and trace_id on every job and run",
        ok,
        (
            f"canary entities traced: {len(ids)}; complete: {facts.canary.consecutive_ok}",
            f"jobs without correlation/trace id: {missing['jobs']}; runs without: {missing['runs']}",
        ),
    )


def migrations_classified(facts: GateFacts) -> Criterion:
    criterion = _rules_criterion(facts, "migrations classified core / legacy / infra", "PGC103", "PGC108")
    from contracts.migrations import classify

    counts: dict[str, int] = {}
    for path in sorted(facts.source.glob("**/migrations/*.sql")):
        if any(part.startswith(".") for part in path.relative_to(facts.source).parts):
            continue
        cls = classify(path.name, path.read_text(encoding="utf-8")).cls or "unclassified"
        counts[cls] = counts.get(cls, 0) + 1
    return Criterion(criterion.name, criterion.ok, (*criterion.evidence, f"migrations by class: {counts}"))


def no_dead_handler(facts: GateFacts) -> Criterion:
    table = read_handler_table(facts.source, facts.config.handlers_file, facts.config.handlers_function)
    claimed = {r["name"] for r in facts.rows("execution_types")}
    dead = sorted(set(table.job_types) - claimed)
    unhandled = sorted(claimed - set(table.job_types))
    return Criterion(
        "no dead handler (every handler's type is claimed; every execution type has a handler)",
        not dead and not unhandled,
        (
            f"handlers in {table.path}:{table.line}: {', '.join(table.job_types)}",
            f"execution types (what claim_orchestrator_jobs returns, PGC003): {', '.join(sorted(claimed))}",
            f"handlers no claim returns: {', '.join(dead) or 'none'}; execution types without a "
            f"handler: {', '.join(unhandled) or 'none'}",
        ),
    )


def contracts_pass(facts: GateFacts) -> Criterion:
    bad = facts.contracts.violations
    return Criterion(
        "the CI contracts pass (live and static)",
        not bad,
        (facts.contracts.summary(), *(_cause(f) for f in bad)),
    )


PHASES: dict[int, tuple[Judge, ...]] = {
    1: (
        static_guardrails,
        _live_rule("core trigger on_document_entity_events_change enabled", *CORE_TRIGGER_ON),
        _live_rule("ambiguous dedupe-key fix deployed", "PGC009"),
        _live_rule(
            "claim canary: decision claim returns only decision jobs, orchestrator claim only execution jobs",
            "PGC003",
            "PGC004",
        ),
        _caused(canary_flows, *FLOW_CAUSES),
        _caused(no_manual_sql, *DIRECT_WRITERS, *FLOW_CAUSES),
    ),
    2: (
        _caused(all_through_gateway, *DIRECT_WRITERS),
        _caused(compat_warnings_zero, "PGC101", "PGC012", "PGC008"),
        _caused(strict_rejects, "PGC006"),
        _caused(decision_path_clean, "PGC104"),
    ),
    3: (
        _caused(kpi_present),
        _caused(alerts_present),
        _caused(dashboard_present),
        _caused(runbook_drills),
        _caused(traceability, *FLOW_CAUSES),
    ),
    4: (
        contracts_pass,
        migrations_classified,
        _caused(no_dead_handler, "PGC003", "PGC005"),
        _caused(canary_flows, *FLOW_CAUSES),
        _caused(no_manual_sql, *DIRECT_WRITERS, *FLOW_CAUSES),
    ),
}
