"""PGC108: a migration is judged by what it does, not only by its name. A `legacy` or `infra` migration may not
create, replace, alter, rename or drop a core object: a function, trigger, table or view defined by a core
migration, one the config names (gateway functions, claims, the core trigger, the guard, `core_tables`), or
a trigger on a core table. Named `legacy`, such a change would pass for history while it rewrites the core.

Migrations are append-only, so the reference keeps `0007_legacy_gateway_v0.sql`, whose first gateway and legacy
trigger are core objects later replaced or dropped by core migrations (0008, 0009). A change that a **later
core** migration replaces or drops cannot survive a database migrated to the end: it is a note ("historic"),
not a violation.
"""

from __future__ import annotations

from pathlib import Path

from contracts.config import Config
from contracts.finding import Finding, Level
from contracts.rules import rule
from contracts.source import ScannedFile, SourceScan
from contracts.sqlscan import Fact

Key = tuple[str, str]  # (function | trigger | table, name)
_KIND = {"view": "table"}  # a view and a table share one namespace


def core_objects(scan: SourceScan, config: Config) -> dict[Key, str]:
    """Every core object, with why it is core (the config, or the core migration that defines it)."""
    found: dict[Key, str] = {}
    for name in (*config.gateway_functions, *config.claims):
        found[("function", name)] = "named in the contracts config"
    for name in (config.core_trigger, config.guard_trigger):
        found[("trigger", name)] = "named in the contracts config"
    for name in config.core_tables:
        found[("table", name)] = "named in the contracts config (core_tables)"
    for migration in scan.migrations():
        if migration.migration is not None and migration.migration.cls == "core":
            for fact in migration.facts.of("define"):
                if fact.function is None:
                    found.setdefault(_key(fact), f"defined by core migration {Path(migration.path).name}")
    return found


def check_noncore_migrations(scan: SourceScan, config: Config) -> list[Finding]:
    core = core_objects(scan, config)
    ordered = scan.migrations()
    out = []
    for index, migration in enumerate(ordered):
        cls = migration.migration.cls if migration.migration else None
        if cls not in ("legacy", "infra"):
            continue
        for fact, key, what, removed_by in _core_changes(migration, core):
            later = _later_core_change(ordered[index + 1 :], removed_by)
            message = (
                f"{cls} migration {Path(migration.path).name} {what} {key[0]} {key[1]} ({core[key]}); "
                "only a core migration may change the core"
            )
            if later:
                out.append(
                    Finding(
                        "PGC108",
                        Level.NOTE,
                        f"historic: {message}; the later core migration {Path(later).name} replaces or drops "
                        "it, so this change no longer survives",
                        "nothing to do: migrations are append-only and kept for the record",
                        migration.path,
                        fact.line,
                    )
                )
            else:
                out.append(
                    Finding("PGC108", Level.ERROR, message, rule("PGC108").help, migration.path, fact.line)
                )
    return out


def _key(fact: Fact) -> Key:
    kind = fact.detail.split(" ", 1)[0]
    return (_KIND.get(kind, kind), fact.name)


def _core_changes(migration: ScannedFile, core: dict[Key, str]) -> list[tuple[Fact, Key, str, Key]]:
    """`(fact, core object, verb, what a later core migration must replace or drop for it to be history)` for
    each top-level statement of the migration that changes a core object."""
    out = []
    for fact in migration.facts.facts:
        if fact.function is not None or fact.kind not in ("define", "drop", "alter"):
            continue
        key = _key(fact)
        verb = {"define": "creates or replaces", "drop": "drops", "alter": "alters"}[fact.kind]
        if key in core:
            out.append((fact, key, verb, key))
        elif fact.kind == "define" and key[0] == "trigger":
            table = fact.detail.split(" ")[2] if fact.detail.startswith("trigger on ") else ""
            if ("table", table) in core:
                out.append((fact, ("table", table), f"creates trigger {fact.name} on", key))
    return out


def _later_core_change(later: list[ScannedFile], key: Key) -> str | None:
    for migration in later:
        if migration.migration is None or migration.migration.cls != "core":
            continue
        for fact in migration.facts.facts:
            if fact.function is None and fact.kind in ("define", "drop") and _key(fact) == key:
                return migration.path
    return None
