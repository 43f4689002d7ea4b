"""What a piece of SQL does, read with Postgres' own parser (pglast): writes, calls, reads, definitions.

`scan_sql` parses a whole SQL text (a .sql file, or a string found in Python or JS) and walks every
statement, including the bodies of plpgsql functions and DO blocks (pglast's plpgsql parser), the bodies
of SQL-language functions, and string constants that themselves parse as SQL (EXECUTE 'INSERT ...').
Each fact carries its absolute line in the scanned file and the function whose body holds it, so the
checks can tell "inside the gateway's definition" from "anywhere else".

Locations from the parser are byte offsets into UTF-8; lines are counted on bytes so non-ASCII text does
not shift them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from pglast.parser import ParseError, parse_plpgsql_json, parse_sql_json

from contracts.dynsql import MARKER, dynamic_statements, fold_expression, plpgsql_constants

WRITE_VERBS = {"InsertStmt": "INSERT", "CopyStmt": "COPY", "MergeStmt": "MERGE"}
_SQLISH = re.compile(
    r"^\s*(\(|with|select|insert|update|delete|merge|copy|create|alter|drop|do|grant|revoke|call|explain|"
    r"truncate|set|listen|notify|values|table|begin|declare|comment)\b",
    re.IGNORECASE,
)
_ASSIGN = re.compile(r"^[^:]*?:?=")
PLACEHOLDER = "__fmt__"  # what contracts/extract.py puts for a host-language value it could not resolve
_FRAGMENT_WRITE = re.compile(
    r"\b(insert\s+into|copy|merge\s+into)\s+(?:\"?\w+\"?\.)?\"?(executor_jobs|__dyn__|__fmt__)\b\"?"
    r"(?=\s*(?:\(|$|values\b|select\b|default\b|overriding\b|from\b|as\b|using\b|\w+\s+using\b|with\b))",
    re.IGNORECASE,
)
_FRAGMENT_CALL = re.compile(r"\b(claim_initial_decision_jobs|claim_orchestrator_jobs)\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Fact:
    """One thing the SQL does. `kind` is write | call | read | define | drop | alter | trigger_off | dynamic
    (a statement built at run time whose target or text cannot be known here) | literal (a short string
    constant, for judging what a definition names)."""

    kind: str
    name: str  # table written or read, function called/defined/dropped, trigger disabled
    line: int
    function: str | None = None  # the function whose body holds it (None: top level)
    detail: str = ""  # verb for writes (INSERT/COPY/MERGE); table for triggers; snippet


@dataclass
class SqlFacts:
    facts: list[Fact] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, parser message)
    statements: int = 0

    def of(self, kind: str) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def extend(self, other: SqlFacts) -> None:
        self.facts.extend(other.facts)
        self.problems.extend(other.problems)
        self.statements += other.statements


def looks_like_sql(text: str) -> bool:
    """Whether a host-language string is worth handing to the parser (it starts like a statement)."""
    return bool(_SQLISH.match(text))


def scan_sql(text: str, first_line: int = 1, function: str | None = None) -> SqlFacts | None:
    """The facts of `text`, whose first line is `first_line` of its file; None when it does not parse."""
    try:
        parsed = json.loads(parse_sql_json(text))
    except ParseError:
        return None
    facts = SqlFacts()
    raw = text.encode("utf-8")
    for stmt in parsed.get("stmts", []):
        facts.statements += 1
        start = stmt.get("stmt_location", 0)
        length = stmt.get("stmt_len", 0) or len(raw) - start
        _Walker(raw, first_line, facts, start, length).walk(stmt["stmt"], function)
    return facts


def parse_error(text: str, first_line: int = 1) -> tuple[int, str]:
    """The line and message of the parse error in `text` (for a file that must parse)."""
    try:
        parse_sql_json(text)
    except ParseError as exc:
        location = getattr(exc, "location", None) or 0
        return first_line + text.encode("utf-8")[: max(location - 1, 0)].count(b"\n"), str(exc.args[0])
    return first_line, "unknown parse error"


class _Walker:
    """Walks one statement's parse tree (libpg_query JSON) and records facts into `facts`."""

    def __init__(self, raw: bytes, first_line: int, facts: SqlFacts, stmt_start: int, stmt_len: int) -> None:
        self.raw = raw
        self.first_line = first_line
        self.facts = facts
        self.stmt_start = stmt_start
        self.stmt_len = stmt_len

    def line(self, location: int | None) -> int:
        where = self.stmt_start if location is None or location < 0 else location
        return self.first_line + self.raw[:where].count(b"\n")

    def add(self, kind: str, name: str, location: int | None, function: str | None, detail: str = "") -> None:
        self.facts.facts.append(Fact(kind, name, self.line(location), function, detail))

    def walk(self, node: Any, function: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, function)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            handler = getattr(self, f"on_{key}", None)
            if handler is not None and isinstance(value, dict):
                handler(value, function)
            else:
                self.walk(value, function)

    # -- writes, reads, calls ------------------------------------------------------------------------------
    def _write(self, verb: str, value: dict[str, Any], function: str | None) -> None:
        relation = value.get("relation") or {}
        if relation.get("relname"):
            self.add("write", relation["relname"], relation.get("location"), function, verb)

    def on_InsertStmt(self, value: dict[str, Any], function: str | None) -> None:
        self._write("INSERT", value, function)
        self.walk({k: v for k, v in value.items() if k != "relation"}, function)

    def on_CopyStmt(self, value: dict[str, Any], function: str | None) -> None:
        relation = value.get("relation") or {}
        if value.get("is_from"):
            self._write("COPY", value, function)
        elif relation.get("relname"):
            self.add("read", relation["relname"], relation.get("location"), function, "COPY TO")
        self.walk(value.get("query"), function)

    def on_MergeStmt(self, value: dict[str, Any], function: str | None) -> None:
        clauses = value.get("mergeWhenClauses") or []
        if any((c.get("MergeWhenClause") or {}).get("commandType") == "CMD_INSERT" for c in clauses):
            self._write("MERGE", value, function)
        self.walk({k: v for k, v in value.items() if k != "relation"}, function)

    def on_UpdateStmt(self, value: dict[str, Any], function: str | None) -> None:
        self.walk({k: v for k, v in value.items() if k != "relation"}, function)

    def on_DeleteStmt(self, value: dict[str, Any], function: str | None) -> None:
        self.walk({k: v for k, v in value.items() if k != "relation"}, function)

    def on_RangeVar(self, value: dict[str, Any], function: str | None) -> None:
        if value.get("relname"):
            self.add("read", value["relname"], value.get("location"), function, "FROM")

    def on_FuncCall(self, value: dict[str, Any], function: str | None) -> None:
        name = _last_name(value.get("funcname"))
        if name:
            self.add("call", name, value.get("location"), function)
        args = [_const(arg) for arg in value.get("args", [])]
        if name == "set_config" and args[:2] == ["session_replication_role", "replica"]:
            self.add("trigger_off", "set_config", value.get("location"), function, "session_replication_role")
        self.walk(value.get("args"), function)

    def on_A_Const(self, value: dict[str, Any], function: str | None) -> None:
        text = (value.get("sval") or {}).get("sval")
        if isinstance(text, str) and len(text) <= 64:
            self.add("literal", text, value.get("location"), function)
        if isinstance(text, str) and looks_like_sql(text):
            nested = scan_sql(text, self.line(value.get("location")), function)
            if nested is not None:
                self.facts.facts.extend(nested.facts)

    # -- definitions ---------------------------------------------------------------------------------------
    def on_CreateFunctionStmt(self, value: dict[str, Any], function: str | None) -> None:
        name = _last_name(value.get("funcname")) or "?"
        self.add("define", name, None, function, "function" + (" or replace" if value.get("replace") else ""))
        options = {
            o["DefElem"]["defname"]: o["DefElem"].get("arg")
            for o in value.get("options", [])
            if "DefElem" in o
        }
        language = ((options.get("language") or {}).get("String") or {}).get("sval", "sql")
        body_parts = (options.get("as") or {}).get("List", {}).get("items", [])
        body = next((p["String"]["sval"] for p in body_parts if "String" in p), None)
        if value.get("sql_body") is not None:
            self.walk(value["sql_body"], name)
        if body is None:
            return
        stmt_text = self.raw[self.stmt_start : self.stmt_start + self.stmt_len].decode("utf-8", "replace")
        body_line = self._body_line(stmt_text, body)
        if language == "plpgsql":
            self._plpgsql(stmt_text, body_line, name)
        elif language == "sql":
            nested = scan_sql(body, body_line, name)
            if nested is None:
                self.facts.problems.append((body_line, f"the body of function {name} does not parse as SQL"))
            else:
                self.facts.facts.extend(nested.facts)

    def on_DoStmt(self, value: dict[str, Any], function: str | None) -> None:
        for arg in value.get("args", []):
            elem = arg.get("DefElem", {})
            if elem.get("defname") == "as":
                body = elem["arg"]["String"]["sval"]
                stmt_text = self.raw[self.stmt_start : self.stmt_start + self.stmt_len].decode(
                    "utf-8", "replace"
                )
                body_line = self._body_line(stmt_text, body)
                wrapped = (
                    f"CREATE FUNCTION do_block() RETURNS void LANGUAGE plpgsql AS $do_block${body}$do_block$"
                )
                self._plpgsql(wrapped, body_line, function)

    def on_CreateTrigStmt(self, value: dict[str, Any], function: str | None) -> None:
        table = (value.get("relation") or {}).get("relname", "")
        runs = _last_name(value.get("funcname")) or "?"
        self.add("define", value.get("trigname", "?"), None, function, f"trigger on {table} runs {runs}")

    def on_ViewStmt(self, value: dict[str, Any], function: str | None) -> None:
        name = (value.get("view") or {}).get("relname", "?")
        self.add("define", name, None, function, "view")
        self.walk(value.get("query"), name)  # what the view reads, attributed to the view

    def on_CreateTableAsStmt(self, value: dict[str, Any], function: str | None) -> None:
        into = value.get("into") or {}
        name = (into.get("rel") or into.get("IntoClause", {}).get("rel") or {}).get("relname", "?")
        kind = "view" if value.get("objtype") == "OBJECT_MATVIEW" else "table"
        self.add("define", name, None, function, kind + " (from a query)")
        self.walk(value.get("query"), name)

    def on_CreateStmt(self, value: dict[str, Any], function: str | None) -> None:
        relation = value.get("relation") or {}
        if relation.get("relname"):
            self.add("define", relation["relname"], relation.get("location"), function, "table")
        self.walk({k: v for k, v in value.items() if k != "relation"}, function)

    def on_AlterFunctionStmt(self, value: dict[str, Any], function: str | None) -> None:
        name = _last_name((value.get("func") or {}).get("objname")) or "?"
        self.add("alter", name, None, function, "function")

    def on_RenameStmt(self, value: dict[str, Any], function: str | None) -> None:
        kind = str(value.get("renameType", "")).removeprefix("OBJECT_").lower()
        obj = value.get("object") or {}
        if kind == "function":
            name = _last_name(obj.get("ObjectWithArgs", {}).get("objname"))
        elif kind == "trigger":
            name = value.get("subname")
        else:
            name = (value.get("relation") or {}).get("relname")
        if name and kind in ("function", "trigger", "table", "view"):
            self.add("alter", name, None, function, f"{kind} renamed to {value.get('newname')}")

    def on_DropStmt(self, value: dict[str, Any], function: str | None) -> None:
        kind = value.get("removeType")
        for obj in value.get("objects", []):
            if kind == "OBJECT_FUNCTION" and "ObjectWithArgs" in obj:
                self.add(
                    "drop",
                    _last_name(obj["ObjectWithArgs"].get("objname")) or "?",
                    None,
                    function,
                    "function",
                )
            elif (
                kind in ("OBJECT_TRIGGER", "OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW") and "List" in obj
            ):
                names = [i["String"]["sval"] for i in obj["List"].get("items", []) if "String" in i]
                if names:
                    what = {"OBJECT_TRIGGER": "trigger", "OBJECT_TABLE": "table"}.get(kind, "view")
                    self.add("drop", names[-1], None, function, what)

    def on_AlterTableStmt(self, value: dict[str, Any], function: str | None) -> None:
        relation = value.get("relation") or {}
        for cmd in value.get("cmds", []):
            sub = cmd.get("AlterTableCmd", {})
            kind = sub.get("subtype")
            if kind in ("AT_DisableTrig", "AT_EnableReplicaTrig"):
                self.add(
                    "trigger_off",
                    sub.get("name", "?"),
                    relation.get("location"),
                    function,
                    relation.get("relname", ""),
                )
            elif kind in ("AT_DisableTrigAll", "AT_DisableTrigUser", "AT_EnableReplicaTrigAll"):
                self.add(
                    "trigger_off", "ALL", relation.get("location"), function, relation.get("relname", "")
                )

    def on_VariableSetStmt(self, value: dict[str, Any], function: str | None) -> None:
        self._replica(value, "SET", function)

    def on_AlterDatabaseSetStmt(self, value: dict[str, Any], function: str | None) -> None:
        self._replica(value.get("setstmt") or {}, f"ALTER DATABASE {value.get('dbname', '?')} SET", function)

    def on_AlterRoleSetStmt(self, value: dict[str, Any], function: str | None) -> None:
        role = (value.get("role") or {}).get("rolename") or "ALL"
        where = f" IN DATABASE {value['database']}" if value.get("database") else ""
        self._replica(value.get("setstmt") or {}, f"ALTER ROLE {role}{where} SET", function)

    def on_AlterSystemStmt(self, value: dict[str, Any], function: str | None) -> None:
        self._replica(value.get("setstmt") or {}, "ALTER SYSTEM SET", function)

    def _replica(self, setstmt: dict[str, Any], how: str, function: str | None) -> None:
        """`session_replication_role = replica`: no ordinary trigger fires, the core trigger neither."""
        if setstmt.get("name") == "session_replication_role":
            args = setstmt.get("args", [])
            if args and (_const(args[0]) or "").lower() == "replica":
                self.add("trigger_off", how, setstmt.get("location"), function, "session_replication_role")

    # -- bodies --------------------------------------------------------------------------------------------
    def _body_line(self, stmt_text: str, body: str) -> int:
        at = stmt_text.find(body)
        offset = len(stmt_text[:at].encode("utf-8")) if at >= 0 else 0
        return self.line(self.stmt_start + offset)

    def _plpgsql(self, stmt_text: str, body_line: int, function: str | None) -> None:
        try:
            tree = json.loads(parse_plpgsql_json(stmt_text))
        except ParseError as exc:
            self.facts.problems.append(
                (body_line, f"plpgsql body of {function or 'DO block'}: {exc.args[0]}")
            )
            return
        for expr, lineno in _plpgsql_exprs(tree, 1):
            self._plpgsql_expr(expr, body_line + lineno - 1, function)
        env = plpgsql_constants(tree)
        for expression, lineno in dynamic_statements(tree):
            self._dynamic(expression, body_line + lineno - 1, function, env)

    def _dynamic(self, expression: str, line: int, function: str | None, env: dict[str, list[str]]) -> None:
        """A statement run with EXECUTE: each text it can be, folded (contracts/dynsql.py), is scanned like a
        written statement; what stays unknown is a `dynamic` fact."""
        snippet = " ".join(expression.split())[:80]
        for text in fold_expression(expression, env):
            nested = scan_sql(text, line, function) if looks_like_sql(text) else None
            if nested is None:
                facts = fragment_facts(text, line, function)
                if MARKER in text and not any(f.kind == "write" for f in facts):
                    facts.append(Fact("dynamic", "statement", line, function, f"EXECUTE {snippet}"))
            else:
                facts = [replace(f, line=line) for f in nested.facts]
            for fact in facts:
                if fact.kind == "write" and fact.name == MARKER:
                    fact = Fact("dynamic", "write", line, function, f"{fact.detail} (EXECUTE {snippet})")
                self.facts.facts.append(fact)

    def _plpgsql_expr(self, expr: dict[str, Any], line: int, function: str | None) -> None:
        query = expr.get("query", "")
        mode = expr.get("parseMode", 0)
        if mode in (3, 4, 5):  # assignment: "target := expression"
            match = _ASSIGN.match(query)
            query = query[match.end() :] if match else query
            mode = 2
        text = query if mode == 0 else f"SELECT {query}"
        nested = scan_sql(text, line, function)
        if nested is None and mode == 0:
            self.facts.problems.append(
                (line, f"statement in {function or 'DO block'} does not parse: {query[:60]}")
            )
        elif nested is not None:
            self.facts.facts.extend(nested.facts)


