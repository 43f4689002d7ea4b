"""Statements built at run time inside SQL: what a plpgsql `EXECUTE` would run, folded from its expression.

`EXECUTE 'INSERT INTO ' || v_table || ' ...'` and `EXECUTE format('INSERT INTO %I ...', 'executor_jobs')` hide
the statement from a reader of string constants. Here the expression is parsed (pglast) and folded: string
constants, `||`, `format()` (`%I %L %s`, with `n$` positions), `quote_ident`, `quote_literal`, `quote_nullable`,
`concat`, `concat_ws`, `lower`, `upper`, `replace`, casts, `coalesce` and `CASE` (every branch). A variable takes
the constant values the function gives it (its DECLARE default, its assignments). What cannot be known becomes
the marker identifier `__dyn__`, so a statement whose target is only known at run time still parses, and is
reported as such instead of being trusted.
"""

from __future__ import annotations

import json
import re
from itertools import product
from typing import Any

from pglast.parser import ParseError, parse_sql_json

MARKER = "__dyn__"
LIMIT = 8  # candidate texts per expression, at most (a product of branches grows fast)
_ASSIGN = re.compile(r"^[^:=]*?:?=")
_FORMAT = re.compile(r"%(?:(\d+)\$)?-?\d*([sIL%])")
_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")
_DYNAMIC = {
    "PLpgSQL_stmt_dynexecute": "query",
    "PLpgSQL_stmt_dynfors": "query",
    "PLpgSQL_stmt_return_query": "dynquery",
    "PLpgSQL_stmt_open": "dynquery",
}

Env = dict[str, list[str]]


def fold_expression(expression: str, env: Env | None = None) -> list[str]:
    """Every text the SQL expression can evaluate to, unknown parts as MARKER; [MARKER] if it is no string."""
    try:
        parsed = json.loads(parse_sql_json(f"SELECT {expression}"))
        node = parsed["stmts"][0]["stmt"]["SelectStmt"]["targetList"][0]["ResTarget"]["val"]
    except (ParseError, KeyError, IndexError, TypeError):
        return [MARKER]
    return _fold(node, env or {})


def plpgsql_constants(tree: Any) -> Env:
    """`variable -> constant values` of a parsed plpgsql function: DECLARE defaults and assignments, folded
    (twice, so `b := a || 'x'` sees `a`)."""
    env: Env = {}
    for function in tree if isinstance(tree, list) else [tree]:
        body = function.get("PLpgSQL_function", {}) if isinstance(function, dict) else {}
        names = [_datum_name(d) for d in body.get("datums", [])]
        assignments = []
        for datum, name in zip(body.get("datums", []), names, strict=True):
            default = (datum.get("PLpgSQL_var") or {}).get("default_val")
            if name and default:
                assignments.append((name, default["PLpgSQL_expr"].get("query", "")))
        for node in _nodes(body.get("action"), "PLpgSQL_stmt_assign"):
            varno = node.get("varno")
            name = names[varno] if isinstance(varno, int) and 0 <= varno < len(names) else None
            if name:
                query = node.get("expr", {}).get("PLpgSQL_expr", {}).get("query", "")
                match = _ASSIGN.match(query)
                assignments.append((name, query[match.end() :] if match else query))
        for _ in range(2):
            for name, expression in assignments:
                for value in fold_expression(expression, env):
                    if value != MARKER and value not in env.setdefault(name, []) and len(env[name]) < LIMIT:
                        env[name].append(value)
    return env


def dynamic_statements(tree: Any) -> list[tuple[str, int]]:
    """`(expression, lineno)` of every statement text a plpgsql body runs dynamically (EXECUTE, FOR ... IN
    EXECUTE, RETURN QUERY EXECUTE, OPEN ... FOR EXECUTE)."""
    found = []
    for kind, key in _DYNAMIC.items():
        for node in _nodes(tree, kind):
            expr = (node.get(key) or {}).get("PLpgSQL_expr")
            if expr:
                found.append((expr.get("query", ""), int(node.get("lineno", 1))))
    return sorted(found, key=lambda item: item[1])


