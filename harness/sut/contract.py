"""The SUT contract, as code: what the harness requires of a pipeline, which optional capabilities it looks
for, and how it finds them in a migrated database (CONTRACT.md is the same contract in prose).

`discover(conn, sut)` reads the catalogue (never the data), so it is cheap and safe on a production
database: it returns `SutFacts`: the required objects that are missing (each with what to add), the
capabilities present (with how each was found) and absent (with why), and the columns of each canonical
relation, from which `adapter.SutSql` builds the harness's reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from harness.sqlfile import named_queries
from harness.sut.config import ALERTS, FAILPOINT_POINTS, Sut

Q = named_queries("contract")

CORE_TRIGGER = "on_document_entity_events_change"
CLAIMS = ("claim_initial_decision_jobs", "claim_orchestrator_jobs")


@dataclass(frozen=True)
class Relation:
    """A canonical relation the harness reads: its default table, the columns it must have, the ones it
    uses when present (NULL otherwise), and the name a column may have in the pipeline's own table."""

    name: str
    table: str | None
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)  # canonical column -> the default table's name
    needed: bool = True  # False: the relation itself is a capability

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation(
            "entities", "document_entities", ("id", "events"), ("created_at", "owner"), {"owner": "owner_id"}
        ),
        Relation(
            "jobs",
            "executor_jobs",
            (
                "id",
                "job_type",
                "entity_id",
                "dedupe_key",
                "status",
                "attempts",
                "source_event_id",
                "correlation_id",
                "trace_id",
                "created_at",
            ),
            (
                "kind",
                "max_attempts",
                "materialized_via",
                "last_error",
                "finished_at",
                "run_at",
                "lease_owner",
                "lease_expires_at",
            ),
        ),
        Relation(
            "runs",
            "executor_job_runs",
            ("id", "job_id", "worker", "started_at", "finished_at", "outcome", "correlation_id", "trace_id"),
            ("attempt", "error", "result_event_id"),
        ),
        Relation("job_types", "job_types", ("name", "kind")),
        Relation(
            "compat_warnings",
            "compat_warnings",
            ("id", "at"),
            ("source", "job_type", "entity_id", "job_id"),
            needed=False,
        ),
        Relation("settings", "pipeline_settings", ("key", "value"), needed=False),
        Relation("alert_state", "alert_state", ("rule", "state"), needed=False),
        # The pipeline's own KPI: only through [reads] kpi (no default table: the RFC names no object for it).
        Relation("kpi", None, ("entity_id", "event_id", "status"), needed=False),
        Relation(
            "alert_history",
            "alert_history",
            ("rule", "state", "at"),
            ("id", "from_state", "value", "for_s", "active_since"),
            {"state": "to_state"},
            needed=False,
        ),
    )
}

# The required objects, by the prefix of their line in SutFacts.missing, and what each is.
REQUIRED_ITEMS: tuple[tuple[str, str], ...] = (
    ("entities", "document_entities (id, events): the only domain authority"),
    ("jobs", "executor_jobs: the only queue"),
    ("runs", "job runs, one row per attempt (executor_job_runs, or [reads] runs)"),
    ("job_types", "job_types (name, kind): the whitelist"),
    ("core trigger", f"{CORE_TRIGGER} on document_entities"),
    (f"claim {CLAIMS[0]}", "claims decision jobs only"),
    (f"claim {CLAIMS[1]}", "claims execution jobs only"),
    ("entry point", "[entry] request: how a client asks for a new flow"),
    ("worker fase1-executor", "[workers] command of the decision worker"),
    ("worker orchestrator", "[workers] command of the executor"),
)

# Capabilities: name -> (what it is, what it unlocks). Parameterized ones are written NAME:<value>.
CAPABILITIES: dict[str, tuple[str, str]] = {
    "settings": (
        "the harness can write settings (a pipeline_settings table, or [setting_statements] in the SUT file)",
        "scenarios that set lease, retry or gateway timing (setting:<key> each)",
    ),
    "compat-warnings": (
        "compat warnings are readable (a compat_warnings table, or [reads] compat_warnings)",
        "the compat_warnings check and the legacy-insert compat scenario",
    ),
    "materialized-via": (
        "jobs say how they were materialized (executor_jobs.materialized_via)",
        "strict_gateway's check of jobs admitted around the gateway",
    ),
    "failpoints": (
        "failpoints can be armed, disarmed and counted ([failpoints] arm, disarm, hits)",
        "the failpoint fault (failpoint:<point> each, mapped in [failpoints.points])",
    ),
    "replay": (
        "events that got no job can be replayed through the gateway ([conventions] replay)",
        "healing a disabled core trigger (the not-enqueued runbook's remedy)",
    ),
    "projection-trigger": (
        "a trigger projects events into user_documents",
        "the disable-projection-trigger fault",
    ),
    "alerts": (
        "the pipeline evaluates its own alerts (alert_history, a rule mapping in [alerts.rules])",
        "expected and quiet alerts judged on the pipeline's own alerting (else on the harness's pack)",
    ),
    "kpi": (
        "the pipeline's own event_to_job_gap KPI is readable ([reads] kpi: entity_id, event_id, status)",
        "kpi_agrees: the KPI cross-checked against the raw rows",
    ),
    "side-effects": (
        "the external services say what they issued per job ([side_effects] and /_admin/issued)",
        "one_side_effect_per_job: a token, a receipt per job, none twice",
    ),
    "heartbeats": (
        "workers record heartbeats (worker_heartbeats)",
        "the worker-absent alert; the harness otherwise sees a worker ready once it holds a connection",
    ),
}


