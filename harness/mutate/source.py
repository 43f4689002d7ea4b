"""Where mutants come from: the definitions in force in a database migrated with the SUT's migrations.

The catalogue, not the migration files, is the source: a function rewritten by three migrations is mutated
as the last one left it, exactly as `CREATE OR REPLACE` in one more migration will replace it. Only the
pipeline's own plpgsql and sql functions (and procedures) and its triggers are read, never the system's or an
extension's (`harness/sql/mutate.sql`).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from harness.errors import BadInput
from harness.sqlfile import named_queries


@dataclass(frozen=True)
class Definition:
    """A function (`kind` function: `target` its regprocedure, e.g. `public.f(text)`) or a trigger (`target`
    `name ON table`), with the text that creates it as it is now."""

    kind: str
    target: str
    name: str
    language: str
    text: str
    enabled: str = "O"  # a trigger's pg_trigger.tgenabled: O origin, A always, R replica, D disabled
    table: str = ""


def read_definitions(dsn: str, only: set[str] | None = None) -> list[Definition]:
    """Every function and trigger of the pipeline at `dsn` (`only`: those whose name is in it; a name
    matching nothing is bad input, so a typo never runs an empty session)."""
    queries = named_queries("mutate")
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        functions = conn.execute(queries["functions"]).fetchall()
        triggers = conn.execute(queries["triggers"]).fetchall()
    found = [
        Definition("function", row["identity"], row["name"], row["language"], row["definition"].rstrip())
        for row in functions
    ]
    found += [
        Definition(
            "trigger",
            f"{row['name']} ON {row['table_name']}",
            row["name"],
            "trigger",
            row["definition"],
            row["enabled"],
            row["table_name"],
        )
        for row in triggers
        if not row["is_constraint"]
    ]
    if only:
        unknown = only - {d.name for d in found} - {d.target for d in found}
        if unknown:
            names = ", ".join(sorted({d.name for d in found}))
            raise BadInput(
                f"--functions: no function or trigger named {', '.join(sorted(unknown))} (found: {names})"
            )
        found = [d for d in found if d.name in only or d.target in only]
    return found
