"""Reading a source tree for the static contracts: which files hold SQL, and what that SQL does.

SQL comes from every text file of the tree: `.sql` files (and `.psql .pgsql .plpgsql .ddl .dml`) parsed whole;
string literals and built strings of Python (`.py .pyw .pyi`, contracts/extract.py and pyfold.py) and JS/TS
(`.js .mjs .cjs .jsx .ts .tsx .mts .cts`); Jupyter notebooks, shell scripts, Markdown code blocks, CI YAML,
Makefiles and any other text (contracts/textsql.py). Skipped: binary files, files over 1 MB, hidden folders
(`.git`, `.venv`, caches) except those that hold CI and hooks (`.github`, `.gitlab`, `.ci`, ...), virtualenvs,
`node_modules`, and the config's `exclude` globs. A string that starts like SQL but parses in no variant is kept
as a fragment: the checks still look into it with a narrow pattern (`INSERT INTO executor_jobs`), so
concatenated SQL cannot hide a direct insert; everything else is decided on the parse tree.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from contracts.config import Config
from contracts.dynsql import MARKER
from contracts.errors import ContractInputError
from contracts.extract import Snippet, js_snippets, normalize, python_snippets
from contracts.migrations import Classification, classify
from contracts.pathglob import matches_any
from contracts.pyfold import Importer, module_constants
from contracts.sqlscan import (
    SqlFacts,
    fragment_facts,
    looks_like_sql,
    option_facts,
    parse_error,
    scan_sql,
)
from contracts.textsql import markdown_units, notebook_units, shell_units

SQL_SUFFIXES = (".sql", ".psql", ".pgsql", ".plpgsql", ".ddl", ".dml")
PY_SUFFIXES = (".py", ".pyw", ".pyi")
JS_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts")
NOTEBOOK_SUFFIXES = (".ipynb",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
BINARY_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp", ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".whl",
    ".so", ".dylib", ".dll", ".pyc", ".pyo", ".woff", ".woff2", ".ttf", ".eot", ".mo", ".db", ".sqlite",
)  # fmt: skip
MAX_BYTES = 1_000_000
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}
# Hidden folders that hold code which runs (CI pipelines, git hooks); every other hidden folder is a cache,
# a virtualenv or version control.
_HIDDEN_SCANNED = {
    ".github", ".gitlab", ".ci", ".circleci", ".buildkite", ".husky", ".githooks", ".devcontainer",
    ".tekton", ".woodpecker", ".drone", ".azure-pipelines", ".jenkins",
}  # fmt: skip
_NAMED_QUERY = re.compile(r"^--\s*name:\s*[\w-]+", re.MULTILINE)
_PSQL_META = re.compile(r"^[ \t]*\\(?!copy\b).*$", re.MULTILINE)  # psql's \set, \echo... (\copy is a write)
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?\n")


@dataclass
class ScannedFile:
    path: str  # relative to the source root, posix
    kind: str  # sql | python | js | notebook | markdown | text
    facts: SqlFacts = field(default_factory=SqlFacts)
    problems: list[tuple[int, str]] = field(default_factory=list)
    migration: Classification | None = None


@dataclass
class SourceScan:
    root: Path
    files: list[ScannedFile]

    def migrations(self) -> list[ScannedFile]:
        """Migration files in apply order (by file name, as the migration runner applies them)."""
        return sorted((f for f in self.files if f.migration is not None), key=lambda f: Path(f.path).name)

    def definitions(self) -> dict[tuple[str, str], tuple[str, int]]:
        """`(function|trigger|view|table, name) -> (path, line)` of each object's last definition (migrations in
        order)."""
        found: dict[tuple[str, str], tuple[str, int]] = {}
        others = [f for f in self.files if f.migration is None]
        for scanned in [*others, *self.migrations()]:
            for fact in scanned.facts.of("define"):
                found[(fact.detail.split(" ", 1)[0], fact.name)] = (scanned.path, fact.line)
        return found


def scan_tree(root: Path, config: Config) -> SourceScan:
    """Scan every source file under `root` (or the one file `root` names)."""
    if not root.exists():
        raise ContractInputError(f"source path {root} does not exist; pass --source with a folder or file")
    base = root if root.is_dir() else root.parent
    paths = [root] if root.is_file() else list(_walk(root, config))
    modules = _python_modules(paths, base)
    constants = {name: module_constants(tree) for name, (_, tree) in modules.items()}

    def importer(module: str, name: str) -> list[str]:
        return constants.get(module, {}).get(name, [])

    files = [scan_file(path, path.relative_to(base).as_posix(), config, importer) for path in sorted(paths)]
    return SourceScan(base, [f for f in files if f is not None])


def _walk(root: Path, config: Config) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if (not d.startswith(".") or d in _HIDDEN_SCANNED)
            and d not in _SKIP_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not d.endswith(".egg-info")
        )
        for name in names:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in BINARY_SUFFIXES and not matches_any(rel, config.exclude):
                yield path


def _module_name(rel: str) -> tuple[str, str]:
    """`(module, package)` of a Python file by its path under the root: `app/names.py` -> `app.names`, `app`."""
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _python_modules(paths: list[Path], base: Path) -> dict[str, tuple[Path, ast.Module]]:
    """Every parseable Python module of the tree by dotted name, for names imported across modules."""
    found = {}
    for path in paths:
        if path.suffix == ".py":
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                continue
            found[_module_name(path.relative_to(base).as_posix())[0]] = (path, tree)
    return found


def _read(path: Path) -> str | None:
    """The file as text, or None for a binary, unreadable or very large file."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def scan_file(path: Path, rel: str, config: Config, importer: Importer | None = None) -> ScannedFile | None:
    text = _read(path)
    if text is None:
        return None
    suffix = path.suffix.lower()
    if suffix in SQL_SUFFIXES:
        scanned = ScannedFile(rel, "sql")
        for snippet in _sql_units(text):
            facts = next(
                (f for v in normalize(snippet.text) if (f := scan_sql(v, snippet.line)) is not None), None
            )
            if facts is None:
                scanned.problems.append(parse_error(snippet.text, snippet.line))
                scanned.facts.facts.extend(fragment_facts(snippet.text, snippet.line))
            else:
                scanned.facts.extend(facts)
        if matches_any(rel, config.migrations):
            scanned.migration = classify(path.name, text)
    elif suffix in PY_SUFFIXES:
        scanned = ScannedFile(rel, "python")
        try:
            snippets = python_snippets(text, _module_name(rel)[1], importer)
        except (SyntaxError, ValueError) as exc:
            line = getattr(exc, "lineno", None) or 1
            scanned.problems.append((line, f"not valid Python, its strings were not checked: {exc}"))
            snippets = []
        for snippet in snippets:
            _scan_snippet(snippet, scanned)
    elif suffix in JS_SUFFIXES:
        scanned = ScannedFile(rel, "js")
        for snippet in js_snippets(text):
            _scan_snippet(snippet, scanned)
    elif suffix in NOTEBOOK_SUFFIXES:
        scanned = _scan_notebook(text, rel, importer)
    elif suffix in MARKDOWN_SUFFIXES:
        scanned = ScannedFile(rel, "markdown")
        _scan_units(markdown_units(text), scanned)
    else:
        scanned = ScannedFile(rel, "text")
        _scan_units(shell_units(text), scanned)
        scanned.facts.facts.extend(option_facts(text, 1))  # also unquoted: `PGOPTIONS: -c ...` in YAML
    return _settled(scanned)


