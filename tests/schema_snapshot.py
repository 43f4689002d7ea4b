"""`pipeline/sql/schema.sql`: the catalogue of a database migrated to the end, rendered for a reader.

Twelve functions of the pipeline are redefined whole by later migrations; schema.sql shows the one definition
that is live, with every table, index, trigger (and whether it fires), view, type, grant and seed row, in a
fixed order, so that regenerating it gives the same bytes. It is read back from Postgres' own catalogue
(`pg_get_functiondef`, `pg_get_constraintdef`, ...), never written by hand, and it is not a migration:
nothing applies it. `tests/integration/test_schema_snapshot.py` fails when the migrations build anything
else.

    python -m tests.schema_snapshot --write    # regenerate schema.sql, record new migrations in SHA256SUMS
    python -m tests.schema_snapshot --check    # exit 1 with a unified diff when schema.sql is stale

It needs a Postgres server (an embedded one, from the harness), so it lives beside the tests: `pipeline/`
imports nothing of the harness.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests import migration_manifest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "pipeline" / "sql" / "schema.sql"
MIGRATIONS = ROOT / "pipeline" / "sql" / "migrations"
REGENERATE = "python -m tests.schema_snapshot --write"

# One line opens every object's block; a drift report names objects by the block a changed line is in.
OBJECT_LINE = re.compile(r"^-- (role|schema|type|sequence|table|view|function|data) (\S.*)$")
# The harness's migration ledger (0001 creates it too): its rows say when a database was migrated.
LEDGER = "schema_migrations"
# The rule above and below each section's title.
RULE = "-- " + "=" * 105
# Seed rows are shown without the columns whose default differs on every build.
_VOLATILE_DEFAULT = re.compile(
    r"\b(now|clock_timestamp|statement_timestamp|transaction_timestamp|random|gen_random_uuid|nextval)\("
)
_UNQUOTED = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean"}
_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"]
_PRIVILEGES += ["EXECUTE", "USAGE", "CREATE"]
_CONSTRAINT_ORDER = {"p": 0, "u": 1, "x": 2, "f": 3, "c": 4, "t": 5}
_TRIGGER_STATE = {
    "O": ("enabled (fires unless session_replication_role = replica)", None),
    "A": ("enabled always (fires under session_replication_role = replica too)", "ENABLE ALWAYS"),
    "R": (
        "enabled for replicas only (fires only under session_replication_role = replica)",
        "ENABLE REPLICA",
    ),
    "D": ("DISABLED: never fires", "DISABLE"),
}

HEADER = f"""\
-- pipeline/sql/schema.sql: what the migrations in pipeline/sql/migrations/ build, read back from the
-- catalogue of a database migrated to the end (PostgreSQL {{major}}). Generated, do not edit; regenerate with
--
--     {REGENERATE}
--
-- NOT a migration: nothing applies this file. The migrations alone build the schema, and they are
-- append-only (pipeline/sql/migrations/SHA256SUMS); tests/integration/test_schema_snapshot.py fails when
-- they build anything other than this file. Left out: object owners (whoever ran the migrations), the
-- harness's ledger rows ({LEDGER}), and seed columns whose default differs on every build.
"""

Conn = psycopg.Connection[Any]


def _rows(conn: Conn, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


# --- privileges -------------------------------------------------------------------------------------------

_ACL_OBJECTS = """
SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass::text, c.relacl,
       c.relowner, CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT 'FUNCTION', p.oid::regprocedure::text, p.proacl, p.proowner, 'f'
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'TYPE', t.oid::regtype::text, t.typacl, t.typowner, 'T'
  FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
 WHERE t.typnamespace = 'public'::regnamespace AND coalesce(c.relkind, 'c') = 'c'
   AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
