"""Checkers are pure functions of the recorded run: no database, no processes, no files, no clock.

That is what lets a stored run folder be re-checked later with the same verdict; an AST walk keeps it so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import harness.checkers

FOLDER = Path(harness.checkers.__file__).parent
FORBIDDEN_MODULES = {
    "psycopg",
    "subprocess",
    "socket",
    "os",
    "shutil",
    "time",
    "random",
    "urllib",
    "http",
    "requests",
    "threading",
    "pathlib",
    "sqlite3",
    "asyncio",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval"}
ALLOWED_HARNESS = {"harness.checkers", "harness.records", "harness.history", "harness.checkers.trace"}


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{path.name}:{node.lineno}: imports {name}")
            if name.startswith("harness") and not any(name.startswith(a) for a in ALLOWED_HARNESS):
                found.append(f"{path.name}:{node.lineno}: imports {name} (only {sorted(ALLOWED_HARNESS)})")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"{path.name}:{node.lineno}: calls {node.func.id}()")
    return found


def test_checkers_import_no_io_and_call_no_io() -> None:
    modules = sorted(FOLDER.glob("*.py"))
    assert len(modules) >= 14
    problems = [p for module in modules for p in _problems(module)]
    assert not problems, "\n".join(problems)


def test_modules_stay_small() -> None:
    long = {m.name: n for m in FOLDER.glob("*.py") if (n := len(m.read_text().splitlines())) >= 400}
    assert not long, long
