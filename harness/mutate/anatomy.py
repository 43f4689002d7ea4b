"""The anatomy of a function definition: where its statements and embedded SQL sit in its text.

`pg_get_functiondef` gives a `CREATE OR REPLACE FUNCTION` statement. pglast parses its header
(`parse_sql`), a PL/pgSQL body (`parse_plpgsql`: statements with line numbers, and the SQL text of each
query or expression) and an SQL body (`parse_sql`). PL/pgSQL bodies cannot be printed back, so the mutator
edits the text: each embedded query or expression is found in the source (a `Site`, re-printed when an
operator rewrites its parse tree), and each statement has a span (a `Statement`, dropped whole by its
location). Only plpgsql and sql functions are read; a body written `BEGIN ATOMIC` has no sites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pglast

from harness.mutate import textscan

# Statements the mutator may drop whole: each ends at its own `;`.
SIMPLE = {"execsql", "perform", "assign", "raise", "return_query", "call", "dynexecute"}
_LEVEL_EXCEPTION = 21  # elog level ERROR: RAISE EXCEPTION
_ASSIGN_TARGET = re.compile(
    r'\s*((?:"[^"]*"|[\w$]+)(?:\s*\.\s*(?:"[^"]*"|[\w$]+))*(?:\s*\[[^\]]*\])*)\s*(?::=|=)\s*'
)
_BEFORE = {
    "perform": r"\bPERFORM\s+$",
    "return_query": r"\bRETURN\s+QUERY\s+(?:EXECUTE\s+)?$",
    "return": r"\bRETURN\s+$",
    "return_next": r"\bRETURN\s+NEXT\s+$",
    "if": r"\bIF\s+$",
    "while": r"\bWHILE\s+$",
    "exit": r"\b(?:EXIT|CONTINUE)\b[^;]*?\bWHEN\s+$",
    "dynexecute": r"\bEXECUTE\s+$",
    "fors": r"\bFOR\b[^;]*?\bIN\s+$",
}


@dataclass
class Statement:
    """One statement of a body: `start` is its first character, `end` the index after its `;` (None for
    compound statements, which are never dropped whole). `probe` names it in the coverage run."""

    kind: str
    start: int
    end: int | None
    lineno: int
    probe: str = ""
    exception: bool = False  # a RAISE EXCEPTION
    sites: list[Site] = field(default_factory=list)

    def calls(self, function: str, text: str) -> bool:
        """Whether the statement's SQL calls `function` (by a plain word match on its source)."""
        return any(re.search(rf"\b{function}\s*\(", text[s.start : s.end], re.I) for s in self.sites)


@dataclass
class Site:
    """SQL text inside a definition that an operator may rewrite: a whole statement (`expr` False) or an
    expression. `text` is what the SQL parser reads; `start:end` is what the printed result replaces."""

    start: int
    end: int
    text: str
    expr: bool
    statement: Statement
    perform: bool = False  # the source says PERFORM where the parsed text says SELECT
    into: str = ""  # an INTO clause PL/pgSQL cut out of `text`, put back at the end when re-printed
    strict: bool = False  # INTO STRICT: more than one row is an error


@dataclass
class Anatomy:
    text: str
    language: str
    identity: str  # name(argtypes): what CREATE OR REPLACE replaces
    body: tuple[int, int] | None  # the body's span between its dollar quotes
    statements: list[Statement]
    security_definer: tuple[int, int] | None  # the span of SECURITY DEFINER in the header
    notes: list[str] = field(default_factory=list)

    @property
    def sites(self) -> list[Site]:
        return [site for statement in self.statements for site in statement.sites]


def identity(stmt: Any) -> str:
    """`name(argtype, ...)` of a CreateFunctionStmt: the input argument types decide what it replaces."""
    from pglast.stream import RawStream

    name = ".".join(part.sval for part in stmt.funcname)
    modes = {"i", "b", "v", "d"}  # in, inout, variadic, default
    types = [RawStream()(p.argType) for p in stmt.parameters or () if str(p.mode.value) in modes]
    return f"{name}({', '.join(types)})"


def create_function(text: str) -> Any:
    """The one CreateFunctionStmt `text` holds; ValueError otherwise."""
    stmts = pglast.parse_sql(text)
    if len(stmts) != 1 or type(stmts[0].stmt).__name__ != "CreateFunctionStmt":
        raise ValueError("not one CREATE FUNCTION statement")
    return stmts[0].stmt


def parses(text: str, language: str) -> bool:
    """Whether a function definition parses, its body included (PL/pgSQL or SQL)."""
    try:
        stmt = create_function(text)
        if language == "plpgsql":
            pglast.parse_plpgsql(text)
        elif language == "sql":
            body = [o for o in stmt.options or () if o.defname == "as"]
            if body:
                pglast.parse_sql(body[0].arg[0].sval)
    except Exception:
        return False
    return True