def _datum_name(datum: Any) -> str | None:  # a parse tree's datum; anything else has no name
    inner: Any = next(iter(datum.values()), {}) if isinstance(datum, dict) else {}
    return inner.get("refname") if isinstance(inner, dict) else None


def _nodes(tree: Any, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == kind and isinstance(value, dict):
                    found.append(value)
                stack.append(value)
    return found


def _cap(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value not in out:
            out.append(value)
        if len(out) == LIMIT:
            break
    return out or [MARKER]


def _concat(parts: list[list[str]], sep: str = "") -> list[str]:
    return _cap([sep.join(combo) for combo in product(*parts)])


def _fold(node: Any, env: Env) -> list[str]:
    if not isinstance(node, dict) or not node:
        return [MARKER]
    kind, value = next(iter(node.items()))
    if kind == "A_Const":
        for key, inner in (("sval", "sval"), ("ival", "ival"), ("fval", "fval")):
            if key in value:
                return [str(value[key].get(inner, 0 if key == "ival" else ""))]
        return [""]  # NULL: || makes the whole NULL, but the statement is then nothing to check
    if kind == "A_Expr" and [n.get("String", {}).get("sval") for n in value.get("name", [])] == ["||"]:
        return _concat([_fold(value.get("lexpr"), env), _fold(value.get("rexpr"), env)])
    if kind == "TypeCast":
        return _fold(value.get("arg"), env)
    if kind == "CoalesceExpr":
        return _cap([v for arg in value.get("args", []) for v in _fold(arg, env)])
    if kind == "CaseExpr":
        branches = [w.get("CaseWhen", {}).get("result") for w in value.get("args", [])]
        return _cap([v for b in [*branches, value.get("defresult")] if b for v in _fold(b, env)])
    if kind == "ColumnRef":
        fields = [f.get("String", {}).get("sval") for f in value.get("fields", [])]
        known = env.get(fields[-1] or "", []) if fields else []
        return list(known) or [MARKER]
    if kind == "FuncCall":
        return _call(value, env)
    return [MARKER]


def _call(value: dict[str, Any], env: Env) -> list[str]:
    names = [n.get("String", {}).get("sval") for n in value.get("funcname", [])]
    name = (names[-1] or "").lower() if names else ""
    args = [_fold(arg, env) for arg in value.get("args", [])]
    if name == "format" and args:
        return _cap([_format(fmt, rest) for fmt in args[0] for rest in product(*args[1:])])
    if name == "quote_ident" and args:
        return _cap([_ident(v) for v in args[0]])
    if name in ("quote_literal", "quote_nullable") and args:
        return _cap([_literal(v) for v in args[0]])
    if name == "concat":
        return _concat(args)
    if name == "concat_ws" and args:
        return _cap([v for sep in args[0] for v in _concat(args[1:], sep)])
    if name in ("lower", "upper", "btrim", "trim") and args:
        return _cap([getattr(v, {"btrim": "strip", "trim": "strip"}.get(name, name))() for v in args[0]])
    if name == "replace" and len(args) == 3:
        return _cap([s.replace(a, b) for s, a, b in product(*args)])
    return [MARKER]


def _ident(value: str) -> str:
    return value if value == MARKER or _PLAIN_IDENT.match(value) else '"' + value.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(fmt: str, args: tuple[str, ...]) -> str:
    position = 0

    def substitute(match: re.Match[str]) -> str:
        nonlocal position
        explicit, kind = match.groups()
        if kind == "%":
            return "%"
        index = int(explicit) - 1 if explicit else position
        position = index + 1
        arg = args[index] if 0 <= index < len(args) else MARKER
        return _ident(arg) if kind == "I" else _literal(arg) if kind == "L" else arg

    return _FORMAT.sub(substitute, fmt)
