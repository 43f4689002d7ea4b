"""Live contracts on roles and settings: who can reach an INSERT on executor_jobs (PGC008), and whether
replica mode, which silences every ordinary trigger, is anybody's default (PGC010).

PGC008 follows every path a worker role has to the privilege, not only its own table grant: a column-level
grant (`GRANT INSERT (job_type, ...)`), a grant to PUBLIC, a role it inherits (membership WITH INHERIT), and a
role it may `SET ROLE` to (membership with or without INHERIT), up to superusers and predefined roles such as
pg_write_all_data (has_any_column_privilege counts them all). Each finding names the path.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from contracts.config import Config
from contracts.finding import Finding, Level
from contracts.probe import Conn
from contracts.rules import rule
from contracts.sqlfile import named_queries

Q = named_queries("live")
Result = tuple[list[Finding], list[str]]


def _rows(conn: Conn, query: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [dict(r) for r in cur.execute(Q[query], params or None).fetchall()]


def _f(rule_id: str, message: str, obj: str, level: Level = Level.ERROR) -> Finding:
    return Finding(rule_id, level, message, rule(rule_id).help, object=obj)


def worker_roles(conn: Conn, config: Config) -> Result:
    """PGC008: no worker role reaches INSERT on executor_jobs by any role path."""
    if not config.worker_roles:
        return [
            Finding(
                "PGC008",
                Level.NOTE,
                "not checked: the contracts config declares no worker roles (worker_roles = []): the workers "
                "log in as no role of their own, so no privilege keeps them from inserting into executor_jobs; "
                "list the roles they log in as in worker_roles to have them checked",
                "Give the workers database roles of their own, without INSERT on executor_jobs, and list them "
                "in worker_roles.",
                object="config worker_roles",
            )
        ], ["worker_roles = []: no role checked"]
    rows = _rows(conn, "role_insert_paths", roles=list(config.worker_roles))
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_worker.setdefault(row["worker"], []).append(row)
    found, seen = [], []
    for worker, paths in sorted(by_worker.items()):
        reached = [p for p in paths if p["can_insert"] and (p["itself"] or p["inherits"] or p["can_set"])]
        seen.append(
            f"{worker}: reaches {', '.join(p['via'] for p in paths)}; INSERT on executor_jobs "
            + ("through " + "; ".join(_path(p) for p in reached) if reached else "by no path")
        )
        if reached:
            found.append(
                _f(
                    "PGC008",
                    f"role {worker} can INSERT into executor_jobs: " + "; ".join(_path(p) for p in reached),
                    f"role {worker}",
                )
            )
    found += [
        _f(
            "PGC008",
            f"worker role {role} does not exist; its privileges could not be checked",
            f"role {role}",
            Level.WARNING,
        )
        for role in config.worker_roles
        if role not in by_worker
    ]
    return found, seen or ["no worker role exists"]


def _path(row: dict[str, Any]) -> str:
    """How a role reached by a worker role holds INSERT, in words."""
    if row["itself"]:
        how = "its own privileges"
    elif row["inherits"]:
        how = f"role {row['via']}, which it inherits (member WITH INHERIT)"
    else:
        how = f"role {row['via']}, which it may SET ROLE to (member without INHERIT)"
    grants = []
    if row["superuser"]:
        grants.append("a superuser")
    if row["owner"]:
        grants.append("the table's owner")
    if row["public_grant"]:
        grants.append("INSERT granted to PUBLIC")
    if row["columns"]:
        grants.append(f"column-level INSERT on {', '.join(row['columns'])}")
    if row["table_level"] and not (row["superuser"] or row["owner"] or row["public_grant"]):
        grants.append("table-level INSERT")
    return f"{how}: {', '.join(grants) or 'INSERT through a predefined or inherited role'}"


def replica_defaults(conn: Conn, config: Config) -> Result:
    """PGC010: session_replication_role = replica as the default of the database, of a role, or of the
    server."""
    found = []
    rows = _rows(conn, "replica_defaults")
    for row in rows:
        value = row["setting"].split("=", 1)[1].strip().lower() if "=" in row["setting"] else ""
        if value != "replica":
            continue
        db, role = row["database"], row["role"]
        statement = (
            f"ALTER ROLE {role}" + (f" IN DATABASE {db}" if db else "")
            if role
            else (f"ALTER DATABASE {db}" if db else "ALTER ROLE ALL")
        )
        scope = (f"role {role}" if role else "every role") + (
            f" in database {db}" if db else " in every database"
        )
        obj = f"role {role}" if role else (f"database {db}" if db else "role ALL")
        found.append(
            _f(
                "PGC010",
                f"session_replication_role defaults to replica for {scope} ({statement} SET ...): "
                "every session it starts fires no ordinary trigger, so the core trigger and the guard "
                "are off there",
                obj,
            )
        )
    setting = _rows(conn, "replica_setting")
    current = setting[0] if setting else {}
    source = str(current.get("source", ""))
    if str(current.get("reset_val", "")).lower() == "replica" and source not in (
        "database",
        "user",
        "database user",
    ):
        found.append(
            _f(
                "PGC010",
                f"session_replication_role defaults to replica on the server (source: {source}): no "
                "ordinary trigger fires in any session",
                "server setting session_replication_role",
            )
        )
    seen = [
        "pg_db_role_setting for this database and all databases: "
        + (
            ", ".join(f"{r['database'] or '*'}/{r['role'] or '*'}: {r['setting']}" for r in rows)
            or "no setting"
        )
        + f"; this session starts with {current.get('reset_val', '?')} (source: {source or '?'})"
    ]
    return found, seen