UNION ALL
SELECT 'SCHEMA', n.nspname::text, n.nspacl, n.nspowner, 'n' FROM pg_namespace n WHERE n.nspname = 'public'
"""

# What each object's ACL adds to and takes from the default ACL of its kind; the owner's own rights aside.
_ACL_CHANGES = f"""
WITH obj (kind, name, acl, owner, deftype) AS ({_ACL_OBJECTS}),
actual AS (
    SELECT o.kind, o.name, o.owner, a.grantee, a.privilege_type, a.is_grantable
      FROM obj o, aclexplode(coalesce(o.acl, acldefault(o.deftype::"char", o.owner))) a
), base AS (
    SELECT o.kind, o.name, o.owner, a.grantee, a.privilege_type, a.is_grantable
      FROM obj o, aclexplode(acldefault(o.deftype::"char", o.owner)) a
), changes AS (
    (SELECT 'GRANT' AS verb, * FROM actual EXCEPT SELECT 'GRANT', * FROM base)
    UNION ALL
    (SELECT 'REVOKE', * FROM base EXCEPT SELECT 'REVOKE', * FROM actual)
)
SELECT c.verb, c.kind, c.name, CASE WHEN c.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
       c.privilege_type, c.is_grantable
  FROM changes c LEFT JOIN pg_roles r ON r.oid = c.grantee
 WHERE c.grantee <> c.owner
"""

_COLUMN_ACL = """
SELECT c.oid::regclass::text, quote_ident(a.attname),
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, x.privilege_type, x.is_grantable
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 CROSS JOIN LATERAL aclexplode(a.attacl) x
  LEFT JOIN pg_roles r ON r.oid = x.grantee
 WHERE c.relnamespace = 'public'::regnamespace AND a.attacl IS NOT NULL AND x.grantee <> c.relowner
"""

Grants = dict[tuple[str, str], list[str]]


def _grants(conn: Conn) -> Grants:
    """`{(kind, object): [statement]}`: one GRANT or REVOKE per grantee, privileges in Postgres' order."""
    held: dict[tuple[str, str, str, str, bool], set[str]] = {}
    for verb, kind, name, grantee, privilege, grantable in _rows(conn, _ACL_CHANGES):
        held.setdefault((kind, name, verb, grantee, grantable), set()).add(privilege)
    for table, column, grantee, privilege, grantable in _rows(conn, _COLUMN_ACL):
        held.setdefault(("TABLE", table, "GRANT", grantee, grantable), set()).add(f"{privilege} ({column})")
    # Grantees given the same privileges on one object share a statement.
    shared: dict[tuple[str, str, str, str, bool], list[str]] = {}
    for (kind, name, verb, grantee, grantable), privileges in sorted(held.items()):
        listed = ", ".join(sorted(privileges, key=lambda p: (_PRIVILEGES.index(p.split()[0]), p)))
        shared.setdefault((kind, name, verb, listed, grantable), []).append(grantee)
    statements: Grants = {}
    # REVOKE first: what a kind gives everyone by default and this object does not, then what it adds.
    for (kind, name, verb, listed, grantable), grantees in sorted(
        shared.items(), key=lambda i: (i[0][:2], i[0][2] == "GRANT", i)
    ):
        to = "TO" if verb == "GRANT" else "FROM"
        option = " WITH GRANT OPTION" if grantable and verb == "GRANT" else ""
        statements.setdefault((kind, name), []).append(
            f"{verb} {listed} ON {kind} {name} {to} {', '.join(grantees)}{option};"
        )
    return statements


def _comments(conn: Conn, catalog: str, oid: int, kind: str, name: str) -> list[str]:
    rows = _rows(
        conn,
        """SELECT objsubid, quote_literal(description) FROM pg_description
            WHERE classoid = %s::regclass AND objoid = %s ORDER BY objsubid""",
        catalog,
        oid,
    )
    found = []
    for subid, text in rows:
        if subid == 0:
            found.append(f"COMMENT ON {kind} {name} IS {text};")
        else:
            (column,) = _rows(
                conn,
                "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s AND attnum = %s",
                oid,
                subid,
            )[0]
            found.append(f"COMMENT ON COLUMN {name}.{column} IS {text};")
    return found


# --- roles, schema, types ---------------------------------------------------------------------------------


