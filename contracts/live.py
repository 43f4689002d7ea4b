"""The live-schema contracts (PGC001-PGC012): the catalog and the behaviour of a running database.

Each check reads the catalog or runs a probe (contracts/probe.py, always rolled back) and returns findings;
a check that cannot run because the object it needs is missing or broken reports that as its finding, so
one broken object never hides the verdict of the others. A check whose probe statement (the contracts
config's, or the reference's default) does not fit the database reports a warning naming the config key to
set: the pipeline was not checked, which is not a violation of it. A part the config declares absent
("none": no gateway modes, no compat warnings; no worker roles) is a note saying what was not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from contracts.config import Config
from contracts.errors import ContractInputError
from contracts.finding import Finding, Level
from contracts.livefunctions import live_functions
from contracts.privileges import replica_defaults, worker_roles
from contracts.probe import (
    Conn,
    StatementUnfit,
    first_line,
    probe_claims,
    probe_core_trigger,
    probe_dedupe,
    probe_direct_insert,
    sqlstate,
)
from contracts.rules import rule
from contracts.sqlfile import named_queries
from contracts.sqlscan import scan_sql

Q = named_queries("live")
ENABLED = {"O": "enabled", "A": "enabled (always)", "R": "enabled for replicas only", "D": "disabled"}


@dataclass
class LiveReport:
    server: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    evidence: dict[str, list[str]] = field(default_factory=dict)  # rule -> what was looked at


def connect(dsn: str) -> Conn:
    """An autocommit connection, or ContractInputError saying why the DSN does not work."""
    try:
        return psycopg.connect(
            dsn, autocommit=True, connect_timeout=10, application_name="pipeline-contracts"
        )
    except psycopg.Error as exc:
        raise ContractInputError(f"cannot connect to --postgres: {first_line(exc)}") from exc


def check_live(dsn: str, config: Config) -> LiveReport:
    """Every live contract against the database at `dsn`."""
    report = LiveReport()
    with connect(dsn) as conn:
        report.server = {k: str(v) for k, v in _one(conn, "server").items()}
        for rule_id, check in CHECKS:
            try:
                found, seen = check(conn, config)
            except StatementUnfit as exc:
                found = [_unfit(rule_id, exc)]
                seen = [f"not checked: {exc}"]
            except psycopg.Error as exc:
                found = [
                    Finding(
                        rule_id,
                        Level.ERROR,
                        f"could not check: SQLSTATE {sqlstate(exc)}: {first_line(exc)}",
                        rule(rule_id).help,
                        object="database " + report.server.get("database", "?"),
                    )
                ]
                seen = [f"the check failed with SQLSTATE {sqlstate(exc)}"]
            report.findings.extend(found)
            report.evidence[rule_id] = seen
    return report


def _one(conn: Conn, query: str, **params: Any) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        return dict(cur.execute(Q[query], params).fetchone() or {})


def _all(conn: Conn, query: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return [dict(r) for r in cur.execute(Q[query], params).fetchall()]


def _f(rule_id: str, message: str, obj: str, level: Level = Level.ERROR) -> Finding:
    return Finding(rule_id, level, message, rule(rule_id).help, object=obj)


Result = tuple[list[Finding], list[str]]


CONFIG_FIX = (
    "Set {key} in the contracts config to this pipeline's own statement (contracts/README.md, Live probes on "
    "any pipeline), so the check runs against this pipeline's shapes instead of the reference's."
)


def _unfit(rule_id: str, exc: StatementUnfit) -> Finding:
    """A check (or part of one) that could not run: its statement does not fit the database."""
    return Finding(
        rule_id,
        Level.WARNING,
        f"could not check: {exc}",
        CONFIG_FIX.format(key=exc.key),
        object=f"config {exc.key}",
    )


def _not_applicable(rule_id: str, what: str, key: str) -> Finding:
    """A part of a check the contracts config declares absent from this pipeline."""
    return Finding(
        rule_id,
        Level.NOTE,
        f"not checked: {what}",
        f"Nothing to do if the pipeline has none; once it has, set {key} in the contracts config.",
        object=f"config {key}",
    )


def core_trigger(conn: Conn, config: Config) -> Result:
    obj = f"trigger {config.core_trigger} on document_entities"
    rows = [
        r for r in _all(conn, "triggers", tables=["document_entities"]) if r["name"] == config.core_trigger
    ]
    if not rows:
        return [_f("PGC001", f"{obj} does not exist: no event becomes a job", obj)], ["pg_trigger: not found"]
    state = str(rows[0]["enabled"])
    seen = [f"pg_trigger.tgenabled = {state!r} ({ENABLED.get(state, state)}) for {obj}"]
    if state not in ("O", "A"):
        return [
            _f(
                "PGC001",
                f"{obj} is {ENABLED.get(state, state)} (tgenabled = {state!r}): appended events "
                "materialize no jobs",
                obj,
            )
        ], seen
    return [], seen


def projection_trigger(conn: Conn, config: Config) -> Result:
    table = config.projection_table
    triggers = _all(conn, "triggers", tables=["document_entities"])
    writers: dict[str, dict[str, Any]] = {}
    for trig in triggers:
        rows = _all(conn, "function", name=trig["function"])
        facts = scan_sql(rows[0]["definition"]) if rows else None
        if facts is not None and any(f.kind == "write" and f.name == table for f in facts.facts):
            writers[trig["name"]] = trig
    seen = [
        f"triggers on document_entities: {', '.join(t['name'] + '->' + t['function'] for t in triggers) or 'none'}; "
        f"writing {table}: {', '.join(writers) or 'none'}"
    ]
    core = next((t for t in triggers if t["name"] == config.core_trigger), None)
    found = []
    if core is not None and core["name"] in writers:
        obj = f"trigger {core['name']} on document_entities"
        found.append(
            _f(
                "PGC002",
                f"the core trigger's function {core['function']} writes {table}: the projection "
                "is folded into the core trigger",
                obj,
            )
        )
    for name, trig in writers.items():
        if core is not None and name != core["name"] and trig["function_oid"] == core["function_oid"]:
            found.append(
                _f(
                    "PGC002",
                    f"projection trigger {name} runs the core function {trig['function']}",
                    f"trigger {name} on document_entities",
                )
            )
    if not writers:
        found.append(
            _f(
                "PGC002",
                f"no trigger on document_entities writes {table}: the projection is missing or "
                "not derived from events",
                "table document_entities",
                Level.WARNING,
            )
        )
    return found, seen


def claims_behaviour(conn: Conn, config: Config) -> Result:
    job_types = {r["name"]: r["kind"] for r in _all(conn, "job_types")}
    found, seen = [], []
    for probe in probe_claims(conn, config, job_types):
        obj = f"function {probe.function}"
        if probe.unfit is not None:
            found.append(_unfit("PGC003", probe.unfit))
            seen.append(f"{probe.function}: not called ({probe.unfit.problem})")
            continue
        returned = ", ".join(f"{t} ({k})" for _, t, k in probe.returned) or "nothing"
        seen.append(
            f"seeded one job of each type ({', '.join(sorted(job_types))}) in a rolled-back transaction; "
            f"{probe.function} returned: {returned}"
        )
        if probe.wrong:
            kinds = ", ".join(sorted({f"{t} ({k})" for _, t, k in probe.wrong}))
            found.append(
                _f(
                    "PGC003",
                    f"{probe.function} returned jobs that are not {probe.expected_kind} jobs: {kinds}",
                    obj,
                )
            )
        if probe.missing_own:
            found.append(
                _f(
                    "PGC003",
                    f"{probe.function} did not return the seeded {probe.expected_kind} job(s) "
                    f"{', '.join(probe.missing_own)}",
                    obj,
                )
            )
    return found, seen


def claims_definition(conn: Conn, config: Config) -> Result:
    job_types = {r["name"]: r["kind"] for r in _all(conn, "job_types")}
    found, seen = [], []
    for function in config.claims:
        kind = config.claim_kind(function)
        other = "execution" if kind == "decision" else "decision"
        obj = f"function {function}"
        rows = _all(conn, "function", name=function)
        if not rows:
            found.append(_f("PGC004", f"{function} does not exist", obj))
            continue
        facts = scan_sql(rows[0]["definition"])
        literals = {f.name for f in facts.of("literal")} if facts else set()
        foreign = sorted(lit for lit in literals if lit == other or job_types.get(lit) == other)
        seen.append(
            f"pg_get_functiondef({function}) names: {', '.join(sorted(literals & {kind, other, *job_types})) or 'no kind or type'}"
        )
        if foreign:
            found.append(
                _f(
                    "PGC004",
                    f"{function} names {', '.join(repr(x) for x in foreign)} in its definition; it "
                    f"may return only {kind} jobs",
                    obj,
                )
            )
        elif kind not in literals and not any(job_types.get(lit) == kind for lit in literals):
            found.append(
                _f(
                    "PGC004",
                    f"{function} names neither {kind!r} nor a {kind} job type: nothing in its "
                    "definition limits it to its kind",
                    obj,
                )
            )
    return found, seen


def whitelist(conn: Conn, config: Config) -> Result:
    live = {r["name"]: r["kind"] for r in _all(conn, "job_types")}
    declared = config.job_types
    obj = "table job_types"
    found = [
        _f("PGC005", f"job type {n!r} ({k}) is in job_types but not declared", obj)
        for n, k in sorted(live.items())
        if n not in declared
    ]
    found += [
        _f("PGC005", f"declared job type {n!r} ({k}) is missing from job_types", obj)
        for n, k in sorted(declared.items())
        if n not in live
    ]
    found += [
        _f("PGC005", f"job type {n!r} is {live[n]} in job_types but declared {k}", obj)
        for n, k in sorted(declared.items())
        if n in live and live[n] != k
    ]
    return found, [
        f"job_types: {', '.join(f'{n}={k}' for n, k in sorted(live.items()))}; declared in {config.origin}"
    ]


def gateway_only_writer(conn: Conn, config: Config) -> Result:
    obj = f"trigger {config.guard_trigger} on executor_jobs"
    rows = [r for r in _all(conn, "triggers", tables=["executor_jobs"]) if r["name"] == config.guard_trigger]
    found: list[Finding] = []
    seen = [f"pg_trigger: {obj} " + (f"tgenabled = {rows[0]['enabled']!r}" if rows else "not found")]
    if not rows:
        found.append(_f("PGC006", f"{obj} does not exist: anything may insert into executor_jobs", obj))
    elif rows[0]["enabled"] not in ("O", "A"):
        found.append(
            _f("PGC006", f"{obj} is {ENABLED.get(rows[0]['enabled'])}: direct inserts are not stopped", obj)
        )
    execution = sorted(n for n, k in config.job_types.items() if k == "execution")
    probe = probe_direct_insert(conn, "protect" if "protect" in execution else execution[0], config=config)
    seen.extend(probe.evidence)
    found.extend(_unfit("PGC006", exc) for exc in probe.unfit)
    if config.statement("compat_warnings_read").declared_none:
        found.append(
            _not_applicable(
                "PGC006",
                "compat_warnings_read = none: the pipeline records no compat warnings, so a redirected insert "
                "is judged without one",
                "compat_warnings_read",
            )
        )
    rejection = (
        f"SQLSTATE {config.strict_reject_sqlstate}"
        if config.strict_reject_sqlstate
        else "an error outside classes 23 and 42"
    )
    if probe.mode == "strict" and not probe.rejected:
        found.append(
            _f(
                "PGC006",
                "gateway_mode is strict but a direct insert into executor_jobs was "
                + (
                    f"refused for another reason ({probe.error_sqlstate}: {probe.error}; a strict rejection "
                    f"is {rejection})"
                    if probe.error
                    else "accepted"
                ),
                "table executor_jobs",
            )
        )
    elif probe.mode is None and not (probe.rejected or probe.redirected):
        found.append(
            _f(
                "PGC006",
                f"a direct insert was {_outcome(probe)}; with no gateway mode known it must be redirected "
                f"through the gateway (with a compat warning) or rejected ({rejection})",
                "table executor_jobs",
            )
        )
    elif probe.mode not in (None, "strict") and not probe.redirected:
        found.append(
            _f(
                "PGC006",
                f"gateway_mode is {probe.mode} but a direct insert was {_outcome(probe)}; it must be "
                "redirected through the gateway and recorded as a compat warning",
                "table executor_jobs",
            )
        )
    return found, seen


def _outcome(probe: Any) -> str:
    """What became of the PGC006 probe's direct insert, in words."""
    if probe.error:
        return f"failed ({probe.error_sqlstate}: {probe.error})"
    if probe.direct_rows:
        return f"kept as inserted ({probe.direct_rows} row)"
    if probe.redirected_rows:
        return "redirected without a compat warning"
    return "lost (no job materialized)"


