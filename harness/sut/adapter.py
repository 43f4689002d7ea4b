"""The harness's SQL for one pipeline: its named queries with the pipeline's relations put in, and the
statements the SUT file gives (the entry point, settings, failpoints, replay).

The harness's queries (`harness/sql/*.sql`) read canonical relations written `{jobs}`, `{runs}`,
`{entities}`, `{job_types}`, `{compat_warnings}`, `{settings}`, `{alert_state}`, `{alert_history}`. Each is
put in as a subquery: the pipeline's own table with its columns renamed and the optional ones it lacks as
NULL, or the SELECT the SUT file gives under `[reads]`. Nothing is created in the pipeline's database, so the
same reads work on a production DSN.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import BadInput, SutIncomplete
from harness.sqlfile import named_queries
from harness.sut.config import Sut
from harness.sut.contract import RELATIONS, SutFacts, discover, relation_capability

# The SQL type of each optional column, so a NULL in its place has the type a query expects of it.
NULL_TYPES = {
    "created_at": "timestamptz",
    "owner": "text",
    "kind": "text",
    "max_attempts": "integer",
    "materialized_via": "text",
    "last_error": "text",
    "finished_at": "timestamptz",
    "run_at": "timestamptz",
    "lease_owner": "text",
    "lease_expires_at": "timestamptz",
    "attempt": "integer",
    "error": "text",
    "result_event_id": "text",
    "source": "text",
    "job_type": "text",
    "entity_id": "text",
    "job_id": "bigint",
    "value": "double precision",
    "id": "bigint",
    "from_state": "text",
    "for_s": "double precision",
    "active_since": "timestamptz",
}
_PLACEHOLDER = re.compile(r"\{(" + "|".join(RELATIONS) + r")\}")


class SutSql:
    """One pipeline's SQL, as discovered in one migrated database."""

    def __init__(self, sut: Sut, facts: SutFacts) -> None:
        self.sut = sut
        self.facts = facts

    @classmethod
    def connect(cls, sut: Sut, dsn: str) -> SutSql:
        """Discover the pipeline at `dsn` (the catalogue only) and raise SutIncomplete listing every required
        object it lacks."""
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                facts = discover(conn, sut)
        except psycopg.OperationalError as exc:
            raise BadInput(f"cannot connect to {dsn!r}: {str(exc).strip().splitlines()[0]}") from exc
        if facts.missing:
            raise SutIncomplete(sut.name, facts.missing)
        return cls(sut, facts)

    @classmethod
    def discovered(cls, conn: psycopg.Connection[Any], sut: Sut | None = None) -> SutSql:
        """For reading only (a trace, a dashboard): the pipeline's relations as found on `conn`, with what the
        SUT file says if there is one; a relation it lacks fails when a query needs it, naming it."""
        sut = sut or Sut(name="(discovered)", migrations=Path("."), workers={})
        return cls(sut, discover(conn, sut))

    # -- relations ----------------------------------------------------------------------------------------
    def relation(self, name: str) -> str:
        """The canonical relation `name` as a parenthesized subquery."""
        return f"({self._selects[name]})"

    def has(self, name: str) -> bool:
        return name in self._selects

    @cached_property
    def _selects(self) -> dict[str, str]:
        selects: dict[str, str] = {}
        for relation in RELATIONS.values():
            if self.sut.capabilities.get(relation_capability(relation)) is False:
                continue  # declared absent in the SUT file: never read, even where it exists
            if relation.name in self.sut.reads:
                selects[relation.name] = self.sut.reads[relation.name]
                continue
            table = self.facts.tables.get(relation.name)
            if table is None:
                continue
            present = self.facts.columns.get(table, {})
            parts = []
            for column in relation.columns:
                own = relation.renamed.get(column, column)
                if column == "events" and present.get(own) == "jsonb[]":
                    parts.append(
                        f"to_jsonb({own}) AS events"
                    )  # a Postgres array of events, read as one JSON array
                elif own in present:
                    parts.append(own if own == column else f"{own} AS {column}")
                elif column == "kind" and relation.name == "jobs" and "job_types" in self.facts.tables:
                    parts.append(
                        f"(SELECT t.kind FROM {self.facts.tables['job_types']} t WHERE t.name = r.job_type) AS kind"
                    )
                else:
                    parts.append(f"NULL::{NULL_TYPES.get(column, 'text')} AS {column}")
            selects[relation.name] = f"SELECT {', '.join(parts)} FROM {table} r"
        return selects

    def render(self, text: str) -> str:
        """A query with its `{relation}` placeholders put in; a relation the pipeline lacks is an error
        naming it (callers ask `has` first for optional ones)."""

        def put(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self._selects:
                raise SutIncomplete(self.sut.name, [f"{name}: {self.facts.why_not(name)}"])
            return self.relation(name)

        return _PLACEHOLDER.sub(put, text)

    def queries(self, file: str) -> _Rendered:
        """`{name: statement}` of harness/sql/<file>.sql, rendered for this pipeline (lazily, per query)."""
        return _Rendered(self, file)

    # -- statements from the SUT file --------------------------------------------------------------------
    def setting_statement(self, key: str) -> str | None:
        """How to write setting `key`, or None when the pipeline cannot take it."""
        if not self.facts.has("settings") and not self.facts.has(f"setting:{key}"):
            return None
        statements = self.sut.setting_statements
        if key in statements:
            return statements[key]
        if "*" in statements:
            return statements["*"]
        if "settings" in self.facts.tables and "settings" not in self.sut.reads:
            return (
                f"INSERT INTO {self.facts.tables['settings']} (key, value) VALUES (%(key)s, %(value)s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            )
        return None

    def can_set(self, key: str, value: str | None = None) -> str | None:
        """None when setting `key` (to `value`) is possible; else why not, for a not-applicable verdict."""
        if self.sut.capabilities.get(f"setting:{key}") is False:
            return f"setting:{key}: declared absent in the SUT file"
        if key in self.sut.fixed_settings:
            fixed = self.sut.fixed_settings[key]
            if value is None or str(value) == fixed:
                return None
            return f"setting:{key} is fixed at {fixed} in the pipeline ([fixed_settings]); the scenario needs {value}"
        if self.setting_statement(key) is None:
            return f"setting:{key}: {self.facts.why_not('settings')}"
        return None

    def write_settings(self, dsn: str, settings: dict[str, str]) -> None:
        """Write each setting the pipeline can take (a fixed one that already has the value is skipped)."""
        if not settings:
            return
        with psycopg.connect(dsn, autocommit=True) as conn:
            for key, value in settings.items():
                why = self.can_set(key, value)
                if why is not None:
                    raise BadInput(why)
                statement = self.setting_statement(key)
                if statement is not None:
                    conn.execute(statement, {"key": key, "value": str(value)})

    def read_setting(self, conn: psycopg.Connection[Any], key: str) -> str | None:
        if key in self.sut.fixed_settings:
            return self.sut.fixed_settings[key]
        if not self.has("settings"):
            return None
        row = conn.execute(
            f"SELECT value FROM {self.relation('settings')} s WHERE key = %(key)s",
            {"key": key},
        ).fetchone()
        return None if row is None else str(row[0])

    def failpoint(self, point: str) -> str:
        return self.sut.failpoints.points[point]

    def failpoint_action(self, action: str) -> str:
        return self.sut.failpoints.actions.get(action, action)

    def alert_rule(self, alert: str) -> str | None:
        """The pipeline's rule name for one of the harness's alerts (None: not mapped)."""
        return self.sut.alerts.rules.get(alert)

    def alert_name(self, rule: str) -> str:
        """The harness's alert name for a pipeline rule (the rule's own name when it maps to none)."""
        for alert, mapped in self.sut.alerts.rules.items():
            if mapped == rule:
                return alert
        return rule

    @property
    def alerts_from_sut(self) -> bool:
        return self.facts.has("alerts")

    def entities_have(self, column: str) -> bool:
        """Whether the entities relation has `column` for real (not a NULL put in its place)."""
        if "entities" in self.sut.reads:
            return True
        own = {"owner": "owner_id"}.get(column, column)
        return own in self.facts.columns.get("document_entities", {})

    @property
    def events_as_array(self) -> bool:
        """Whether document_entities.events is a Postgres array of jsonb (else a JSON array)."""
        return self.facts.columns.get("document_entities", {}).get("events") == "jsonb[]"

    def legacy_insert(self) -> str:
        """The statement a legacy path ran: a job straight into executor_jobs, no canonical event behind it,
        built from the columns the pipeline's table has (%(entity_id)s)."""
        columns = self.facts.columns.get("executor_jobs", {})
        values = {
            "job_type": "'protect'",
            "entity_id": "%(entity_id)s::uuid",
            "dedupe_key": "'legacy:' || %(entity_id)s::text || ':' || gen_random_uuid()",
            "source_event_id": "gen_random_uuid()",
            "kind": "'execution'",
            "payload": "jsonb_build_object('document', 'legacy copy of ' || %(entity_id)s::text)",
            "materialized_via": "'legacy:user_documents'",
        }
        chosen = {k: v for k, v in values.items() if k in columns}
        return f"INSERT INTO executor_jobs ({', '.join(chosen)}) VALUES ({', '.join(chosen.values())})"

    def authority_write(self, name: str) -> str:
        """A write to document_entities.events (faults.sql's `reappend_same_event`, `append_event`), in the
        form that fits the column: a JSON array, or a Postgres array of jsonb."""
        return self.queries("faults")[f"{name}_array" if self.events_as_array else name]

    # -- the entry point -----------------------------------------------------------------------------------
    def request(
        self,
        conn: psycopg.Connection[Any],
        entity_id: str,
        document: str,
        owner: str = "harness",
        event_id: str | None = None,
    ) -> Any:
        """Ask the pipeline for a new flow through its entry point ([entry] in the SUT file). A SQL entry raises
        psycopg's errors; a command entry raises EntryFailed (it said no) or EntryUnknown (no answer in time)."""
        params = {"entity_id": entity_id, "document": document, "owner": owner, "event_id": event_id}
        entry = self.sut.entry
        if entry.request:
            cur = conn.execute(entry.request, params)
            row = cur.fetchone() if cur.description else None
            return row[0] if row else None
        dsn = conn.info.dsn
        argv = [
            part.format(**{k: v or "" for k, v in params.items()}, dsn=dsn, python=sys.executable)
            for part in entry.request_command
        ]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                env={**os.environ, **self.sut.env},
            )
        except subprocess.TimeoutExpired as exc:
            raise EntryUnknown(f"entry command gave no answer within 30 s: {' '.join(argv)}") from exc
        except OSError as exc:
            raise BadInput(f"entry command cannot run: {exc}; fix [entry] request_command") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise EntryFailed(f"entry command exited {done.returncode}: {last}")
        return done.stdout.strip() or None


class EntryFailed(Exception):
    """The pipeline's entry command refused the request (it exited non-zero)."""


class EntryUnknown(Exception):
    """The pipeline's entry command did not answer in time: the request may or may not have landed."""


class _Rendered(dict[str, str]):
    """A mapping of query name -> statement that renders each statement the first time it is asked for, so a
    query over a relation the pipeline lacks fails only if it is used."""

    def __init__(self, sql: SutSql, file: str) -> None:
        super().__init__()
        self._sql = sql
        self._raw = named_queries(file)

    def __missing__(self, name: str) -> str:
        if name not in self._raw:
            raise KeyError(name)
        text = self._sql.render(self._raw[name])
        self[name] = text
        return text

    def __contains__(self, name: object) -> bool:
        return name in self._raw
