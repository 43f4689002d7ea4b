"""The decision path in a live database: the SQL functions and views the decision role reaches, and whether
any of them reads the projection. Starts from the claims of the decision role and from the functions the
decision role's files call and the relations they read (read statically), then follows calls and reads inside
each function's live definition (pg_get_functiondef) and each view's (pg_get_viewdef), parsed with pglast: a
view over the projection is the projection."""

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
            names |= {
                f.name for f in scanned.facts.facts if f.kind in ("call", "read") and f.function is None
            }
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
        done: set[str] = set()
        while todo:
            name = todo.pop(0)
            if name in done:
                continue
            done.add(name)
            rows = cur.execute(Q["function"], {"name": name}).fetchall()
            kind = "function"
            if not rows:
                rows = cur.execute(Q["view"], {"name": name}).fetchall()
                kind = "view"
            if not rows:
                continue  # a table, a built-in (jsonb_build_object, ...) or an object of another schema
            walked.append(name if kind == "function" else f"view {name}")
            for row in rows:
                text = (
                    row["definition"]
                    if kind == "function"
                    else f"SELECT * FROM ({row['definition'].rstrip(';')}) v"
                )
                facts = scan_sql(text)
                if facts is None:
                    continue
                for fact in facts.facts:
                    if fact.kind == "read" and fact.name == config.projection_table:
                        where = (
                            f"line {fact.line} of its definition" if kind == "function" else "pg_get_viewdef"
                        )
                        hits.append(f"{kind} {name} reads {config.projection_table} ({where})")
                    elif fact.kind in ("call", "read") and fact.name not in done:
                        todo.append(fact.name)
    return hits, walked