def _roles(conn: Conn) -> list[str]:
    """The roles holding a privilege on the pipeline's objects, with their attributes and memberships (roles
    are cluster-wide: the others in the cluster are not the pipeline's)."""
    rows = _rows(
        conn,
        f"""WITH obj (kind, name, acl, owner, deftype) AS ({_ACL_OBJECTS}),
            grantee AS (
                SELECT a.grantee FROM obj o CROSS JOIN LATERAL aclexplode(o.acl) a WHERE a.grantee <> o.owner
                UNION
                SELECT x.grantee FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid
                 CROSS JOIN LATERAL aclexplode(t.attacl) x
                 WHERE c.relnamespace = 'public'::regnamespace AND t.attacl IS NOT NULL)
            SELECT quote_ident(r.rolname), r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole,
                   r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
                   ARRAY(SELECT quote_ident(g.rolname) || CASE WHEN m.admin_option THEN ' WITH ADMIN OPTION'
                                                              ELSE '' END
                           FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                          WHERE m.member = r.oid ORDER BY 1)
              FROM pg_roles r WHERE r.oid IN (SELECT grantee FROM grantee)""",
    )
    blocks = []
    for row in sorted(rows):
        name, login, superuser, inherit, createrole, createdb, replication, bypassrls, limit, groups = row
        flags = {"SUPERUSER": superuser, "NOINHERIT": not inherit, "CREATEROLE": createrole}
        flags |= {"CREATEDB": createdb, "REPLICATION": replication, "BYPASSRLS": bypassrls}
        options = ["LOGIN" if login else "NOLOGIN", *(word for word, on in flags.items() if on)]
        options += [f"CONNECTION LIMIT {limit}"] if limit != -1 else []
        lines = [f"-- role {name}", f"CREATE ROLE {name} {' '.join(options)};"]
        for group in groups:
            role, _, admin = group.partition(" ")
            lines.append(f"GRANT {role} TO {name}{' ' + admin if admin else ''};")
        blocks.append("\n".join(lines))
    return blocks


def _schema(conn: Conn, grants: Grants) -> list[str]:
    lines = ["-- schema public"]
    for ext, schema, version in _rows(
        conn,
        """SELECT quote_ident(e.extname), quote_ident(n.nspname), e.extversion
             FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            WHERE e.extname <> 'plpgsql' ORDER BY 1""",
    ):
        lines.append(f"CREATE EXTENSION {ext} WITH SCHEMA {schema};  -- version {version}")
    return ["\n".join([*lines, *grants.get(("SCHEMA", "public"), [])])]


