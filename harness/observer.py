"""The observer: samples the queue and the alerts into the history while a run goes (for the timeline and the
SLO checks), and reads the database once more at the end (the final state the checkers judge).

Everything is read through the pipeline's canonical relations (`harness/sut/adapter.py`), and alerts through
the run's alert source (the pipeline's own, or the harness's pack), named with the harness's alert names.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.rows import dict_row

from harness.history import History, OpType
from harness.observability.source import AlertSource
from harness.records import FinalState
from harness.sut.adapter import SutSql


class Observer:
    def __init__(
        self, dsn: str, history: History, sql: SutSql, alerts: AlertSource, interval_s: float = 0.5
    ) -> None:
        self.dsn = dsn
        self.history = history
        self.Q = sql.queries("run")
        self.alerts = alerts
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="observer", daemon=True)

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
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2, row_factory=dict_row)
                row = conn.execute(self.Q["sample"]).fetchone()
                assert row is not None  # one row: the queue's figures
                sample = dict(row)
                closed = conn.execute(self.Q["flows_closed"]).fetchone()
                assert closed is not None  # one row: a count
                sample["flows_closed"] = closed["count"]
                firing = self.alerts.firing(conn)
                if firing is not None:
                    sample["alerts_firing"] = firing
                self.history.record(
                    "observer", OpType.OK, "sample", {k: _plain(v) for k, v in sample.items()}
                )
            except Exception as exc:  # a lost sample is recorded, never a silently dead observer
                self.history.record(
                    "observer",
                    OpType.INFO,
                    "sample",
                    None,
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
                )
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def _plain(value: Any) -> Any:
    return (
        float(value) if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)) else value
    )


def read_final(
    dsn: str,
    sql: SutSql,
    alerts: AlertSource | None = None,
    side_effects: dict[str, tuple[dict[str, Any], ...]] | None = None,
) -> FinalState:
    """Everything the checkers need, read once after the drain. Optional relations the pipeline lacks read
    as empty; the checkers that need them say not-applicable from the record's capabilities.
    `side_effects`: what each external service issued, read back by the caller (it holds their URLs)."""
    Q = sql.queries("run")
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        now = conn.execute(Q["read_at"]).fetchone()
        assert now is not None  # one row: the time
        read_at = float(next(iter(now.values())))

        def rows(name: str, relation: str | None = None) -> tuple[dict[str, Any], ...]:
            if relation is not None and not sql.has(relation):
                return ()
            return tuple({k: _plain(v) for k, v in row.items()} for row in conn.execute(Q[name]).fetchall())

        settings = {r["key"]: r["value"] for r in rows("final_settings", "settings")}
        for key, value in sql.sut.fixed_settings.items():
            settings.setdefault(key, value)
        return FinalState(
            entities=rows("final_entities"),
            jobs=rows("final_jobs"),
            runs=rows("final_runs"),
            compat_warnings=rows("final_compat", "compat_warnings"),
            alert_history=alerts.history(conn) if alerts is not None else (),
            job_types={r["name"]: r["kind"] for r in rows("final_job_types")},
            settings=settings,
            read_at=read_at,
            kpi=rows("final_kpi") if sql.has("kpi") else None,
            side_effects=side_effects,
        )
