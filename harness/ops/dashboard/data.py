"""What the dashboard reads, and how: through the read-only role, in read-only transactions.

Every panel is one named query of `harness/sql/dashboard.sql` over the views and functions of the pipeline's
observability migration. A connection is opened per page or refresh (a few milliseconds on a local server),
so a database restart costs one failed refresh and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from harness.checkers.trace import Trace
from harness.errors import BadInput
from harness.sqlfile import named_queries
from harness.sut.readback import read_trace

Q = named_queries("dashboard")
READER = "pipeline_reader"
PANELS = (
    "alerts",
    "alert_history",
    "gap_breaches",
    "backlog",
    "recent_events",
    "jobs_per_entity",
    "job_runs",
    "runs_with_errors",
    "workers",
)


@dataclass(frozen=True)
class Table:
    """One panel's rows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class GapPoint:
    start: Any
    events: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    breached: int


@dataclass(frozen=True)
class Overview:
    profile: str
    delta_s: float
    window_s: float
    interval_s: float
    gateway_mode: str
    core_trigger_enabled: bool
    now: Any
    gap: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    overview: Overview
    tables: dict[str, Table]
    series: tuple[GapPoint, ...]


class DashboardData:
    """Reads panels from the database at `dsn` as `role` (read-only)."""

    def __init__(self, dsn: str, role: str = READER) -> None:
        self.dsn = dsn
        self.role = role

    def check(self) -> None:
        """Raise BadInput (exit 3) unless the database answers and holds the observability schema."""
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise BadInput(f"cannot connect to --postgres: {_first_line(exc)}") from exc
        with conn:
            missing = [r[0] for r in conn.execute(Q["missing_objects"], {"role": self.role}).fetchall()]
        if missing:
            raise BadInput(
                f"the database has no pipeline observability schema (missing: {', '.join(missing)}); point "
                "--postgres at a database migrated with the pipeline's migrations (harness up prints one)"
            )

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=5, application_name="harness-dashboard"
        ) as c:
            c.execute(Q["set_role"], {"role": self.role})
            c.execute(Q["read_only"])
            yield c

    def snapshot(self) -> Snapshot:
        with self.connect() as conn:
            row = conn.execute(Q["overview"]).fetchone()
            assert row is not None
            profile, delta, window, interval, mode, trigger, now = row
            gap_cur = conn.execute(Q["gap_stats"])
            gap = dict(
                zip([d.name for d in gap_cur.description or ()], gap_cur.fetchone() or (), strict=False)
            )
            overview = Overview(profile, delta, window, interval, mode, bool(trigger), now, gap)
            tables = {name: _table(conn, name) for name in PANELS}
            points = conn.execute(Q["gap_series"], {"window_s": window, "bucket_s": window / 30}).fetchall()
        series = tuple(GapPoint(p[0], int(p[1]), p[2], p[3], p[4], int(p[5])) for p in points)
        return Snapshot(overview, tables, series)

    def trace(self, entity: str) -> Trace | str:
        """The entity's trace, or a sentence saying why there is none."""
        try:
            uuid.UUID(entity)
        except ValueError:
            return f"{entity!r} is not an entity id (a uuid)"
        with self.connect() as conn:
            try:
                return read_trace(conn, entity)
            except BadInput as exc:
                return str(exc)


def _table(conn: psycopg.Connection[Any], name: str) -> Table:
    cur = conn.execute(Q[name])
    return Table(tuple(d.name for d in cur.description or ()), tuple(tuple(r) for r in cur.fetchall()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
