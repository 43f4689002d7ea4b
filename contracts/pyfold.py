"""SQL that Python builds at run time, folded back into text: f-strings, `+`, `%`, `str.format`, `str.join`,
and psycopg's `sql.SQL(...)`, `sql.Identifier(...)`, `sql.Literal(...)`, `sql.Placeholder()`, `.format()`.

A name takes the string constants it is given: in the function that uses it, in its class (`self.X`, `cls.X`,
`Class.X`), at module level, or in another module of the tree it is imported from (`from app.names import
QUEUE`, `import app.names as n; n.QUEUE`). A value that cannot be known becomes the placeholder identifier
`__fmt__`, so `f"INSERT INTO {table} ..."` with an unknown `table` still parses, as a write into a table named
at run time. Every expression yields at most a few candidate texts (branches of `x if c else y` and names
assigned more than once give several).
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

from contracts.sqlscan import PLACEHOLDER

LIMIT = 8
Values = dict[str, list[str]]
# (module as written in the import, name) -> its constant values in the tree, or [] when unknown
Importer = Callable[[str, str], list[str]]
_PERCENT = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([sdifrxa%])")
_SQL_CALLS = {"SQL", "Composed", "Identifier", "Literal", "Placeholder"}


@dataclass
class Scope:
    """What names mean where an expression is folded."""

    local: Values = field(default_factory=dict)
    module: Values = field(default_factory=dict)
    classes: dict[str, Values] = field(default_factory=dict)
    current_class: str | None = None
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (module, name|None)
    importer: Importer | None = None

    def name(self, name: str) -> list[str]:
        if name in self.local:
            return self.local[name]
        if name in self.module:
            return self.module[name]
        if name in self.imports and self.importer is not None:
            module, attr = self.imports[name]
            if attr is not None:
                return self.importer(module, attr)
        return []

    def attribute(self, owner: str, attr: str) -> list[str]:
        if owner in ("self", "cls") and self.current_class:
            return self.classes.get(self.current_class, {}).get(attr, [])
        if owner in self.classes:
            return self.classes[owner].get(attr, [])
        if owner in self.imports and self.importer is not None:
            module, name = self.imports[owner]
            return self.importer(f"{module}.{name}" if name else module, attr)
        return []


def module_constants(tree: ast.Module) -> Values:
    """The string constants a module's top level assigns (what another module can import from it)."""
    scope = Scope()
    _collect(tree.body, scope, scope.module)
    return scope.module


def imports_of(tree: ast.Module, package: str) -> dict[str, tuple[str, str | None]]:
    """`alias -> (absolute module, imported name or None for a module import)` of a module's imports."""
    found: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                found[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, None)
                else:
                    found[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
    return found


def sql_candidates(
    tree: ast.Module, package: str = "", importer: Importer | None = None
) -> list[tuple[str, int]]:
    """`(text, line)` of every string-building expression of the module, folded (at most LIMIT texts each).
    A plain string constant is not among them (the caller reads those as they are)."""
    scope = Scope(imports=imports_of(tree, package), importer=importer)
    _collect(tree.body, scope, scope.module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            _collect(node.body, scope, scope.classes.setdefault(node.name, {}), node.name)
    found: list[tuple[str, int]] = []
    _visit(tree, scope, found)
    return found


def _visit(node: ast.AST, scope: Scope, found: list[tuple[str, int]]) -> None:
    child: ast.AST
    if isinstance(node, ast.ClassDef):
        inner = Scope(scope.local, scope.module, scope.classes, node.name, scope.imports, scope.importer)
        for child in node.body:
            _visit(child, inner, found)
        return
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        inner = Scope({}, scope.module, scope.classes, scope.current_class, scope.imports, scope.importer)
        body: Sequence[ast.AST] = node.body if isinstance(node.body, list) else [node.body]
        _collect(body, inner, inner.local)
        for child in body:
            _visit(child, inner, found)
        return
    if isinstance(node, ast.expr) and _builds_string(node):
        values = fold(node, scope)
        found.extend((text, node.lineno) for text in values or [])
        return
    for child in ast.iter_child_nodes(node):
        _visit(child, scope, found)


def _builds_string(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    if isinstance(node, ast.Call):
        name = _callee(node)
        return name in ("format", "join") or name in _SQL_CALLS
    return False


def _collect(body: Sequence[ast.AST], scope: Scope, into: Values, class_name: str | None = None) -> None:
    """Assignments of string values in `body` (not in nested functions or classes), into `into`; `self.X = ...`
    inside methods lands in the class's values."""
    if class_name is not None:
        scope = Scope(scope.local, scope.module, scope.classes, class_name, scope.imports, scope.importer)
    statements = _statements(body)
    for _ in range(2):  # a name defined from a later one
        for stmt in statements:
            _assign(stmt, scope, into)
    if class_name is not None:
        for method in (n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for stmt in _statements(method.body):
                if not isinstance(stmt, ast.Assign):
                    continue
                for target in stmt.targets:
                    if _is_self_attr(target) and isinstance(target, ast.Attribute):
                        _add(into, target.attr, fold(stmt.value, scope) or [])


def _statements(body: Sequence[ast.AST]) -> list[ast.AST]:
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        out.append(stmt)
        for block in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(stmt, block, None)
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, ast.stmt | ast.ExceptHandler)]))
    return out