def analyse(text: str, language: str) -> Anatomy:
    """Statements, sites and the SECURITY DEFINER span of one function definition."""
    stmt = create_function(text)
    options = {o.defname: o for o in stmt.options or ()}
    anatomy = Anatomy(text, language, identity(stmt), None, [], None)
    if "security" in options and options["security"].arg.boolval:
        header_end = _body_span(text, options)[0] if "as" in options else len(text)
        found = re.search(r"\bSECURITY\s+DEFINER\b", text[:header_end], re.I)
        anatomy.security_definer = (found.start(), found.end()) if found else None
    if "as" not in options:
        anatomy.notes.append("a BEGIN ATOMIC body: only its header is mutated")
        return anatomy
    anatomy.body = _body_span(text, options)
    if language == "plpgsql":
        _Plpgsql(anatomy).read()
    elif language == "sql":
        _read_sql_body(anatomy)
    for number, statement in enumerate(anatomy.statements):
        statement.probe = f"s{number}"
    return anatomy


def _body_span(text: str, options: dict[str, Any]) -> tuple[int, int]:
    body = options["as"].arg[0].sval
    at = textscan.char_offset(text, options["as"].location)
    opened = re.compile(r"AS\s+(\$[A-Za-z_0-9]*\$)", re.I).search(text, at)
    if not opened or not text.startswith(body, opened.end()):
        raise ValueError("cannot find the function body after AS")
    return opened.end(), opened.end() + len(body)


def _read_sql_body(anatomy: Anatomy) -> None:
    assert anatomy.body is not None
    start, end = anatomy.body
    body = anatomy.text[start:end]
    raws = pglast.parse_sql(body)
    for raw in raws:
        location, length = raw.stmt_location or 0, raw.stmt_len or 0
        first = textscan.char_offset(body, location)
        last = textscan.char_offset(body, location + length) if length else len(body)
        chunk = body[first:last]
        lead = len(chunk) - len(chunk.lstrip())
        s, e = start + first + lead, start + first + len(chunk.rstrip())
        after = textscan.statement_end(anatomy.text, e, end)
        statement = Statement("sql", s, after if len(raws) > 1 and raw is not raws[-1] else None, 0)
        statement.sites.append(Site(s, e, anatomy.text[s:e], False, statement))
        anatomy.statements.append(statement)


