"""Behaviour probes against a live database, each inside a transaction that is always rolled back.

A probe seeds what it needs (an entity, one job per type through the gateway, a direct insert) and looks at
what the pipeline does with it; nothing it wrote survives, and NOTIFYs of a rolled-back transaction are
never delivered, so running workers see nothing. Lock and statement timeouts bound how long a probe can
wait on a busy database.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from contracts.sqlfile import named_queries

Q = named_queries("live")
Conn = psycopg.Connection[Any]


class _Undo(Exception):
    """Raised to leave a savepoint, rolling it back."""


@contextlib.contextmanager
def rolled_back(conn: Conn) -> Iterator[None]:
    """A transaction that is rolled back however the block ends."""
    with conn.transaction(force_rollback=True):
        conn.execute(Q["probe_settings"])
        yield


def sqlstate(exc: psycopg.Error) -> str:
    return getattr(exc, "sqlstate", None) or "?????"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def materialize(
    conn: Conn, gateway: str, job_type: str, entity_id: str, source_event_id: str
) -> dict[str, Any]:
    query = sql.SQL(Q["materialize"]).format(gateway=sql.Identifier(gateway))  # type: ignore[arg-type]
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            query, {"job_type": job_type, "entity_id": entity_id, "source_event_id": source_event_id}
        ).fetchone()
    return dict(row or {})


def seed_entity(conn: Conn) -> str:
    entity = str(uuid.uuid4())
    conn.execute(Q["seed_entity"], {"entity_id": entity})
    return entity


@dataclass(frozen=True)
class ClaimProbe:
    function: str
    expected_kind: str
    returned: tuple[tuple[int, str, str], ...]  # (job id, type, kind)
    seeded_own: tuple[str, ...]  # types of the seeded jobs of the expected kind
    missing_own: tuple[str, ...]  # of those, the ones the claim did not return

    @property
    def wrong(self) -> list[tuple[int, str, str]]:
        return [r for r in self.returned if r[2] != self.expected_kind]


def probe_claims(conn: Conn, gateway: str, job_types: dict[str, str]) -> list[ClaimProbe]:
    """Seed one job of each type through the gateway, then see what each claim function returns."""
    results = []
    with rolled_back(conn):
        seeded: dict[int, tuple[str, str]] = {}
        for name, kind in sorted(job_types.items()):
            row = materialize(conn, gateway, name, seed_entity(conn), str(uuid.uuid4()))
            seeded[int(row["job_id"])] = (name, kind)
        conn.execute(Q["prioritize"], {"ids": list(seeded)})
        for function, query, kind in (
            ("claim_initial_decision_jobs", "claim_decision", "decision"),
            ("claim_orchestrator_jobs", "claim_execution", "execution"),
        ):
            results.append(_claim_once(conn, function, query, kind, seeded))
    return results


def _claim_once(
    conn: Conn, function: str, query: str, kind: str, seeded: dict[int, tuple[str, str]]
) -> ClaimProbe:
    returned: tuple[tuple[int, str, str], ...] = ()
    try:
        with conn.transaction():  # a savepoint: the other claim must still see every seeded job
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(Q[query], {"limit": len(seeded)}).fetchall()
                ids = [int(r.get("job_id", r.get("id"))) for r in rows]
                kinds = cur.execute(Q["kinds_of_jobs"], {"ids": ids}).fetchall()
            returned = tuple(sorted((int(r["id"]), r["job_type"], r["kind"]) for r in kinds))
            raise _Undo
    except _Undo:
        pass
    own = tuple(sorted(name for name, k in seeded.values() if k == kind))
    got = {job_id for job_id, _, _ in returned}
    missing = tuple(sorted(name for job_id, (name, k) in seeded.items() if k == kind and job_id not in got))
    return ClaimProbe(function, kind, returned, own, missing)


@dataclass(frozen=True)
class InsertProbe:
    """What a direct INSERT INTO executor_jobs did under a gateway mode."""

    mode: str
    error_sqlstate: str | None = None
    error: str | None = None
    direct_rows: int = 0
    redirected_rows: int = 0
    warnings: int = 0
    evidence: tuple[str, ...] = field(default=())

    @property
    def rejected(self) -> bool:
        return self.error_sqlstate is not None and self.error_sqlstate[:2] not in ("23", "42")

    @property
    def redirected(self) -> bool:
        return self.error is None and self.direct_rows == 0 and self.redirected_rows > 0 and self.warnings > 0


def probe_direct_insert(conn: Conn, job_type: str, mode: str | None = None) -> InsertProbe:
    """Insert one row straight into executor_jobs (mode forced for this transaction only, when given)."""
    with rolled_back(conn):
        if mode is not None:
            conn.execute(Q["set_gateway_mode_local"], {"mode": mode})
        current = str(conn.execute(Q["gateway_mode"]).fetchone()[0])  # type: ignore[index]
        entity = seed_entity(conn)
        params = {
            "job_type": job_type,
            "entity_id": entity,
            "dedupe_key": f"contracts-probe:{uuid.uuid4()}",
            "source_event_id": str(uuid.uuid4()),
        }
        error: psycopg.Error | None = None
        try:
            with conn.transaction():
                conn.execute(Q["direct_insert"], params)
        except psycopg.Error as exc:
            error = exc
        direct, redirected, warnings = conn.execute(Q["after_direct_insert"], params).fetchone()  # type: ignore[misc]
    evidence = (
        f"gateway_mode={current}; INSERT INTO executor_jobs (job_type={job_type!r}) in a rolled-back "
        f"transaction: "
        + (
            f"rejected with SQLSTATE {sqlstate(error)}: {first_line(error)}"
            if error
            else f"accepted; rows kept as inserted: {direct}, jobs materialized by redirect: "
            f"{redirected}, compat warnings recorded: {warnings}"
        ),
    )
    return InsertProbe(
        current,
        sqlstate(error) if error else None,
        first_line(error) if error else None,
        int(direct),
        int(redirected),
        int(warnings),
        evidence,
    )


@dataclass(frozen=True)
class DedupeProbe:
    error_sqlstate: str | None
    error: str | None
    first: dict[str, Any]
    second: dict[str, Any]


def probe_dedupe(conn: Conn, gateway: str, job_type: str) -> DedupeProbe:
    """Call the gateway twice for the same source event."""
    with rolled_back(conn):
        entity, source = seed_entity(conn), str(uuid.uuid4())
        try:
            with conn.transaction():
                first = materialize(conn, gateway, job_type, entity, source)
                second = materialize(conn, gateway, job_type, entity, source)
        except psycopg.Error as exc:
            return DedupeProbe(sqlstate(exc), first_line(exc), {}, {})
    return DedupeProbe(None, None, first, second)


@dataclass(frozen=True)
class TriggerProbe:
    """What one appended event became: the jobs materialized for it, and compat warnings on its entity."""

    event_type: str
    expected: str  # the job type it must materialize
    jobs: tuple[tuple[str, str], ...] = ()  # (job type, materialized_via)
    warnings: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and [t for t, _ in self.jobs] == [self.expected]
            and all(via != "compat_redirect" for _, via in self.jobs)
            and self.warnings == 0
        )

    def line(self) -> str:
        if self.error:
            return f"{self.event_type}: append failed, {self.error}"
        got = ", ".join(f"{t} (via {v})" for t, v in self.jobs) or "no job"
        return f"{self.event_type} -> {got}; expected {self.expected}" + (
            f"; {self.warnings} compat warning(s)" if self.warnings else ""
        )


def probe_core_trigger(conn: Conn, expected: dict[str, str]) -> list[TriggerProbe]:
    """Append each event type to a fresh entity (one savepoint each), then read the jobs made from it."""
    results = []
    with rolled_back(conn):
        for event_type, job_type in expected.items():
            entity, event_id = seed_entity(conn), str(uuid.uuid4())
            params = {
                "entity_id": entity,
                "event_id": event_id,
                "type": event_type,
                "correlation_id": str(uuid.uuid4()),
                "trace_id": uuid.uuid4().hex,
            }
            try:
                with conn.transaction():
                    conn.execute(Q["append_probe_event"], params)
                    with conn.cursor(row_factory=dict_row) as cur:
                        rows = cur.execute(Q["jobs_of_event"], params).fetchall()
                    raise _Keep(rows)
            except _Keep as kept:
                rows = kept.rows
                warnings = max((int(r["warnings"]) for r in rows), default=0)
                jobs = tuple((str(r["job_type"]), str(r["materialized_via"])) for r in rows)
                results.append(TriggerProbe(event_type, job_type, jobs, warnings))
            except psycopg.Error as exc:
                results.append(
                    TriggerProbe(event_type, job_type, error=f"SQLSTATE {sqlstate(exc)}: {first_line(exc)}")
                )
    return results


class _Keep(Exception):
    """Leaves a savepoint (rolling it back) carrying what was read inside it."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__("rolled back")
        self.rows = rows