def _assign(stmt: ast.AST, scope: Scope, into: Values) -> None:
    if isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                _add(into, target.id, fold(stmt.value, scope) or [])
    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        _add(into, stmt.target.id, fold(stmt.value, scope) or [])
    elif (
        isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and isinstance(stmt.op, ast.Add)
    ):
        before = into.get(stmt.target.id) or scope.name(stmt.target.id)
        added = fold(stmt.value, scope) or [PLACEHOLDER]
        if before:
            into[stmt.target.id] = _cap([*before, *(a + b for a, b in product(before, added))])


def _add(into: Values, name: str, values: list[str]) -> None:
    if values:
        into[name] = _cap([*into.get(name, []), *values])


def _is_self_attr(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _cap(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value not in out:
            out.append(value)
        if len(out) == LIMIT:
            break
    return out


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _or_unknown(values: list[str] | None) -> list[str]:
    return values or [PLACEHOLDER]


def fold(node: ast.expr | None, scope: Scope) -> list[str] | None:
    """The texts `node` can evaluate to, unknown parts as PLACEHOLDER; None when nothing of it is known."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return [node.value]
        if isinstance(node.value, bytes):
            return [node.value.decode("utf-8", "replace")]
        return None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                parts.append(_or_unknown(fold(value.value, scope)))
            else:
                parts.append(fold(value, scope) or [""])
        return _cap(["".join(p) for p in product(*parts)])
    if isinstance(node, ast.Name):
        return scope.name(node.id) or None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return scope.attribute(node.value.id, node.attr) or None
    if isinstance(node, ast.IfExp):
        both = [*(fold(node.body, scope) or []), *(fold(node.orelse, scope) or [])]
        return _cap(both) or None
    if isinstance(node, ast.BinOp):
        return _binop(node, scope)
    if isinstance(node, ast.Call):
        return _call(node, scope)
    return None


def _binop(node: ast.BinOp, scope: Scope) -> list[str] | None:
    left, right = fold(node.left, scope), fold(node.right, scope)
    if isinstance(node.op, ast.Add):
        if left is None and right is None:
            return None
        return _cap([a + b for a, b in product(_or_unknown(left), _or_unknown(right))])
    if isinstance(node.op, ast.Mod) and left is not None:
        if isinstance(node.right, ast.Dict):
            named = {
                k.value: _or_unknown(fold(v, scope))[0]
                for k, v in zip(node.right.keys, node.right.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            }
            return _cap([_percent(text, [], named) for text in left])
        items = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        args = [_or_unknown(fold(item, scope)) for item in items]
        return _cap([_percent(text, list(combo), {}) for text in left for combo in product(*args)])
    return None


def _percent(text: str, args: list[str], named: dict[str, str]) -> str:
    position = 0

    def substitute(match: re.Match[str]) -> str:
        nonlocal position
        key, kind = match.groups()
        if kind == "%":
            return "%"
        if key is not None:
            return named.get(key, PLACEHOLDER)
        value = args[position] if position < len(args) else PLACEHOLDER
        position += 1
        return value

    return _PERCENT.sub(substitute, text)


def _call(node: ast.Call, scope: Scope) -> list[str] | None:
    name = _callee(node)
    receiver = fold(node.func.value, scope) if isinstance(node.func, ast.Attribute) else None
    args = [fold(arg, scope) for arg in node.args]
    if name in ("SQL", "str", "dedent", "cleandoc") and args:
        return args[0]
    if name == "Identifier":
        parts = [_or_unknown(a) for a in args] or [[PLACEHOLDER]]
        return _cap([".".join(_quote(p) for p in combo) for combo in product(*parts)])
    if name in ("Literal", "Placeholder"):
        return ["$1"]
    if name == "Composed" and node.args and isinstance(node.args[0], ast.List | ast.Tuple):
        parts = [_or_unknown(fold(e, scope)) for e in node.args[0].elts]
        return _cap(["".join(combo) for combo in product(*parts)])
    if name == "format" and receiver is not None:
        keywords = {k.arg: _or_unknown(fold(k.value, scope))[0] for k in node.keywords if k.arg}
        positional = [_or_unknown(a) for a in args]
        return _cap([_str_format(text, list(c), keywords) for text in receiver for c in product(*positional)])
    if name == "join" and receiver is not None and node.args:
        seq = node.args[0]
        if isinstance(seq, ast.List | ast.Tuple):
            items = [_or_unknown(fold(e, scope)) for e in seq.elts]
            return _cap([sep.join(combo) for sep in receiver for combo in product(*items)])
        return _cap([PLACEHOLDER for _ in receiver])
    if name in ("strip", "lower", "upper") and receiver is not None:
        return [getattr(text, name)() for text in receiver]
    if name == "replace" and receiver is not None and len(args) == 2 and args[0] and args[1]:
        return _cap([t.replace(a, b) for t in receiver for a in args[0] for b in args[1]])
    return None


def _quote(name: str) -> str:
    return name if name == PLACEHOLDER else '"' + name.replace('"', '""') + '"'


def _str_format(text: str, args: list[str], keywords: dict[str, str]) -> str:
    out = []
    position = 0
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return text
    for literal, field_name, _spec, _conversion in parsed:
        out.append(literal)
        if field_name is None:
            continue
        if field_name == "":
            value = args[position] if position < len(args) else PLACEHOLDER
            position += 1
        elif field_name.isdigit():
            value = args[int(field_name)] if int(field_name) < len(args) else PLACEHOLDER
        else:
            value = keywords.get(field_name.split(".")[0].split("[")[0], PLACEHOLDER)
        out.append(value)
    return "".join(out)