class _Plpgsql:
    """Walks a PL/pgSQL parse tree in source order, finding each statement and expression in the text."""

    def __init__(self, anatomy: Anatomy) -> None:
        self.a = anatomy
        self.text = anatomy.text
        assert anatomy.body is not None
        self.body_start, self.body_end = anatomy.body
        self.lines = textscan.line_starts(self.text[self.body_start : self.body_end])
        self.cursor = self.body_start

    def read(self) -> None:
        tree = pglast.parse_plpgsql(self.text)
        action = tree[0]["PLpgSQL_function"]["action"]
        self.visit(action)

    def line(self, lineno: int | None) -> int:
        if not lineno or lineno > len(self.lines):
            return self.cursor
        return max(self.cursor, self.body_start + self.lines[lineno - 1])

    def find(self, query: str, at: int) -> tuple[int, int] | None:
        span = textscan.locate(self.text, query, at, self.body_end)
        if span:
            self.cursor = span[1]
        return span

    def found(self, node: dict[str, Any], name: str, at: int) -> tuple[str, int, int] | None:
        """The query or expression `node[name]`, and where it sits at or after `at`."""
        query = self._sql(node, name)
        span = self.find(query, at) if query else None
        return (query.strip(), *span) if query and span else None

    def visit_list(self, stmts: list[dict[str, Any]] | None) -> None:
        for item in stmts or ():
            self.visit(item)

    def visit(self, item: dict[str, Any]) -> None:
        (key, node), *_ = item.items()
        kind = key.removeprefix("PLpgSQL_stmt_")
        at = self.line(node.get("lineno"))
        handler = getattr(self, f"_{kind}", None)
        if handler is not None:
            handler(kind, node, at)
        else:  # getdiag, open, fetch, close, assert, commit, ...: nothing to mutate, bodies if any
            self.visit_list(node.get("body"))

    # -- statements with SQL -------------------------------------------------------------------------------
    def _statement(self, kind: str, start: int, lineno: int, simple: bool) -> Statement:
        end = textscan.statement_end(self.text, start, self.body_end) if simple else None
        statement = Statement(kind, start, end, lineno)
        self.a.statements.append(statement)
        if end is not None:
            self.cursor = max(self.cursor, end)
        return statement

    def _start_before(self, kind: str, site_start: int, fallback: int) -> int:
        pattern = _BEFORE.get(kind)
        window = self.text[fallback:site_start]
        found = re.search(pattern, window, re.I) if pattern else None
        return fallback + found.start() if found else site_start

    def _sql(self, node: dict[str, Any], name: str) -> str | None:
        expr = node.get(name)
        return expr["PLpgSQL_expr"]["query"] if expr else None

    def _execsql(self, kind: str, node: dict[str, Any], at: int) -> None:
        located = self.found(node, "sqlstmt", at)
        if located is None:
            return
        query, start, end = located
        statement = self._statement(kind, start, node.get("lineno", 0), True)
        into = textscan.blanked(self.text[start:end], query) if node.get("into") else ""
        strict = bool(node.get("strict"))
        statement.sites.append(Site(start, end, query, False, statement, into=into, strict=strict))

    _call = _execsql

    def _perform(self, kind: str, node: dict[str, Any], at: int) -> None:
        query = self._sql(node, "expr") or ""
        rest = re.sub(r"^\s*SELECT\s", "", query, count=1, flags=re.I)
        span = self.find(rest, at)
        if not span:
            return
        statement = self._statement(kind, self._start_before(kind, span[0], at), node.get("lineno", 0), True)
        statement.sites.append(
            Site(span[0], span[1], "SELECT " + rest.strip(), False, statement, perform=True)
        )

    def _assign(self, kind: str, node: dict[str, Any], at: int) -> None:
        query = self._sql(node, "expr") or ""
        span = self.find(query, at)
        target = _ASSIGN_TARGET.match(query.strip())
        if not span:
            return
        statement = self._statement(kind, span[0], node.get("lineno", 0), True)
        if target:
            statement.sites.append(
                Site(span[0] + target.end(), span[1], query.strip()[target.end() :], True, statement)
            )

    def _expression_statement(
        self, kind: str, node: dict[str, Any], at: int, names: tuple[str, ...]
    ) -> Statement | None:
        statement: Statement | None = None
        for name in names:
            located = self.found(node, name, self.cursor if statement else at)
            if located is None:
                continue
            query, first, last = located
            if statement is None:
                start = self._start_before(kind, first, at)
                statement = self._statement(kind, start, node.get("lineno", 0), kind in SIMPLE)
            sql = kind in ("return_query",) and name == "query"
            statement.sites.append(Site(first, last, query, not sql, statement))
        return statement

    def _return_query(self, kind: str, node: dict[str, Any], at: int) -> None:
        self._expression_statement(kind, node, at, ("query",))

    def _return(self, kind: str, node: dict[str, Any], at: int) -> None:
        self._expression_statement(kind, node, at, ("expr",))

    _return_next = _return

    def _dynexecute(self, kind: str, node: dict[str, Any], at: int) -> None:
        self._expression_statement(kind, node, at, ("query",))

    def _exit(self, kind: str, node: dict[str, Any], at: int) -> None:
        if node.get("cond"):
            self._expression_statement(kind, node, at, ("cond",))

    def _raise(self, kind: str, node: dict[str, Any], at: int) -> None:
        found = re.compile(r"\bRAISE\b", re.I).search(self.text, at, self.body_end)
        if not found:
            return
        statement = self._statement(kind, found.start(), node.get("lineno", 0), True)
        statement.exception = node.get("elog_level") == _LEVEL_EXCEPTION

    # -- compound statements -------------------------------------------------------------------------------
    def _block(self, kind: str, node: dict[str, Any], at: int) -> None:
        self.visit_list(node.get("body"))
        handlers = (node.get("exceptions") or {}).get("PLpgSQL_exception_block", {})
        for handler in handlers.get("exc_list", ()):
            self.visit_list(handler.get("PLpgSQL_exception", {}).get("action"))

    def _if(self, kind: str, node: dict[str, Any], at: int) -> None:
        statement = self._expression_statement(kind, node, at, ("cond",))
        self.visit_list(node.get("then_body"))
        for branch in node.get("elsif_list", ()):
            branch = branch["PLpgSQL_if_elsif"]
            located = self.found(branch, "cond", self.line(branch.get("lineno")))
            if located is not None and statement is not None:
                query, first, last = located
                statement.sites.append(Site(first, last, query, True, statement))
            self.visit_list(branch.get("stmts"))
        self.visit_list(node.get("else_body"))

    def _while(self, kind: str, node: dict[str, Any], at: int) -> None:
        self._expression_statement(kind, node, at, ("cond",))
        self.visit_list(node.get("body"))

    def _fors(self, kind: str, node: dict[str, Any], at: int) -> None:
        located = self.found(node, "query", at)
        if located is not None:
            query, first, last = located
            start = self._start_before(kind, first, at)
            statement = self._statement(kind, start, node.get("lineno", 0), False)
            statement.sites.append(Site(first, last, query, False, statement))
        self.visit_list(node.get("body"))

    def _case(self, kind: str, node: dict[str, Any], at: int) -> None:
        for when in node.get("case_when_list", ()):
            self.visit_list(when.get("PLpgSQL_case_when", {}).get("stmts"))
        self.visit_list(node.get("else_stmts"))