def _types(conn: Conn, grants: Grants) -> list[str]:
    """Enums, composite types and domains (a table's or view's row type is its table, an array type its
    element's)."""
    rows = _rows(
        conn,
        """SELECT t.oid, t.oid::regtype::text, t.typtype, t.typrelid
             FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
            WHERE t.typnamespace = 'public'::regnamespace AND coalesce(c.relkind, 'c') = 'c'
              AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)""",
    )
    blocks = []
    for oid, name, typtype, relid in sorted(rows, key=lambda r: str(r[1])):
        if typtype == "e":
            labels = _rows(
                conn,
                "SELECT quote_literal(enumlabel) FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder",
                oid,
            )
            body = f"CREATE TYPE {name} AS ENUM ({', '.join(label for (label,) in labels)});"
        elif typtype == "c":
            fields = _rows(
                conn,
                """SELECT quote_ident(attname), format_type(atttypid, atttypmod) FROM pg_attribute
                    WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
                relid,
            )
            body = f"CREATE TYPE {name} AS (\n" + ",\n".join(f"    {f} {t}" for f, t in fields) + "\n);"
        elif typtype == "d":
            ((base, notnull, default),) = _rows(
                conn,
                "SELECT format_type(typbasetype, typtypmod), typnotnull, typdefault FROM pg_type WHERE oid = %s",
                oid,
            )
            checks = _rows(
                conn,
                """SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
                    WHERE contypid = %s AND contype = 'c'""",
                oid,
            )
            body = f"CREATE DOMAIN {name} AS {base}{' NOT NULL' if notnull else ''}"
            body += f" DEFAULT {default}" if default else ""
            body += "".join(f"\n    CONSTRAINT {c} {d}" for c, d in sorted(checks)) + ";"
        else:
            raise NotImplementedError(
                f"type {name} is of kind {typtype!r}: teach tests/schema_snapshot.py to show it"
            )
        comments = _comments(conn, "pg_type", oid, "TYPE", name)
        blocks.append("\n".join([f"-- type {name}", body, *comments, *grants.get(("TYPE", name), [])]))
    return blocks


# --- tables, sequences, views -----------------------------------------------------------------------------


def _columns(conn: Conn, oid: int) -> tuple[list[str], list[str]]:
    """The column lines of CREATE TABLE, and the ALTER TABLE lines of per-column settings."""
    rows = _rows(
        conn,
        """SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                  CASE WHEN a.attcollation <> t.typcollation
                       THEN (SELECT quote_ident(k.collname) FROM pg_collation k WHERE k.oid = a.attcollation) END,
                  coalesce(a.attstattarget::int, -1), CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
        oid,
    )
    width = max(len(r[0]) for r in rows)
    lines, settings = [], []
    storage = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
    for name, type_, notnull, default, identity, generated, collation, stats, store in rows:
        line = f"    {name.ljust(width)} {type_}"
        line += f" COLLATE {collation}" if collation else ""
        line += " NOT NULL" if notnull else ""
        if generated:
            line += f" GENERATED ALWAYS AS ({default}) {'STORED' if generated == 's' else 'VIRTUAL'}"
        elif default is not None:
            line += f" DEFAULT {default}"
        if identity:
            line += f" GENERATED {'ALWAYS' if identity == 'a' else 'BY DEFAULT'} AS IDENTITY"
        lines.append(line)
        if stats != -1:
            settings.append(f"ALTER COLUMN {name} SET STATISTICS {stats}")
        if store:
            settings.append(f"ALTER COLUMN {name} SET STORAGE {storage[store]}")
    return lines, settings


def _relation_extras(conn: Conn, oid: int, name: str) -> list[str]:
    """Indexes (those no constraint owns), rules, policies and triggers of a table or view, each trigger with
    whether it fires."""
    lines = [
        f"{definition};"
        for (definition,) in _rows(
            conn,
            """SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                WHERE i.indrelid = %s AND NOT EXISTS (
                      SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
                ORDER BY x.relname""",
            oid,
        )
    ]
    lines += [
        definition
        for (definition,) in _rows(
            conn,
            "SELECT pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = %s AND rulename <> '_RETURN' ORDER BY rulename",
            oid,
        )
    ]
    for policy, permissive, command, roles, using, check in _rows(
        conn,
        """SELECT quote_ident(policyname), permissive, cmd, array_to_string(roles, ', '), qual, with_check
             FROM pg_policies WHERE schemaname = 'public' AND tablename = %s ORDER BY policyname""",
        name.strip('"'),
    ):
        lines.append(
            f"CREATE POLICY {policy} ON {name} AS {permissive} FOR {command} TO {roles}"
            + (f" USING ({using})" if using else "")
            + (f" WITH CHECK ({check})" if check else "")
            + ";"
        )
    for trigger, definition, state in _rows(
        conn,
        """SELECT quote_ident(tgname), pg_get_triggerdef(oid), tgenabled FROM pg_trigger
            WHERE tgrelid = %s AND NOT tgisinternal ORDER BY tgname""",
        oid,
    ):
        said, switch = _TRIGGER_STATE[state]
        lines.append(f"{definition};  -- {said}")
        if switch:
            lines.append(f"ALTER TABLE {name} {switch} TRIGGER {trigger};")
    return lines


