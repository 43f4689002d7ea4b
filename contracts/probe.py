"""Behaviour probes against a live database, each inside a transaction that is always rolled back.

A probe seeds what it needs (an entity, one job per type through the gateway, a direct insert) and looks at
what the pipeline does with it; nothing it wrote survives, and NOTIFYs of a rolled-back transaction are
never delivered, so running workers see nothing. Lock and statement timeouts bound how long a probe can
wait on a busy database.

The probes talk to the pipeline only through the statements of its contracts config (`Config.statement`:
the gateway call, the gateway mode, the compat warnings, how to make an entity and append an event, how to
call each claim), the reference's by default, and otherwise through the RFC's relations and the columns the
SUT contract names. A statement that does not fit the database (it names a relation, column, function or
type that does not exist there, at its own level rather than inside a function it calls) raises
`StatementUnfit`: the check could not run as configured, which is a warning naming the key, not a violation.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contracts.config import Config, Statement
from contracts.errors import ContractInputError
from contracts.sqlfile import named_queries

Q = named_queries("live")
Conn = psycopg.Connection[Any]
WORKER = "contracts-probe"
# The statement names something the database does not have, or is not valid SQL for it: undefined table,
# column, function, object or parameter, syntax error, ambiguous function, wrong or indeterminate type.
UNFIT_SQLSTATES = frozenset({"42P01", "42703", "42883", "42704", "42P02", "42601", "42725", "42804", "42P18"})


class _Undo(Exception):
    """Raised to leave a savepoint, rolling it back."""


class StatementUnfit(ContractInputError):
    """A probe statement of the contracts config (or the reference's default for it) does not fit the
    database: the check that needs it could not run. The live checks report it as a warning naming the key."""

    def __init__(self, statement: Statement, problem: str) -> None:
        self.key = statement.key
        self.problem = problem
        super().__init__(
            f"the {statement.key} statement ({statement.origin}) does not fit this database: {problem}; "
            f"set {statement.key} in the contracts config to this pipeline's own (contracts/README.md, Live "
            "probes on any pipeline)"
        )


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


def run(conn: Conn, statement: Statement, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a probe statement as given (in a savepoint), with its named parameters; its rows, if any.
    StatementUnfit when it does not fit the database; an error raised inside the pipeline's own functions
    and triggers propagates as it is (that is the pipeline's behaviour, for the check to judge)."""
    assert statement.text is not None, f"{statement.key} is declared none"
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(statement.text, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []
    except psycopg.Error as exc:
        state = getattr(exc, "sqlstate", None)
        if state is None and not isinstance(exc, psycopg.OperationalError):  # refused by the driver
            raise StatementUnfit(statement, first_line(exc)) from exc
        if state in UNFIT_SQLSTATES and not exc.diag.context:
            raise StatementUnfit(statement, f"SQLSTATE {state}: {first_line(exc)}") from exc
        raise


def job_id_of(statement: Statement, row: dict[str, Any] | None) -> int | None:
    """The job id a gateway call (or a claim) returned: its column job_id, else id, else its first column;
    None when that is NULL or there is no row."""
    if not row:
        return None
    values = list(row.values())
    value = row["job_id"] if "job_id" in row else row["id"] if "id" in row else values[0] if values else None
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StatementUnfit(
            statement,
            f"it returned {row!r}, not a job id (a column job_id or id, or the id as its first column)",
        ) from None


def materialize(
    conn: Conn, config: Config, job_type: str, entity_id: str, source_event_id: str
) -> dict[str, Any]:
    """One gateway call (`gateway_call`) for one source event; its row, with `job_id` set (None: the gateway
    returned no job)."""
    statement = config.statement("gateway_call")
    params = {
        "job_type": job_type,
        "entity_id": entity_id,
        "source_event_id": source_event_id,
        "correlation_id": str(uuid.uuid4()),
        "trace_id": uuid.uuid4().hex,
        "via": WORKER,
    }
    rows = run(conn, statement, params)
    return {**(rows[0] if rows else {}), "job_id": job_id_of(statement, rows[0] if rows else None)}


def seed_entity(conn: Conn, config: Config) -> str:
    entity = str(uuid.uuid4())
    run(conn, config.statement("entity_insert"), {"entity_id": entity})
    return entity


def queue_columns(conn: Conn) -> set[str]:
    return {str(r[0]) for r in conn.execute(Q["queue_columns"]).fetchall()}


@dataclass(frozen=True)
class ClaimProbe:
    function: str
    expected_kind: str
    returned: tuple[tuple[int, str, str], ...]  # (job id, type, kind)
    seeded_own: tuple[str, ...]  # types of the seeded jobs of the expected kind
    missing_own: tuple[str, ...]  # of those, the ones the claim did not return
    unfit: StatementUnfit | None = None  # its claim call did not fit the database: not judged

    @property
    def wrong(self) -> list[tuple[int, str, str]]:
        return [r for r in self.returned if r[2] != self.expected_kind]


def probe_claims(conn: Conn, config: Config, job_types: dict[str, str]) -> list[ClaimProbe]:
    """Seed one job of each type through the gateway, then see what each claim function of [claims]
    returns."""
    results = []
    with rolled_back(conn):
        seeded: dict[int, tuple[str, str]] = {}
        for name, kind in sorted(job_types.items()):
            row = materialize(conn, config, name, seed_entity(conn, config), str(uuid.uuid4()))
            if row["job_id"] is None:
                raise StatementUnfit(
                    config.statement("gateway_call"), f"it returned no job id for a new {name} job"
                )
            seeded[int(row["job_id"])] = (name, kind)
        if "run_at" in queue_columns(conn):
            conn.execute(Q["prioritize"], {"ids": list(seeded)})
        for function in config.claims:
            results.append(_claim_once(conn, config, function, seeded))
    return results


def _claim_once(conn: Conn, config: Config, function: str, seeded: dict[int, tuple[str, str]]) -> ClaimProbe:
    kind = config.claim_kind(function)
    statement = config.claim_statement(function)
    returned: tuple[tuple[int, str, str], ...] = ()
    own = tuple(sorted(name for name, k in seeded.values() if k == kind))
    try:
        with conn.transaction():  # a savepoint: the other claim must still see every seeded job
            rows = run(conn, statement, {"worker": WORKER, "limit": len(seeded)})
            ids = [i for i in (job_id_of(statement, r) for r in rows) if i is not None]
            with conn.cursor(row_factory=dict_row) as cur:
                kinds = cur.execute(Q["kinds_of_jobs"], {"ids": ids}).fetchall()
            returned = tuple(sorted((int(r["id"]), r["job_type"], r["kind"]) for r in kinds))
            raise _Undo
    except _Undo:
        pass
    except StatementUnfit as unfit:
        return ClaimProbe(function, kind, (), own, (), unfit)
    got = {job_id for job_id, _, _ in returned}
    missing = tuple(sorted(name for job_id, (name, k) in seeded.items() if k == kind and job_id not in got))
    return ClaimProbe(function, kind, returned, own, missing)


@dataclass(frozen=True)
class InsertProbe:
    """What a direct INSERT INTO executor_jobs did under a gateway mode (None: the pipeline has no modes,
    or its mode could not be read)."""

    mode: str | None
    error_sqlstate: str | None = None
    error: str | None = None
    direct_rows: int = 0
    redirected_rows: int = 0
    warnings: int | None = 0  # compat warnings recorded for the entity; None: not read
    evidence: tuple[str, ...] = field(default=())
    expected_sqlstate: str | None = None  # the SQLSTATE of a strict rejection; None: any outside 23, 42
    via: tuple[str, ...] = ()  # materialized_via of the redirected jobs
    not_applicable: str | None = None  # why the probe could not be made as asked (no modes to switch)
    unfit: tuple[StatementUnfit, ...] = ()  # statements that did not fit: parts left unjudged

    @property
    def rejected(self) -> bool:
        if self.error_sqlstate is None or self.not_applicable:
            return False
        if self.expected_sqlstate:
            return self.error_sqlstate == self.expected_sqlstate
        return self.error_sqlstate[:2] not in ("23", "42")

    @property
    def redirected(self) -> bool:
        return (
            self.error is None
            and self.direct_rows == 0
            and self.redirected_rows > 0
            and (self.warnings is None or self.warnings > 0)
        )


def probe_direct_insert(
    conn: Conn, job_type: str, mode: str | None = None, config: Config | None = None
) -> InsertProbe:
    """Insert one row straight into executor_jobs (mode forced for this transaction only, when given)."""
    config = config or Config()
    expected = config.strict_reject_sqlstate
    set_mode = config.statement("gateway_mode_set")
    if mode is not None and set_mode.declared_none:
        why = f"gateway_mode_set = none: the pipeline has no gateway mode {mode!r} to switch to"
        return InsertProbe(None, expected_sqlstate=expected, not_applicable=why, evidence=(why,))
    unfit: list[StatementUnfit] = []
    with rolled_back(conn):
        if mode is not None:
            run(conn, set_mode, {"mode": mode})
        current, told = _gateway_mode(conn, config, unfit)
        entity = seed_entity(conn, config)
        params = {
            "job_type": job_type,
            "entity_id": entity,
            "dedupe_key": f"contracts-probe:{uuid.uuid4()}",
            "source_event_id": str(uuid.uuid4()),
        }
        error: psycopg.Error | None = None
        try:
            with conn.transaction():
                conn.execute(_direct_insert(queue_columns(conn)), params)
        except psycopg.Error as exc:
            error = exc
        with conn.cursor(row_factory=dict_row) as cur:
            after = cur.execute(Q["after_direct_insert"], params).fetchone() or {}
        warnings = _warnings(conn, config, entity, unfit)
    direct, redirected = int(after.get("direct_rows", 0)), int(after.get("redirected_rows", 0))
    via = tuple(sorted(after.get("via") or ()))
    counted = "not read" if warnings is None else str(warnings)
    evidence = (
        f"{told}; INSERT INTO executor_jobs (job_type={job_type!r}) in a rolled-back transaction: "
        + (
            f"rejected with SQLSTATE {sqlstate(error)}: {first_line(error)}"
            if error
            else f"accepted; rows kept as inserted: {direct}, jobs materialized by redirect: "
            f"{redirected}"
            + (f" (materialized_via {', '.join(via)})" if via else "")
            + f", compat warnings recorded: {counted}"
        ),
    )
    return InsertProbe(
        current,
        sqlstate(error) if error else None,
        first_line(error) if error else None,
        direct,
        redirected,
        warnings,
        evidence,
        expected,
        via,
        unfit=tuple(unfit),
    )


def _gateway_mode(conn: Conn, config: Config, unfit: list[StatementUnfit]) -> tuple[str | None, str]:
    """The gateway mode in force (None: no modes, or not readable) and how it was known, in words."""
    statement = config.statement("gateway_mode_read")
    if statement.declared_none:
        return None, "gateway_mode_read = none (the pipeline has no gateway modes)"
    try:
        rows = run(conn, statement, {})
    except StatementUnfit as exc:
        unfit.append(exc)
        return None, f"gateway mode unknown ({exc.problem})"
    values = list(rows[0].values()) if rows else []
    mode = str(values[0]) if values and values[0] is not None else None
    return mode, f"gateway_mode={mode}" if mode else "gateway_mode_read returned no mode"


def _warnings(conn: Conn, config: Config, entity: str, unfit: list[StatementUnfit]) -> int | None:
    """How many compat warnings the pipeline recorded for `entity` (None: it records none, or the statement
    does not fit)."""
    statement = config.statement("compat_warnings_read")
    if statement.declared_none:
        return None
    try:
        return len(run(conn, statement, {"entity_id": entity}))
    except StatementUnfit as exc:
        if all(u.key != exc.key for u in unfit):
            unfit.append(exc)
        return None


def _direct_insert(columns: set[str]) -> str:
    """The checker's own direct insert: the SUT contract's columns, and kind and materialized_via where the
    queue has them."""
    kind, via = "kind" in columns, "materialized_via" in columns
    name = {
        (True, True): "direct_insert",
        (False, True): "direct_insert_without_kind",
        (True, False): "direct_insert_without_via",
        (False, False): "direct_insert_without_kind_or_via",
    }[kind, via]
    return Q[name]


@dataclass(frozen=True)
class DedupeProbe:
    error_sqlstate: str | None
    error: str | None
    first: dict[str, Any]
    second: dict[str, Any]


def probe_dedupe(conn: Conn, config: Config, job_type: str) -> DedupeProbe:
    """Call the gateway twice for the same source event."""
    with rolled_back(conn):
        entity, source = seed_entity(conn, config), str(uuid.uuid4())
        try:
            with conn.transaction():
                first = materialize(conn, config, job_type, entity, source)
                if first["job_id"] is None:
                    raise StatementUnfit(
                        config.statement("gateway_call"), f"it returned no job id for a new {job_type} job"
                    )
                second = materialize(conn, config, job_type, entity, source)
        except StatementUnfit:
            raise
        except psycopg.Error as exc:
            return DedupeProbe(sqlstate(exc), first_line(exc), {}, {})
    return DedupeProbe(None, None, first, second)


@dataclass(frozen=True)
class TriggerProbe:
    """What one appended event became: the jobs materialized for it, and compat warnings on its entity."""

    event_type: str
    expected: str  # the job type it must materialize
    jobs: tuple[tuple[str, str], ...] = ()  # (job type, materialized_via)
    warnings: int | None = 0  # None: not read
    error: str | None = None
    redirect_via: str = "compat_redirect"  # the materialized_via of a redirected job

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and [t for t, _ in self.jobs] == [self.expected]
            and all(via != self.redirect_via for _, via in self.jobs)
            and not self.warnings
        )

    def line(self) -> str:
        if self.error:
            return f"{self.event_type}: append failed, {self.error}"
        got = ", ".join(f"{t} (via {v})" for t, v in self.jobs) or "no job"
        return f"{self.event_type} -> {got}; expected {self.expected}" + (
            f"; {self.warnings} compat warning(s)" if self.warnings else ""
        )


def probe_core_trigger(
    conn: Conn, config: Config, expected: dict[str, str]
) -> tuple[list[TriggerProbe], list[StatementUnfit]]:
    """Append each event type to a fresh entity (one savepoint each), then read the jobs made from it."""
    results = []
    unfit: list[StatementUnfit] = []
    append = config.statement("event_append")
    with rolled_back(conn):
        for event_type, job_type in expected.items():
            entity, event_id = seed_entity(conn, config), str(uuid.uuid4())
            params = {
                "entity_id": entity,
                "event_id": event_id,
                "type": event_type,
                "correlation_id": str(uuid.uuid4()),
                "trace_id": uuid.uuid4().hex,
            }
            try:
                with conn.transaction():
                    run(conn, append, params)
                    with conn.cursor(row_factory=dict_row) as cur:
                        rows = cur.execute(Q["jobs_of_event"], params).fetchall()
                    raise _Keep(rows, _warnings(conn, config, entity, unfit))
            except _Keep as kept:
                jobs = tuple((str(r["job_type"]), str(r["materialized_via"])) for r in kept.rows)
                results.append(
                    TriggerProbe(event_type, job_type, jobs, kept.warnings, None, config.redirect_via)
                )
            except StatementUnfit:
                raise
            except psycopg.Error as exc:
                results.append(
                    TriggerProbe(
                        event_type,
                        job_type,
                        error=f"SQLSTATE {sqlstate(exc)}: {first_line(exc)}",
                        redirect_via=config.redirect_via,
                    )
                )
    return results, unfit


class _Keep(Exception):
    """Leaves a savepoint (rolling it back) carrying what was read inside it."""

    def __init__(self, rows: list[dict[str, Any]], warnings: int | None) -> None:
        super().__init__("rolled back")
        self.rows = rows
        self.warnings = warnings