def _scan_notebook(text: str, rel: str, importer: Importer | None) -> ScannedFile:
    scanned = ScannedFile(rel, "notebook")
    units, module, lines = notebook_units(text)
    _scan_units(units, scanned)
    if module.strip():
        cells = ScannedFile(rel, "python")
        try:
            snippets = python_snippets(module, _module_name(rel)[1], importer)
        except (SyntaxError, ValueError) as exc:
            line = getattr(exc, "lineno", None) or 1
            at = lines[line - 1] if 0 < line <= len(lines) else 1
            scanned.problems.append(
                (at, f"code cells are not valid Python, their strings were not checked: {exc}")
            )
            snippets = []
        for snippet in snippets:
            at = lines[snippet.line - 1] if 0 < snippet.line <= len(lines) else 1
            _scan_snippet(Snippet(snippet.text, at), cells)
        scanned.facts.extend(cells.facts)
    return scanned


def _scan_units(units: list[tuple[str, Snippet]], scanned: ScannedFile) -> None:
    for kind, snippet in units:
        if kind == "sql":
            _scan_sql_text(snippet, scanned)
        else:
            _scan_snippet(snippet, scanned)


def _scan_sql_text(snippet: Snippet, scanned: ScannedFile) -> None:
    """SQL written in another file (a heredoc, a notebook cell, a Markdown block): whole if it parses, else
    statement by statement (psql meta-commands blanked), else as fragments. Never a PGC106 warning: such text
    may be psql input rather than pure SQL."""
    text = _PSQL_META.sub("", snippet.text)
    facts = next((f for v in normalize(text) if (f := scan_sql(v, snippet.line)) is not None), None)
    if facts is not None:
        scanned.facts.extend(facts)
        return
    start = 0
    for end in [m.end() for m in _STATEMENT_END.finditer(text)] + [len(text)]:
        chunk = Snippet(text[start:end], snippet.line + text.count("\n", 0, start))
        start = end
        if not chunk.text.strip():
            continue
        facts = next((f for v in normalize(chunk.text) if (f := scan_sql(v, chunk.line)) is not None), None)
        if facts is not None:
            scanned.facts.extend(facts)
        else:
            scanned.facts.facts.extend(fragment_facts(chunk.text, chunk.line))