def _tables(conn: Conn, grants: Grants) -> list[str]:
    rows = _rows(
        conn,
        """SELECT c.oid, c.oid::regclass::text, c.relkind, c.relpersistence,
                  array_cat(c.reloptions, ARRAY(SELECT 'toast.' || o FROM unnest(t.reloptions) o)),
                  c.relrowsecurity, c.relforcerowsecurity, c.relreplident
             FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'f')""",
    )
    blocks = []
    for oid, name, relkind, persistence, options, rls, force_rls, replident in sorted(
        rows, key=lambda r: str(r[1])
    ):
        if relkind != "r":
            raise NotImplementedError(
                f"{name} is of relkind {relkind!r}: teach tests/schema_snapshot.py to show it"
            )
        columns, settings = _columns(conn, oid)
        constraints = _rows(
            conn,
            """SELECT contype, quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = %s AND contype <> 'n'""",
            oid,
        )
        constraints.sort(key=lambda c: (_CONSTRAINT_ORDER.get(c[0], 9), c[1]))
        body = columns + [f"    CONSTRAINT {cname} {definition}" for _, cname, definition in constraints]
        unlogged = "UNLOGGED " if persistence == "u" else ""
        with_ = f" WITH ({', '.join(sorted(options))})" if options else ""
        lines = [f"-- table {name}", f"CREATE {unlogged}TABLE {name} (", ",\n".join(body), f"){with_};"]
        lines += [f"ALTER TABLE {name} {setting};" for setting in settings]
        if rls:
            lines.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;")
        if force_rls:
            lines.append(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY;")
        if replident != "d":
            identity = {"n": "NOTHING", "f": "FULL", "i": "USING INDEX"}[replident]
            if replident == "i":
                ((index,),) = _rows(
                    conn,
                    """SELECT quote_ident(x.relname) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                        WHERE i.indrelid = %s AND i.indisreplident""",
                    oid,
                )
                identity += f" {index}"
            lines.append(f"ALTER TABLE {name} REPLICA IDENTITY {identity};")
        lines += _relation_extras(conn, oid, name)
        lines += _comments(conn, "pg_class", oid, "TABLE", name)
        lines += grants.get(("TABLE", name), [])
        blocks.append("\n".join(lines))
    return blocks


def _sequences(conn: Conn, grants: Grants) -> list[str]:
    """Sequences of their own (an identity column's sequence is its column), and any sequence with grants."""
    rows = _rows(
        conn,
        """SELECT c.oid::regclass::text, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
                  s.seqmax, s.seqcache, s.seqcycle,
                  EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                     AND d.deptype = 'i')
             FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'""",
    )
    blocks = []
    for name, type_, start, increment, minimum, maximum, cache, cycle, identity in sorted(rows):
        granted = grants.get(("SEQUENCE", name), [])
        if identity and not granted:
            continue
        lines = [f"-- sequence {name}"]
        if not identity:
            lines.append(
                f"CREATE SEQUENCE {name} AS {type_} INCREMENT {increment} MINVALUE {minimum} MAXVALUE {maximum} "
                f"START {start} CACHE {cache}{' CYCLE' if cycle else ''};"
            )
        blocks.append("\n".join(lines + granted))
    return blocks


def _views(conn: Conn, grants: Grants) -> list[str]:
    rows = _rows(
        conn,
        """SELECT c.oid, c.oid::regclass::text, c.relkind, c.reloptions, pg_get_viewdef(c.oid, true)
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')""",
    )
    blocks = []
    for oid, name, relkind, options, definition in sorted(rows, key=lambda r: str(r[1])):
        kind = "VIEW" if relkind == "v" else "MATERIALIZED VIEW"
        with_ = f" WITH ({', '.join(sorted(options))})" if options else ""
        lines = [f"-- view {name}", f"CREATE {kind} {name}{with_} AS", definition.rstrip()]
        lines += _relation_extras(conn, oid, name)
        lines += _comments(conn, "pg_class", oid, kind, name)
        lines += grants.get(("TABLE", name), [])
        blocks.append("\n".join(lines))
    return blocks


# --- functions and data -----------------------------------------------------------------------------------


def _functions(conn: Conn, grants: Grants) -> list[str]:
    rows = _rows(
        conn,
        """SELECT p.oid, p.proname, p.oid::regprocedure::text, p.prokind
             FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace""",
    )
    blocks = []
    for oid, _name, signature, prokind in sorted(rows, key=lambda r: (str(r[1]), str(r[2]))):
        if prokind not in ("f", "p"):
            raise NotImplementedError(
                f"{signature} is of kind {prokind!r}: teach tests/schema_snapshot.py to show it"
            )
        ((definition,),) = _rows(conn, "SELECT pg_get_functiondef(%s)", oid)
        lines = [f"-- function {signature}", definition.rstrip() + ";"]
        kind = "FUNCTION" if prokind == "f" else "PROCEDURE"
        lines += _comments(conn, "pg_proc", oid, kind, signature)
        lines += grants.get(("FUNCTION", signature), [])
        blocks.append("\n".join(lines))
    return blocks


def _data(conn: Conn) -> list[str]:
    """Every row a migration leaves in a table (seed data: job types, settings, alert rules and profiles), in
    primary-key order, less the columns whose default differs on every build."""
    tables = _rows(
        conn,
        """SELECT c.oid, c.oid::regclass::text FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname <> %s""",
        LEDGER,
    )
    blocks = []
    for oid, table in sorted(tables, key=lambda r: str(r[1])):
        if not _rows(conn, f"SELECT EXISTS (SELECT FROM {table})")[0][0]:
            continue
        columns = _rows(
            conn,
            """SELECT quote_ident(a.attname), format_type(a.atttypid, NULL), pg_get_expr(d.adbin, d.adrelid),
                      t.typcollation <> 0,
                      coalesce(array_position((SELECT k.conkey FROM pg_constraint k
                                                WHERE k.conrelid = a.attrelid AND k.contype = 'p'), a.attnum), 0)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
            oid,
        )
        shown = [c for c in columns if not (c[2] and _VOLATILE_DEFAULT.search(c[2]))]
        left_out = [f"{c[0]} (default {c[2]})" for c in columns if c not in shown]
        values = ", ".join(
            f"CASE WHEN {c} IS NULL THEN 'NULL' ELSE "
            + (f"{c}::text END" if type_ in _UNQUOTED else f"quote_literal({c}::text) END")
            for c, type_, *_ in shown
        )
        key = sorted((c for c in columns if c[4]), key=lambda c: c[4]) or shown
        order = ", ".join(f'{c[0]}::text COLLATE "C"' if c[3] else c[0] for c in key)
        rows = _rows(conn, f"SELECT ARRAY[{values}] FROM {table} ORDER BY {order}")
        lines = [f"-- data {table}"]
        if left_out:
            lines.append(f"-- (left out: {', '.join(left_out)})")
        lines.append(f"INSERT INTO {table} ({', '.join(c[0] for c in shown)}) VALUES")
        lines.append(",\n".join(f"    ({', '.join(row)})" for (row,) in rows) + ";")
        blocks.append("\n".join(lines))
    return blocks


# --- the whole file ---------------------------------------------------------------------------------------


def _section(title: str, blocks: list[str]) -> str:
    return f"{RULE}\n-- {title} ({len(blocks)})\n{RULE}\n\n" + "\n\n".join(blocks) if blocks else ""


def render(conn: Conn) -> str:
    """schema.sql's text for the database `conn` is connected to (in one read-only snapshot, with the
    session settings that shape the output fixed)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for setting, value in (("search_path", "public"), ("TimeZone", "UTC"), ("DateStyle", "ISO, YMD")):
            conn.execute("SELECT set_config(%s, %s, true)", (setting, value))
        conn.execute("SELECT set_config('IntervalStyle', 'postgres', true)")
        ((major,),) = _rows(conn, "SELECT current_setting('server_version_num')::int / 10000")
        grants = _grants(conn)
        sections = [
            _section("Roles that hold privileges on the pipeline's objects", _roles(conn)),
            _section("The schema: its extensions and grants", _schema(conn, grants)),
            _section("Types", _types(conn, grants)),
            _section("Tables, with their constraints, indexes, triggers and grants", _tables(conn, grants)),
            _section("Sequences of their own", _sequences(conn, grants)),
            _section("Views", _views(conn, grants)),
            _section(
                "Functions: the definition in force (pg_get_functiondef), by name", _functions(conn, grants)
            ),
            _section("Rows the migrations insert", _data(conn)),
        ]
    return HEADER.format(major=major) + "\n" + "\n\n".join(s for s in sections if s) + "\n"


def build(migrations: Path = MIGRATIONS) -> str:
    """Migrate a fresh database on a private embedded server and render it (the server is gone on return)."""
    from harness.provision import EmbeddedPostgres
    from harness.provision.migrations import MigrationPlan

    with (
        EmbeddedPostgres(ready_clones=0) as server,
        server.database(MigrationPlan(migrations)) as dsn,
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        return render(conn)


# --- drift ------------------------------------------------------------------------------------------------


def _owners(lines: list[str]) -> list[str | None]:
    """For each line, the object whose block it is in ('the file header' before the first object); None for
    the lines of a section's banner."""
    banner = {
        i + k
        for i, line in enumerate(lines)
        if line == RULE and lines[i + 2 : i + 3] == [RULE]
        for k in range(3)
    }
    current, owners = "the file header", []
    for i, line in enumerate(lines):
        match = OBJECT_LINE.match(line)
        if match:
            current = f"{match.group(1)} {match.group(2)}"
        owners.append(None if i in banner else current)
    return owners


def objects(text: str) -> dict[str, str]:
    """schema.sql's blocks by object (`function append_event(uuid,...)`, `table executor_jobs`, ...), each
    from its object line to the next object or section, less trailing blank lines."""
    lines = text.splitlines()
    found: dict[str, list[str]] = {}
    for owner, line in zip(_owners(lines), lines, strict=True):
        if owner is not None:
            found.setdefault(owner, []).append(line)
    return {name: "\n".join(block).rstrip("\n") for name, block in found.items()}


def differing(committed: str, built: str) -> list[str]:
    """The objects whose lines differ, in file order, each marked `(changed)`, `(added)` or `(removed)`."""
    old, new = committed.splitlines(), built.splitlines()
    old_owner, new_owner = _owners(old), _owners(new)
    old_objects, new_objects = set(old_owner), set(new_owner)
    names: dict[str, None] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for owner, line in [
            *zip(old_owner[i1:i2], old[i1:i2], strict=True),
            *zip(new_owner[j1:j2], new[j1:j2], strict=True),
        ]:
            if owner is not None and line.strip():
                names[owner] = None
    return [
        f"{name} ({'added' if name not in old_objects else 'removed' if name not in new_objects else 'changed'})"
        for name in names
    ]


def drift(committed: str, built: str, max_lines: int = 400) -> str | None:
    """None when schema.sql is what the migrations build; else a report naming each object that differs,
    saying how to regenerate the file, and the unified diff (committed -> built)."""
    if committed == built:
        return None
    old, new = committed.splitlines(), built.splitlines()
    named = differing(committed, built)
    diff = list(
        difflib.unified_diff(
            old, new, "pipeline/sql/schema.sql (committed)", "what the migrations build", lineterm=""
        )
    )
    if len(diff) > max_lines:
        diff = [*diff[:max_lines], f"... {len(diff) - max_lines} more diff lines"]
    return (
        f"pipeline/sql/schema.sql is not what the migrations build; differing: {'; '.join(named)}.\n"
        f"If the migrations are right, regenerate it with `{REGENERATE}` and commit it with them "
        "(a change to an existing object belongs in a new migration, never in an edited one).\n\n"
        + "\n".join(diff)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.schema_snapshot", description=__doc__.split("\n")[0]
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate schema.sql; record new migrations")
    action.add_argument("--check", action="store_true", help="exit 1 with a diff when schema.sql is stale")
    args = parser.parse_args(argv)
    built = build()
    committed = SCHEMA.read_text(encoding="utf-8") if SCHEMA.exists() else ""
    status = 0
    if args.write:
        if committed != built:
            SCHEMA.write_text(built, encoding="utf-8")
            print(f"wrote {SCHEMA.relative_to(ROOT)} ({len(built.splitlines())} lines)")
        else:
            print(f"{SCHEMA.relative_to(ROOT)} is up to date")
        for name in migration_manifest.record_new():
            print(f"recorded {name} in {migration_manifest.MANIFEST.relative_to(ROOT)}")
    else:
        report = drift(committed, built)
        if report:
            print(report)
            status = 1
    for problem in migration_manifest.problems():
        print(problem, file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
