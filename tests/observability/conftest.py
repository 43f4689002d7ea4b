"""Helpers shared by the observability tests: evaluate the alert rules at chosen instants (`p_now`), so a
rule's whole life (pending, firing, resolved) is checked in logical time, without waiting."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

Conn = psycopg.Connection[Any]


def db_now(conn: Conn) -> dt.datetime:
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def evaluate(conn: Conn, at: dt.datetime) -> dict[tuple[str, str], tuple[str, float]]:
    """One evaluation at `at`: {(rule, labels json): (state, value)}."""
    rows = conn.execute("SELECT rule, labels, state, value FROM evaluate_alerts(%s)", (at,)).fetchall()
    return {(r[0], json.dumps(r[1], sort_keys=True)): (r[2], r[3]) for r in rows}


def labels_key(labels: dict[str, str] | None = None) -> str:
    return json.dumps(labels or {}, sort_keys=True)


def history(conn: Conn, rule: str, labels: dict[str, str] | None = None) -> list[tuple[str, str, Any]]:
    """(from_state, to_state, value) transitions of one series, oldest first."""
    rows = conn.execute(
        "SELECT from_state, to_state, value FROM alert_history WHERE rule = %s AND labels = %s::jsonb ORDER BY id",
        (rule, labels_key(labels)),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def request(conn: Conn) -> str:
    entity = str(uuid.uuid4())
    conn.execute("SELECT request_protection(%s, %s)", (entity, f"document {entity}"))
    return entity


@pytest.fixture
def fast(conn: Conn) -> Conn:
    """The test's database with the fast alert profile applied."""
    conn.execute("SELECT apply_alert_profile('fast')")
    return conn


@pytest.fixture
def stepper(fast: Conn) -> Callable[..., list[tuple[float, str]]]:
    """Evaluate every `interval` seconds of logical time from `start` until `until` (offsets in seconds);
    returns [(offset, state)] of one series."""

    def run(rule: str, start: dt.datetime, offsets: list[float], labels: dict[str, str] | None = None):
        seen = []
        for offset in offsets:
            states = evaluate(fast, start + dt.timedelta(seconds=offset))
            seen.append((offset, states.get((rule, labels_key(labels)), ("absent", None))[0]))
        return seen

    return run