def _sql_units(text: str) -> list[Snippet]:
    """A .sql file as parse units: the whole file, or one unit per `-- name: <query>` block in a named-query
    file (such files hold one statement per name, with no semicolons between them)."""
    headers = list(_NAMED_QUERY.finditer(text))
    if not headers:
        return [Snippet(text, 1)]
    units = [Snippet(text[: headers[0].start()], 1)]
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        units.append(Snippet(text[header.start() : end], text.count("\n", 0, header.start()) + 1))
    return [unit for unit in units if unit.text.strip()]


def _scan_snippet(snippet: Snippet, scanned: ScannedFile) -> None:
    scanned.facts.facts.extend(option_facts(snippet.text, snippet.line))
    if not looks_like_sql(snippet.text):
        return
    for variant in normalize(snippet.text):
        facts = scan_sql(variant, snippet.line)
        if facts is not None:
            scanned.facts.extend(facts)
            return
    scanned.facts.facts.extend(fragment_facts(snippet.text, snippet.line))


def _settled(scanned: ScannedFile) -> ScannedFile:
    """One fact per (kind, name, line, function): a string read both as a constant and folded with its
    neighbours says the same thing twice. A write into a table that a SQL EXECUTE names only at run time
    becomes a `dynamic` fact (a host-language value the checker cannot resolve is left to the run-time
    checks: the guard, compat warnings and the live rules)."""
    seen: set[tuple[str, str, int, str | None]] = set()
    kept = []
    for fact in scanned.facts.facts:
        if fact.kind == "write" and fact.name == MARKER:
            fact = replace(
                fact, kind="dynamic", name="write", detail=f"{fact.detail} into a table named at run time"
            )
        key = (fact.kind, fact.name, fact.line, fact.function)
        if key not in seen:
            seen.add(key)
            kept.append(fact)
    scanned.facts.facts = kept
    return scanned
