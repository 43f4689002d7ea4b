"""Installing and evaluating the harness's observability pack (`pack.sql`) on a pipeline's database.

A team without its own KPI and alerts installs the pack once (`harness obs install --postgres DSN --sut
FILE`) and evaluates it every few seconds (`harness obs evaluate`, or `SELECT harness_obs.evaluate()` from
pg_cron); a chaos run installs it on its disposable database and evaluates it from a thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg

from harness.sqlfile import named_queries
from harness.sut.adapter import SutSql

OBS = named_queries("obs")

PACK_SQL = Path(__file__).with_name("pack.sql")
RULES = (
    "core-trigger-disabled",
    "event-to-job-gap",
    "backlog-ready",
    "backlog-age",
    "retry-storm",
    "dead-jobs",
    "compat-warnings",
)
_NO_COMPAT = (
    "SELECT NULL::bigint AS id, NULL::timestamptz AS at, NULL::text AS source, NULL::text AS job_type, "
    "NULL::text AS entity_id, NULL::bigint AS job_id WHERE false"
)


def pack_rules(sql: SutSql) -> tuple[str, ...]:
    """The pack's rules this pipeline can have (compat warnings need a compat warnings relation)."""
    return tuple(r for r in RULES if r != "compat-warnings" or sql.has("compat_warnings"))


def install_sql(sql: SutSql) -> str:
    """The pack's DDL for this pipeline: its canonical relations put in as the pack's views."""
    text = PACK_SQL.read_text(encoding="utf-8")
    text = text.replace(
        "{compat_warnings_or_empty}",
        sql.relation("compat_warnings")[1:-1] if sql.has("compat_warnings") else _NO_COMPAT,
    )
    for name in ("entities", "jobs", "runs"):
        text = text.replace("{" + name + "}", sql.relation(name)[1:-1])
    return text


def install(
    dsn: str, sql: SutSql, profile: str = "production", settings: dict[str, float] | None = None
) -> None:
    """Install (or refresh) the pack in schema harness_obs, apply a profile, then any settings given."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        with conn.transaction():
            conn.execute(install_sql(sql).encode())
            if "compat-warnings" not in pack_rules(sql):
                conn.execute(OBS["drop_rule"], {"rule": "compat-warnings"})
            conn.execute(OBS["apply_profile"], {"profile": profile})
            for key, value in (settings or {}).items():
                conn.execute(OBS["set"], {"key": key, "value": float(value)})


def evaluate(conn: psycopg.Connection[Any]) -> list[tuple[str, str, float]]:
    """One evaluation of every rule; their states after it."""
    return [(str(r[0]), str(r[1]), float(r[2] or 0)) for r in conn.execute(OBS["evaluate"]).fetchall()]


def installed(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(OBS["installed"]).fetchone()
    assert row is not None  # one row: whether the pack is there
    return bool(row[0])


def status(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Each rule's state now (after the last evaluation), with its threshold and summary."""
    cur = conn.execute(OBS["states"])
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class Evaluator:
    """Evaluates the pack every `interval_s` from a thread while a run goes (what pg_cron does in production).
    A failed evaluation (the server restarting under a fault) is retried on the next tick."""

    def __init__(self, dsn: str, interval_s: float = 0.5) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="obs-evaluator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.wait(self.interval_s):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
                evaluate(conn)
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