# A capability and the parameterized ones that depend on it.
FAMILIES = {"failpoints": "failpoint", "settings": "setting:", "alerts": "alert:"}


@dataclass(frozen=True)
class SutFacts:
    """What discovery found in one migrated database."""

    missing: tuple[str, ...] = ()  # required objects absent, each with what to add
    present: Mapping[str, str] = field(default_factory=dict)  # capability -> how it was found
    absent: Mapping[str, str] = field(default_factory=dict)  # capability -> why it is not there
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # table -> column -> type
    tables: Mapping[str, str] = field(default_factory=dict)  # canonical relation -> default table found
    projection_trigger: str | None = None

    def has(self, capability: str) -> bool:
        return capability in self.present

    def why_not(self, capability: str) -> str:
        return self.absent.get(capability, f"the pipeline has no {capability}")


def _catalog(conn: psycopg.Connection[Any], query: str, **params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(Q[query], params).fetchall()


def discover(conn: psycopg.Connection[Any], sut: Sut) -> SutFacts:
    """Read the catalogue of a migrated database and judge it against the contract."""
    missing: list[str] = []
    present: dict[str, str] = {}
    absent: dict[str, str] = {}
    columns: dict[str, dict[str, str]] = {}
    tables: dict[str, str] = {}
    for relation in RELATIONS.values():
        if relation.name in sut.reads:
            problem = _check_read(conn, relation, sut.reads[relation.name])
            if problem is None:
                tables[relation.name] = "[reads]"
            elif relation.needed:
                missing.append(problem)
            else:
                absent[relation_capability(relation)] = problem
            continue
        if relation.table is None:
            absent[relation_capability(relation)] = f"no [reads] {relation.name} in the SUT file"
            continue
        found = {str(r[0]): str(r[1]) for r in _catalog(conn, "columns", table=relation.table)}
        if found:
            columns[relation.table] = found
        wanted = [relation.renamed.get(c, c) for c in relation.required]
        lacking = [c for c in wanted if c not in found]
        if not found:
            why = f"no table {relation.table}" + (
                f"; create it or give [reads] {relation.name} in the SUT file" if relation.needed else ""
            )
        else:
            why = f"{relation.table} lacks column(s) {', '.join(lacking)}; add them or give [reads] {relation.name}"
        if found and not lacking:
            tables[relation.name] = relation.table
        elif relation.needed:
            missing.append(f"{relation.name}: {why}")
        else:
            absent[relation_capability(relation)] = why
    if "compat_warnings" in tables:
        present["compat-warnings"] = f"compat warnings read from {tables['compat_warnings']}"
    if "kpi" in tables:
        present["kpi"] = "the pipeline's event_to_job_gap KPI ([reads] kpi)"
        absent.pop("kpi", None)
    jobs_cols = columns.get("executor_jobs", {})
    if "jobs" in sut.reads or "materialized_via" in jobs_cols:
        present["materialized-via"] = (
            "executor_jobs.materialized_via" if "jobs" not in sut.reads else "[reads] jobs"
        )
    else:
        absent["materialized-via"] = "executor_jobs has no materialized_via column"
    if not _catalog(conn, "trigger", table="document_entities", name=CORE_TRIGGER):
        missing.append(
            f"core trigger: no trigger {CORE_TRIGGER} on document_entities; the RFC's core trigger must "
            "materialize jobs from appended events"
        )
    for claim in CLAIMS:
        if not _catalog(conn, "function", name=claim):
            missing.append(f"claim {claim}: no function {claim}; the RFC names it as the claim of its role")
    if not sut.entry.given:
        missing.append(
            "entry point: the SUT file has no [entry] request (a SQL statement with %(entity_id)s and "
            "%(document)s) or request_command"
        )
    for role in ("fase1-executor", "orchestrator"):
        if role not in sut.workers:
            missing.append(f"worker {role}: the SUT file has no [workers] {role} command")
    _settings(conn, sut, tables, present, absent)
    _failpoints(conn, sut, present, absent)
    _alerts(sut, tables, present, absent)
    replay = sut.conventions.replay
    if replay:
        present["replay"] = "[conventions] replay"
    else:
        absent["replay"] = (
            "no [conventions] replay statement: events missed while the core trigger was off cannot be replayed"
        )
    projection = sut.conventions.projection_trigger or _projection_trigger(conn)
    if projection and _catalog(conn, "trigger", table="document_entities", name=projection):
        present["projection-trigger"] = f"trigger {projection}"
    else:
        projection = None
        absent["projection-trigger"] = "no trigger on document_entities writes user_documents"
    if _catalog(conn, "columns", table="worker_heartbeats"):
        present["heartbeats"] = "worker_heartbeats"
    else:
        absent["heartbeats"] = "no worker_heartbeats table"
    for role in sut.workers:
        present[f"role:{role}"] = "[workers]"
    for service in sut.services:
        present[f"service:{service}"] = "[services]"
    for set_name in sut.migration_sets:
        present[f"migration-set:{set_name}"] = "[migration_sets]"
    for capability, declared in sut.capabilities.items():
        if declared:
            continue
        # Declared absent in the SUT file: the harness does not use it even where it is there, nor the
        # capabilities of its family (failpoints -> failpoint:<point>, settings -> setting:<key>, ...).
        family = FAMILIES.get(capability)
        for name in [n for n in present if n == capability or (family and n.startswith(family))]:
            del present[name]
            absent[name] = f"declared absent in the SUT file ([capabilities] {capability} = false)"
        absent.setdefault(
            capability, f"declared absent in the SUT file ([capabilities] {capability} = false)"
        )
    return SutFacts(tuple(missing), present, absent, columns, tables, projection)


def relation_capability(relation: Relation) -> str:
    """The capability a relation stands for (`compat-warnings` for compat_warnings, ...)."""
    return {
        "compat_warnings": "compat-warnings",
        "settings": "settings",
        "alert_state": "alerts",
        "alert_history": "alerts",
    }.get(relation.name, relation.name)


def _check_read(conn: psycopg.Connection[Any], relation: Relation, select: str) -> str | None:
    """A `[reads]` SELECT runs and returns the relation's required columns."""
    try:
        with conn.transaction(force_rollback=True):
            cur = conn.execute(f"SELECT * FROM ({select}) AS q LIMIT 0")
            names = {d.name for d in cur.description or ()}
    except psycopg.Error as exc:
        return f"[reads] {relation.name} does not run: {str(exc).strip().splitlines()[0]}"
    lacking = [c for c in relation.required if c not in names]
    if lacking:
        return f"[reads] {relation.name} lacks column(s) {', '.join(lacking)}"
    return None


def _settings(
    conn: psycopg.Connection[Any],
    sut: Sut,
    tables: Mapping[str, str],
    present: dict[str, str],
    absent: dict[str, str],
) -> None:
    if sut.setting_statements:
        present["settings"] = "[setting_statements]" + (
            " (read through [reads] settings)" if "settings" in sut.reads else ""
        )
    elif "settings" in tables:
        present["settings"] = f"rows of {tables['settings']}"
    else:
        absent["settings"] = "no pipeline_settings table and no [setting_statements] in the SUT file"
    for key in (*sut.setting_statements, *sut.fixed_settings):
        if key != "*":
            present[f"setting:{key}"] = (
                "[setting_statements]" if key in sut.setting_statements else "[fixed_settings]"
            )


def _failpoints(
    conn: psycopg.Connection[Any], sut: Sut, present: dict[str, str], absent: dict[str, str]
) -> None:
    fp = sut.failpoints
    if fp.arm and fp.disarm and fp.hits:
        present["failpoints"] = "[failpoints] arm, disarm, hits"
    else:
        absent["failpoints"] = "no [failpoints] arm, disarm and hits statements in the SUT file"
    if "failpoints" in present and fp.scoped:
        present["failpoint-scope"] = f"[failpoints] scoped = {fp.scoped!r}"
    else:
        absent["failpoint-scope"] = (
            "no [failpoints] scoped name template: a failpoint cannot be aimed at one job type"
        )
    for point in FAILPOINT_POINTS:
        if "failpoints" in present and point in fp.points:
            present[f"failpoint:{point}"] = f"failpoint {fp.points[point]}"
        else:
            absent[f"failpoint:{point}"] = (
                f"no failpoint mapped to {point} ([failpoints.points])"
                if "failpoints" in present
                else absent["failpoints"]
            )


def _alerts(sut: Sut, tables: Mapping[str, str], present: dict[str, str], absent: dict[str, str]) -> None:
    readable = "alert_history" in tables
    source = sut.alerts.source
    if source == "auto":
        source = "sut" if readable and sut.alerts.rules else "harness"
    if source == "sut" and readable:
        present["alerts"] = f"the pipeline's own alert history ({tables['alert_history']})"
        for name in ALERTS:
            if name in sut.alerts.rules:
                present[f"alert:{name}"] = f"rule {sut.alerts.rules[name]}"
            else:
                absent[f"alert:{name}"] = (
                    f"the pipeline's alerts have no rule mapped to {name} ([alerts.rules])"
                )
    elif source == "sut":
        absent["alerts"] = (
            "[alerts] source = sut, but no alert history is readable (alert_history, or [reads])"
        )
    else:
        absent["alerts"] = (
            "the pipeline's own alerts are not used: the harness's observability pack judges alerts"
        )


def _projection_trigger(conn: psycopg.Connection[Any]) -> str | None:
    rows = _catalog(conn, "projection_triggers")
    return str(rows[0][0]) if rows else None


def missing_lines(facts: SutFacts) -> list[str]:
    """The required objects that are absent, one line each, for an exit-3 message."""
    return [f"missing {line}" for line in facts.missing]
