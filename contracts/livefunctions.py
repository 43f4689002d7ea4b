"""PGC012: the functions of the live database, read like source (pg_get_functiondef, parsed with pglast and
its plpgsql parser): none but the gateway writes executor_jobs, including through SQL it builds at run time
(`EXECUTE 'INSERT INTO ' || v_table`, `format('INSERT INTO %I', ...)`, folded by contracts/dynsql.py).

This sees what a source tree may not hold: a function created by hand, by a script outside the tree, or by a
migration whose SQL was assembled at run time. A dynamic statement the checker cannot resolve is a warning
when the function can reach executor_jobs: it runs as its owner (SECURITY DEFINER) and the owner can insert,
or it runs as its caller (SECURITY INVOKER), so any role that can insert, the table's owner first, runs it
with that privilege.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from contracts.config import Config
from contracts.finding import Finding, Level
from contracts.probe import Conn
from contracts.rules import rule
from contracts.sqlfile import named_queries
from contracts.sqlscan import scan_sql

Q = named_queries("live")
QUEUE = "executor_jobs"


def live_functions(conn: Conn, config: Config) -> tuple[list[Finding], list[str]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows: list[dict[str, Any]] = [dict(r) for r in cur.execute(Q["user_functions"]).fetchall()]
    found, writers, dynamic, unread = [], [], [], []
    for row in rows:
        name, obj = row["name"], f"function {row['name']}"
        facts = scan_sql(row["definition"])
        if facts is None:
            unread.append(name)
            continue
        if name in config.gateway_functions:
            continue
        writes = sorted({f.detail for f in facts.of("write") if f.name == QUEUE})
        if writes:
            writers.append(name)
            found.append(
                Finding(
                    "PGC012",
                    Level.ERROR,
                    f"function {row['schema']}.{name} writes executor_jobs ({', '.join(writes)}) and is not the "
                    f"gateway ({', '.join(config.gateway_functions)})",
                    rule("PGC012").help,
                    object=obj,
                )
            )
        unknown = [f for f in facts.of("dynamic")]
        reach = (
            f"it runs as its owner {row['owner']}, who can insert into executor_jobs"
            if row["security_definer"] and row["owner_can_insert"]
            else None
            if row["security_definer"]
            else "it runs as its caller, and the table's owner (or any role that can insert) may call it"
        )
        if unknown and reach:
            dynamic.append(name)
            found.append(
                Finding(
                    "PGC012",
                    Level.WARNING,
                    f"function {row['schema']}.{name} runs SQL built at run time that the checker cannot resolve "
                    f"({unknown[0].detail}, line {unknown[0].line} of its definition), and {reach}",
                    rule("PGC012").help,
                    object=obj,
                )
            )
    seen = [
        f"{len(rows)} SQL/plpgsql functions outside the system schemas read (pg_get_functiondef); writing "
        f"executor_jobs outside the gateway: {', '.join(writers) or 'none'}; unresolved dynamic SQL able to "
        f"reach it: {', '.join(dynamic) or 'none'}"
        + (f"; definitions that did not parse: {', '.join(unread)}" if unread else "")
    ]
    return found, seen
