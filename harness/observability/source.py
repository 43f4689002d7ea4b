"""Where a run reads its alerts from: the pipeline's own alert state and history (its rules named with the
harness's alert names), or the harness's observability pack (`pack.sql`). Either way the history a checker
sees holds rows `{rule, state, from_state, at, value, for_s, active_since}` with the harness's names."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row, tuple_row

from harness.sqlfile import named_queries
from harness.sut.adapter import SutSql

OBS = named_queries("obs")


class AlertSource(Protocol):
    name: str

    def firing(self, conn: psycopg.Connection[Any]) -> list[str] | None:
        """The alerts firing now (None: this source cannot tell)."""

    def active(self, conn: psycopg.Connection[Any]) -> int:
        """How many alerts are pending or firing now (the drain waits for them to settle)."""

    def history(self, conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], ...]:
        """Every transition, oldest first."""


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float)) else v)
        for k, v in row.items()
    }


class SutAlerts:
    """The pipeline's own alerts, read through its canonical relations alert_state and alert_history."""

    name = "sut"

    def __init__(self, sql: SutSql) -> None:
        self.sql = sql
        self.Q = sql.queries("run")

    def firing(self, conn: psycopg.Connection[Any]) -> list[str] | None:
        if not self.sql.has("alert_state"):
            return None
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(self.Q["alerts_firing"]).fetchone()
        assert row is not None  # one row: the firing rules, as an array
        rules = row["firing"] or []
        return sorted({self.sql.alert_name(r) for r in rules})

    def active(self, conn: psycopg.Connection[Any]) -> int:
        if not self.sql.has("alert_state"):
            return 0
        with conn.cursor(row_factory=tuple_row) as cur:
            row = cur.execute(self.Q["alerts_active"]).fetchone()
        assert row is not None  # one row: a count
        return int(row[0])

    def history(self, conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], ...]:
        if not self.sql.has("alert_history"):
            return ()
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(self.Q["final_alerts"]).fetchall()
        return tuple({**_plain(r), "rule": self.sql.alert_name(str(r["rule"]))} for r in rows)


class PackAlerts:
    """The harness's pack, installed in harness_obs."""

    name = "harness"

    def firing(self, conn: psycopg.Connection[Any]) -> list[str] | None:
        with conn.cursor(row_factory=tuple_row) as cur:  # the observer's connection returns dicts
            return [str(r[0]) for r in cur.execute(OBS["firing"]).fetchall()]

    def active(self, conn: psycopg.Connection[Any]) -> int:
        with conn.cursor(row_factory=tuple_row) as cur:
            row = cur.execute(OBS["active"]).fetchone()
        assert row is not None  # one row: a count
        return int(row[0])

    def history(self, conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], ...]:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(OBS["history"]).fetchall()
        return tuple(_plain(r) for r in rows)