def gateway_definer(conn: Conn, config: Config) -> Result:
    found, seen = [], []
    for name in config.gateway_functions:
        obj = f"function {name}"
        rows = _all(conn, "function", name=name)
        if not rows:
            found.append(_f("PGC007", f"gateway function {name} does not exist", obj))
            continue
        row = rows[-1]
        settings = list(row["config"] or [])
        seen.append(f"pg_proc {name}: prosecdef={row['security_definer']}, proconfig={settings}")
        if not row["security_definer"]:
            found.append(
                _f(
                    "PGC007",
                    f"gateway function {name} is SECURITY INVOKER: it runs with the caller's privileges",
                    obj,
                )
            )
        if not any(str(s).startswith("search_path=") for s in settings):
            found.append(
                _f("PGC007", f"gateway function {name} has no pinned search_path (SET search_path)", obj)
            )
    return found, seen


def dedupe_fix(conn: Conn, config: Config) -> Result:
    gateway = config.gateway_functions[0]
    job_type = next(iter(sorted(config.job_types)), "protect")
    probe = probe_dedupe(conn, config, job_type)
    obj = f"function {gateway}"
    if probe.error_sqlstate == "42702":
        return [
            _f(
                "PGC009",
                f"{gateway} fails with SQLSTATE 42702 ({probe.error}): the ambiguous dedupe-key fix is "
                "not applied; no job can be materialized",
                obj,
            )
        ], [f"gateway call: 42702 {probe.error}"]
    if probe.error_sqlstate:
        return [_f("PGC009", f"{gateway} fails with SQLSTATE {probe.error_sqlstate}: {probe.error}", obj)], [
            f"gateway call failed: {probe.error_sqlstate}"
        ]
    seen = [
        f"{gateway} called twice for one source event in a rolled-back transaction: first {probe.first}, "
        f"second {probe.second}"
    ]
    if probe.second.get("job_id") is None:
        return [
            _f(
                "PGC009",
                f"{gateway} returned no job for the second call for the same source event (the first "
                f"returned job {probe.first.get('job_id')}): a caller cannot tell the event already has its job",
                obj,
            )
        ], seen
    if probe.second.get("created") or probe.first.get("job_id") != probe.second.get("job_id"):
        return [
            _f(
                "PGC009",
                f"{gateway} materialized a second job for the same source event (dedupe key not applied)",
                obj,
            )
        ], seen
    return [], seen


