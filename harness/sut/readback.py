"""Reading a pipeline's rows back for judgement (traces, flow completion). All SQL is in harness/sql."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from harness.checkers.trace import Trace, build_trace
from harness.errors import BadInput
from harness.sut.adapter import SutSql


def read_trace(conn: psycopg.Connection[Any], entity_id: str, sql: SutSql | None = None) -> Trace:
    """One entity's path event -> job -> run -> result, judged. `sql`: the pipeline as the harness knows it
    (default: discovered on `conn`, the RFC's names)."""
    Q = (sql or SutSql.discovered(conn)).queries("system")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(Q["entity_events"], {"entity_id": entity_id}).fetchone()
        if row is None:
            raise BadInput(f"no entity {entity_id} in document_entities; check the id and the --postgres DSN")
        jobs = cur.execute(Q["entity_jobs"], {"entity_id": entity_id}).fetchall()
        runs = cur.execute(Q["entity_runs"], {"entity_id": entity_id}).fetchall()
    return build_trace(str(entity_id), row["events"], jobs, runs)
