"""Planting one bug in a copy of the reference pipeline, starting from the function's CURRENT definition.

A planted copy must differ from the reference in its bug and nothing else: a hand-copied old body would
also bring back whatever later migrations changed (the checks, the plans, the queue). So a planted bug is
the definition in force, as `pipeline/sql/schema.sql` shows it (or as a live database's catalogue does),
with one targeted textual change, written as one extra migration in a copy of the migrations folder:

    sql = plant(
        "request_protection",
        old="    INSERT INTO document_entities (id, owner_id)",
        new="    RETURN gen_random_uuid();  -- the planted bug: acknowledged, never stored\\n"
            "    INSERT INTO document_entities (id, owner_id)",
    )
    folder = planted_migrations(tmp_path / "migrations", sql, bug="request-dropped")

`plant` refuses a change that could silently plant nothing or something else: `old` must occur exactly once
in the definition (give more context when it does not), the result must still parse (pglast, plpgsql bodies
included) as `CREATE OR REPLACE FUNCTION` of the same name and argument types, so that applying it replaces
the function instead of adding an overload beside it. `tests/quality/test_planted_pipelines.py` also builds
each planted copy and checks that its catalogue differs from schema.sql in that one function, by that change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pglast
import psycopg
from pglast.stream import RawStream

from tests.schema_snapshot import MIGRATIONS, SCHEMA, objects

PLANTED_MIGRATION = "0999_core_planted_bug.sql"
_INPUT_MODES = {"i", "b", "v", "d"}  # in, inout, variadic, default (in): the modes that make the identity


def current_definition(function: str, *, schema: Path = SCHEMA, dsn: str | None = None) -> str:
    """The `CREATE OR REPLACE FUNCTION` statement (no trailing semicolon) in force for `function`: a name, or
    `name(argtype,...)` as schema.sql heads its blocks when the name is overloaded. Read from `schema` (by
    default the committed schema.sql, which the snapshot test keeps equal to the catalogue), or from the live
    catalogue of the database at `dsn`."""
    if dsn is not None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET search_path = public")
            rows = conn.execute(
                """SELECT pg_get_functiondef(p.oid) FROM pg_proc p
                    WHERE p.pronamespace = 'public'::regnamespace
                      AND (p.proname = %s OR p.oid::regprocedure::text = %s)""",
                (function, function),
            ).fetchall()
        found = [str(definition).rstrip() for (definition,) in rows]
    else:
        blocks = objects(schema.read_text(encoding="utf-8"))
        found = [
            _first_statement(block)
            for key, block in blocks.items()
            if key == f"function {function}" or key.startswith(f"function {function}(")
        ]
    if len(found) != 1:
        where = "the database" if dsn else schema.name
        raise LookupError(
            f"{len(found)} functions named {function!r} in {where}: "
            + ("give its argument types, e.g. name(uuid,text)" if found else "no such function")
        )
    return found[0]


def plant(function: str, old: str, new: str, *, schema: Path = SCHEMA, dsn: str | None = None) -> str:
    """`function`'s current definition (see `current_definition`) with the one occurrence of `old` replaced
    by `new`, as a statement ready for a migration. Raises AssertionError when `old` is not there exactly
    once, when the change is no change, or when the result would not replace the function (it does not
    parse, or its name or argument types changed, or a plpgsql body no longer parses)."""
    original = current_definition(function, schema=schema, dsn=dsn)
    count = original.count(old)
    assert count == 1, (
        f"the text to replace occurs {count} times in the current definition of {function} "
        f"({'give more context' if count else 'see pipeline/sql/schema.sql for what it says now'}): {old!r}"
    )
    assert new != old, f"planting in {function}: `new` is the same text as `old`, nothing would change"
    planted = original.replace(old, new, 1)
    before, after = _identity(original), _identity(planted)
    assert after == before, (
        f"the planted definition of {function} would create {after} beside {before} instead of replacing it"
    )
    if "LANGUAGE plpgsql" in planted:
        try:
            pglast.parse_plpgsql(planted)
        except pglast.parser.ParseError as exc:
            raise AssertionError(f"the planted body of {function} is not valid plpgsql: {exc}") from exc
    return planted


def planted_migrations(dest: Path, sql: str, bug: str, source: Path = MIGRATIONS) -> Path:
    """A copy of the `source` migrations folder at `dest`, plus one core migration (applied last) holding
    `sql`, headed by the bug's name; returns `dest`. `sql` is usually what `plant` returned, but any
    statements will do."""
    shutil.copytree(source, dest)
    statement = sql.rstrip().rstrip(";")
    (dest / PLANTED_MIGRATION).write_text(
        f"-- class: core\n-- planted bug: {bug}\n{statement};\n", encoding="utf-8"
    )
    return dest


def _first_statement(block: str) -> str:
    start = block.index("CREATE OR REPLACE ")
    return str(next(iter(pglast.split(block[start:], with_parser=True))))


def _identity(definition: str) -> str:
    """`name(argtype, ...)` of a CREATE FUNCTION statement, by its parse tree: what decides whether CREATE OR
    REPLACE replaces a function or adds an overload."""
    try:
        (raw,) = pglast.parse_sql(definition)
    except (pglast.parser.ParseError, ValueError) as exc:
        raise AssertionError(f"not one parseable statement: {exc}") from exc
    stmt = raw.stmt
    assert type(stmt).__name__ == "CreateFunctionStmt" and stmt.replace, "not a CREATE OR REPLACE FUNCTION"
    name = ".".join(part.sval for part in stmt.funcname)
    types = [RawStream()(p.argType) for p in stmt.parameters or () if str(p.mode.value) in _INPUT_MODES]
    return f"{name}({', '.join(types)})"