def core_trigger_behaviour(conn: Conn, config: Config) -> Result:
    """PGC011: the core trigger present and enabled is not enough; each event that needs a job must get it."""
    job_types = {r["name"]: r["kind"] for r in _all(conn, "job_types")}
    expected = config.expected_jobs(job_types)
    probes, unfit = probe_core_trigger(conn, config, expected)
    obj = f"trigger {config.core_trigger} on document_entities"
    found = [_unfit("PGC011", exc) for exc in unfit]
    if config.statement("compat_warnings_read").declared_none:
        found.append(
            _not_applicable(
                "PGC011",
                "compat_warnings_read = none: a compat redirect is seen only by its materialized_via "
                f"({config.redirect_via})",
                "compat_warnings_read",
            )
        )
    found += [
        _f(
            "PGC011",
            f"appending {p.event_type} (in a rolled-back transaction) "
            + (
                f"failed: {p.error}"
                if p.error
                else f"materialized {', '.join(f'{t} via {v}' for t, v in p.jobs) or 'no job'}"
                + (f" with {p.warnings} compat warning(s)" if p.warnings else "")
                + f"; the core trigger must materialize {p.expected} through the gateway"
            ),
            obj,
        )
        for p in probes
        if not p.ok
    ]
    seen = [
        f"appended one event of each of {len(probes)} types to fresh entities in a rolled-back transaction "
        f"([core_events] over job_types); {sum(p.ok for p in probes)} materialized their job through the gateway",
        *(p.line() for p in probes if not p.ok),
    ]
    return found, seen


CHECKS: tuple[tuple[str, Callable[[Conn, Config], Result]], ...] = (
    ("PGC001", core_trigger),
    ("PGC002", projection_trigger),
    ("PGC003", claims_behaviour),
    ("PGC004", claims_definition),
    ("PGC005", whitelist),
    ("PGC006", gateway_only_writer),
    ("PGC007", gateway_definer),
    ("PGC008", worker_roles),
    ("PGC009", dedupe_fix),
    ("PGC010", replica_defaults),
    ("PGC011", core_trigger_behaviour),
    ("PGC012", live_functions),
)