def fragment_facts(text: str, first_line: int, function: str | None = None) -> list[Fact]:
    """Facts read from SQL that does not parse: only the narrow patterns the contracts cannot miss (a write
    into executor_jobs or into a table named at run time, a call of a claim function)."""
    facts = []
    for match in _FRAGMENT_WRITE.finditer(text):
        verb = match.group(1).split()[0].upper()
        name = match.group(2).lower()
        facts.append(
            Fact(
                "write",
                name,
                first_line + text.count("\n", 0, match.start()),
                function,
                f"{verb} (in SQL that does not parse on its own)",
            )
        )
    for match in _FRAGMENT_CALL.finditer(text):
        facts.append(
            Fact(
                "call",
                match.group(1).lower(),
                first_line + text.count("\n", 0, match.start()),
                function,
                "(in SQL that does not parse on its own)",
            )
        )
    return facts


_OPTION_REPLICA = re.compile(r"(?:-c\s*|--)session_replication_role\s*=\s*['\"]?replica\b", re.IGNORECASE)


def option_facts(text: str, first_line: int) -> list[Fact]:
    """Replica mode asked for in connection options (PGOPTIONS, a DSN's `options=-c ...`, psql's `-c`
    settings): every session opened with them fires no ordinary trigger."""
    return [
        Fact(
            "trigger_off",
            "connection option",
            first_line + text.count("\n", 0, match.start()),
            None,
            "session_replication_role",
        )
        for match in _OPTION_REPLICA.finditer(text)
    ]


def _const(node: Any) -> str | None:
    """The text of a string constant node (A_Const sval), else None."""
    if isinstance(node, dict) and "A_Const" in node:
        return (node["A_Const"].get("sval") or {}).get("sval")
    return None


def _plpgsql_exprs(node: Any, lineno: int) -> list[tuple[dict[str, Any], int]]:
    found: list[tuple[dict[str, Any], int]] = []
    if isinstance(node, list):
        for item in node:
            found.extend(_plpgsql_exprs(item, lineno))
    elif isinstance(node, dict):
        lineno = node.get("lineno", lineno) if isinstance(node.get("lineno"), int) else lineno
        for key, value in node.items():
            if key == "PLpgSQL_expr" and isinstance(value, dict):
                found.append((value, lineno))
            else:
                found.extend(_plpgsql_exprs(value, lineno))
    return found


def _last_name(parts: Any) -> str | None:
    names = [p["String"]["sval"] for p in parts or [] if isinstance(p, dict) and "String" in p]
    return names[-1] if names else None
