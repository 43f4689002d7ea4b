"""The static contracts (PGC101-PGC109): judging what a source tree's SQL does, with no database.

Historic legacy migrations: migrations are append-only, so the old direct-insert path of a `legacy`
migration stays in the tree forever. A finding inside a function defined by a `legacy` migration that a
later migration drops or replaces is reported as a note ("historic"), not a violation: it can no longer run
on a database migrated to the end. The same code in a core or infra migration, at the top level of any
migration, or in a legacy function nothing later removes, is a violation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contracts.config import Config
from contracts.finding import Finding, Level
from contracts.legacy import check_noncore_migrations
from contracts.pathglob import matches_any
from contracts.rules import rule
from contracts.source import ScannedFile, SourceScan
from contracts.sqlscan import Fact

QUEUE = "executor_jobs"
CORE_TABLES = ("document_entities", "executor_jobs")


@dataclass(frozen=True)
class _Definition:
    path: str
    facts: tuple[Fact, ...]
    kind: str = "function"  # function | view


def check_source(scan: SourceScan, config: Config) -> list[Finding]:
    """Every static finding for the scanned tree."""
    findings: list[Finding] = []
    superseded = _superseded(scan)
    aliases = _queue_views(_function_bodies(scan))
    for scanned in scan.files:
        roles = _roles_of(scanned.path, config)
        findings.extend(_direct_writes(scanned, config, superseded, aliases))
        findings.extend(_claim_calls(scanned, roles, config))
        findings.extend(_trigger_offs(scanned, config))
        findings.extend(_dynamic_sql(scanned, config))
        findings.extend(_parse_problems(scanned))
        if scanned.migration is not None and scanned.migration.cls is None:
            findings.append(
                Finding(
                    "PGC103",
                    Level.ERROR,
                    f"migration {Path(scanned.path).name} is not classified: {scanned.migration.problem}",
                    rule("PGC103").help,
                    scanned.path,
                    scanned.migration.line,
                )
            )
    findings.extend(_decision_path_reads(scan, config))
    findings.extend(check_noncore_migrations(scan, config))
    return findings


def _roles_of(path: str, config: Config) -> set[str]:
    return {role for role, globs in config.roles.items() if matches_any(path, globs)}


def _superseded(scan: SourceScan) -> dict[tuple[str, str], str]:
    """`(migration path, function) -> later migration` for functions a later migration drops or replaces."""
    found: dict[tuple[str, str], str] = {}
    ordered = scan.migrations()
    for index, migration in enumerate(ordered):
        defined = {f.name for f in migration.facts.of("define") if f.detail.startswith("function")}
        for later in ordered[index + 1 :]:
            touched = {f.name for f in later.facts.of("drop") if f.detail == "function"}
            touched |= {f.name for f in later.facts.of("define") if f.detail.startswith("function")}
            for name in defined & touched:
                found.setdefault((migration.path, name), later.path)
    return found


def _queue_views(bodies: dict[str, _Definition]) -> dict[str, str]:
    """`view -> executor_jobs` for every view that reads the queue, directly or through another such view: an
    insert into an auto-updatable view lands in the table it reads."""
    aliases: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, body in bodies.items():
            reads_queue = any(f.kind == "read" and (f.name == QUEUE or f.name in aliases) for f in body.facts)
            if body.kind == "view" and name not in aliases and reads_queue:
                aliases[name] = QUEUE
                changed = True
    return aliases


def _direct_writes(
    scanned: ScannedFile,
    config: Config,
    superseded: dict[tuple[str, str], str],
    aliases: dict[str, str] | None = None,
) -> list[Finding]:
    out = []
    aliases = aliases or {}
    for fact in scanned.facts.of("write"):
        if (fact.name != QUEUE and fact.name not in aliases) or fact.function in config.gateway_functions:
            continue
        where = f"in function {fact.function}" if fact.function else "at top level"
        through = f" through view {fact.name}" if fact.name != QUEUE else ""
        message = (
            f"{fact.detail} into executor_jobs{through} {where}, outside the gateway "
            f"({', '.join(config.gateway_functions)})"
        )
        later = superseded.get((scanned.path, fact.function or ""))
        if later and scanned.migration is not None and scanned.migration.cls == "legacy":
            out.append(
                Finding(
                    "PGC101",
                    Level.NOTE,
                    f"historic: {message}; function {fact.function} is removed "
                    f"or replaced by the later migration {Path(later).name}, so it no longer runs",
                    "nothing to do: legacy migrations are kept for the record (append-only)",
                    scanned.path,
                    fact.line,
                )
            )
        else:
            out.append(Finding("PGC101", Level.ERROR, message, rule("PGC101").help, scanned.path, fact.line))
    return out


def _claim_calls(scanned: ScannedFile, roles: set[str], config: Config) -> list[Finding]:
    out = []
    for fact in scanned.facts.of("call"):
        owner = config.claims.get(fact.name)
        if owner is None or owner in roles or fact.function == fact.name:
            continue
        mapped = f"a file of role {', '.join(sorted(roles))}" if roles else "a file mapped to no worker role"
        inside = f" (inside function {fact.function})" if fact.function else ""
        out.append(
            Finding(
                "PGC102",
                Level.ERROR,
                f"{fact.name} is called from {mapped}{inside}; only {owner} may call it",
                rule("PGC102").help,
                scanned.path,
                fact.line,
            )
        )
    return out


def _trigger_offs(scanned: ScannedFile, config: Config) -> list[Finding]:
    out = []
    guarded = {config.core_trigger, config.guard_trigger, "ALL"}
    for fact in scanned.facts.of("trigger_off"):
        if fact.detail == "session_replication_role":
            how = {
                "SET": "by SET in a session",
                "set_config": "by set_config()",
                "connection option": "by a connection option (-c), for every session opened with it",
            }.get(fact.name, f"by {fact.name}, a default for every new session")
            what = f"session_replication_role is made replica {how}: no ordinary trigger fires, the core trigger neither"
        elif fact.name in guarded and fact.detail in CORE_TABLES:
            what = f"ALTER TABLE {fact.detail} disables trigger {fact.name}"
        else:
            continue
        out.append(Finding("PGC105", Level.ERROR, what, rule("PGC105").help, scanned.path, fact.line))
    return out


def _dynamic_sql(scanned: ScannedFile, config: Config) -> list[Finding]:
    """SQL built at run time whose target (or whole text) cannot be known without running it."""
    out = []
    for fact in scanned.facts.of("dynamic"):
        if fact.function in config.gateway_functions:
            continue
        inside = f"in function {fact.function}" if fact.function else "at top level"
        what = (
            f"{fact.detail} {inside}: the checker cannot tell whether it writes executor_jobs"
            if fact.name == "write"
            else f"a statement built at run time {inside} ({fact.detail}): the checker cannot see what it runs"
        )
        out.append(Finding("PGC109", Level.WARNING, what, rule("PGC109").help, scanned.path, fact.line))
    return out


def _parse_problems(scanned: ScannedFile) -> list[Finding]:
    return [
        Finding(
            "PGC106",
            Level.WARNING,
            f"{scanned.kind} that the contracts cannot read: {message}",
            rule("PGC106").help,
            scanned.path,
            line,
        )
        for line, message in scanned.problems
    ]


def _function_bodies(scan: SourceScan) -> dict[str, _Definition]:
    """Each SQL function's and view's last definition (migrations in apply order) and the facts of its body."""
    bodies: dict[str, _Definition] = {}
    others = [f for f in scan.files if f.migration is None]
    for scanned in [*others, *scan.migrations()]:
        for define in scanned.facts.of("define"):
            if define.detail.startswith(("function", "view")):
                facts = tuple(
                    f for f in scanned.facts.facts if f.function == define.name and f.kind != "define"
                )
                bodies[define.name] = _Definition(scanned.path, facts, define.detail.split(" ", 1)[0])
    return bodies


def _decision_path_reads(scan: SourceScan, config: Config) -> list[Finding]:
    """Reads of the projection by decision-role files, directly or through the SQL functions they call and the
    views they read (a view over the projection is the projection)."""
    table = config.projection_table
    bodies = _function_bodies(scan)
    out = []
    for scanned in scan.files:
        if config.decision_role not in _roles_of(scanned.path, config):
            continue
        for fact in scanned.facts.facts:
            if fact.kind == "read" and fact.name == table:
                out.append(
                    Finding(
                        "PGC104",
                        Level.ERROR,
                        f"the decision path reads {table} ({fact.detail})",
                        rule("PGC104").help,
                        scanned.path,
                        fact.line,
                    )
                )
            elif _follows(fact, bodies) and fact.function is None:
                chain = _reads_through(fact.name, bodies, table, ())
                if chain:
                    path, line = chain[-1]
                    names = " -> ".join(name for name, _ in chain[:-1])
                    verb = "reads" if fact.kind == "read" else "calls"
                    out.append(
                        Finding(
                            "PGC104",
                            Level.ERROR,
                            f"the decision path {verb} {names}, which reads {table} at {path}:{line}",
                            rule("PGC104").help,
                            scanned.path,
                            fact.line,
                        )
                    )
    return out


def _follows(fact: Fact, bodies: dict[str, _Definition]) -> bool:
    """A call of a function, or a read of a view: the decision path goes on into its definition."""
    if fact.kind == "call":
        return True
    return fact.kind == "read" and fact.name in bodies and bodies[fact.name].kind == "view"


def _reads_through(
    name: str, bodies: dict[str, _Definition], table: str, seen: tuple[str, ...]
) -> list[tuple[str, object]] | None:
    """`[(fn or view, _), ..., (path, line)]`: the chain from `name` to a read of `table`, or None."""
    body = bodies.get(name)
    if body is None or name in seen:
        return None
    for fact in body.facts:
        if fact.kind == "read" and fact.name == table:
            label = f"view {name}" if body.kind == "view" else name
            return [(label, None), (body.path, fact.line)]
    for fact in body.facts:
        if _follows(fact, bodies):
            chain = _reads_through(fact.name, bodies, table, (*seen, name))
            if chain:
                label = f"view {name}" if body.kind == "view" else name
                return [(label, None), *chain]
    return None
