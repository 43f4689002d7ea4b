"""The orchestrator's handler table, read statically: the keys of the dict literal that the configured
function (`table()` in pipeline/handlers.py by default) returns, or that a module-level name of that file is
bound to (`HANDLERS = {"protect": protect, ...}`, as tests/other_pipeline has it). Reading it without
importing keeps the gate free of the pipeline's imports and side effects."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import ContractInputError


@dataclass(frozen=True)
class HandlerTable:
    path: str
    line: int
    job_types: tuple[str, ...]


def read_handler_table(root: Path, rel: str, function: str) -> HandlerTable:
    path = root / rel
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as exc:
        raise ContractInputError(f"cannot read the handler table in {path}: {exc}") from exc
    for node in tree.body:
        value = (
            node.value
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == function for t in node.targets)
            else node.value
            if isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == function
            else None
        )
        if isinstance(value, ast.Dict):
            return HandlerTable(rel, node.lineno, _keys(value))
    for defined in ast.walk(tree):
        if isinstance(defined, ast.FunctionDef) and defined.name == function:
            for inner in ast.walk(defined):
                if isinstance(inner, ast.Return) and isinstance(inner.value, ast.Dict):
                    return HandlerTable(rel, inner.lineno, _keys(inner.value))
    raise ContractInputError(
        f"{path}: no function {function}() returning a dict literal of handlers, and no module-level "
        f"{function} = {{...}}; set [handlers] file and function in the contracts config"
    )


def _keys(table: ast.Dict) -> tuple[str, ...]:
    return tuple(k.value for k in table.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
