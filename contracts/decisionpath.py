"""The decision path in a live database: the SQL functions the decision role reaches, and whether any of
them reads the projection. Starts from the claims of the decision role and from the functions the decision
role's files call (read statically), then follows calls inside each function's live definition
(pg_get_functiondef, parsed with pglast)."""

from __future__ import annotations

from pathlib import Path

from psycopg.rows import dict_row

from contracts.config import Config
from contracts.live import connect
from contracts.pathglob import matches_any
from contracts.source import scan_tree
from contracts.sqlfile import named_queries
from contracts.sqlscan import scan_sql

Q = named_queries("live")


def decision_entry_points(source: Path, config: Config) -> set[str]:
    names = {fn for fn, role in config.claims.items() if role == config.decision_role}
    globs = config.roles.get(config.decision_role, ())
    for scanned in scan_tree(source, config).files if source.is_dir() else []:
        if matches_any(scanned.path, globs):
            names |= {f.name for f in scanned.facts.of("call") if f.function is None}
    return names


def live_decision_reads(dsn: str, config: Config, source: Path | None = None) -> tuple[list[str], list[str]]:
    """`(hits, walked)`: sentences naming each function on the path that reads the projection, and every
    function walked."""
    starts = (
        decision_entry_points(source, config)
        if source
        else {fn for fn, role in config.claims.items() if role == config.decision_role}
    )
    hits: list[str] = []
    walked: list[str] = []
    todo = sorted(starts)
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        while todo:
            name = todo.pop(0)
            if name in walked:
                continue
            rows = cur.execute(Q["function"], {"name": name}).fetchall()
            if not rows:
                continue  # a built-in (jsonb_build_object, ...) or a function of another schema
            walked.append(name)
            for row in rows:
                facts = scan_sql(row["definition"])
                if facts is None:
                    continue
                for fact in facts.facts:
                    if fact.kind == "read" and fact.name == config.projection_table:
                        hits.append(
                            f"function {name} reads {config.projection_table} (line {fact.line} of its "
                            "definition)"
                        )
                    elif fact.kind == "call" and fact.name not in walked:
                        todo.append(fact.name)
    return hits, walked
