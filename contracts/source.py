"""Reading a source tree for the static contracts: which files hold SQL, and what that SQL does.

SQL comes from `.sql` files (parsed whole), from string literals in Python (`.py`) and JS/TS (`.js`, `.mjs`,
`.cjs`, `.jsx`, `.ts`, `.tsx`). Hidden folders (`.git`, `.venv`), virtualenvs, `node_modules` and the config's
`exclude` globs are skipped. A string that starts like SQL but parses in no variant is kept as a fragment:
the checks still look into it with a narrow pattern (`INSERT INTO executor_jobs`), so concatenated SQL
cannot hide a direct insert; everything else is decided on the parse tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from contracts.config import Config
from contracts.errors import ContractInputError
from contracts.extract import Snippet, js_snippets, normalize, python_snippets
from contracts.migrations import Classification, classify
from contracts.pathglob import matches_any
from contracts.sqlscan import Fact, SqlFacts, looks_like_sql, parse_error, scan_sql

SQL_SUFFIXES = (".sql",)
PY_SUFFIXES = (".py",)
JS_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx")
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}
_FRAGMENT_WRITE = re.compile(
    r"\b(insert\s+into|copy|merge\s+into)\s+(?:\"?\w+\"?\.)?\"?executor_jobs\b\"?"
    r"(?=\s*(?:\(|$|values\b|select\b|default\b|overriding\b|from\b|as\b|using\b|\w+\s+using\b|with\b))",
    re.IGNORECASE,
)
_NAMED_QUERY = re.compile(r"^--\s*name:\s*[\w-]+", re.MULTILINE)
_FRAGMENT_CALL = re.compile(r"\b(claim_initial_decision_jobs|claim_orchestrator_jobs)\s*\(", re.IGNORECASE)


@dataclass
class ScannedFile:
    path: str  # relative to the source root, posix
    kind: str  # sql | python | js
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
        """`(function|trigger, name) -> (path, line)` of each object's last definition (migrations in order)."""
        found: dict[tuple[str, str], tuple[str, int]] = {}
        others = [f for f in self.files if f.migration is None]
        for scanned in [*others, *self.migrations()]:
            for fact in scanned.facts.of("define"):
                kind = "trigger" if fact.detail.startswith("trigger") else "function"
                found[(kind, fact.name)] = (scanned.path, fact.line)
        return found


def scan_tree(root: Path, config: Config) -> SourceScan:
    """Scan every source file under `root` (or the one file `root` names)."""
    if not root.exists():
        raise ContractInputError(f"source path {root} does not exist; pass --source with a folder or file")
    base = root if root.is_dir() else root.parent
    paths = [root] if root.is_file() else list(_walk(root, config))
    files = [scan_file(path, path.relative_to(base).as_posix(), config) for path in sorted(paths)]
    return SourceScan(base, [f for f in files if f is not None])


def _walk(root: Path, config: Config) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not d.endswith(".egg-info")
        )
        for name in names:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.suffix in (*SQL_SUFFIXES, *PY_SUFFIXES, *JS_SUFFIXES) and not matches_any(
                rel, config.exclude
            ):
                yield path


def scan_file(path: Path, rel: str, config: Config) -> ScannedFile | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if path.suffix in SQL_SUFFIXES:
        scanned = ScannedFile(rel, "sql")
        for snippet in _sql_units(text):
            facts = next(
                (f for v in normalize(snippet.text) if (f := scan_sql(v, snippet.line)) is not None), None
            )
            if facts is None:
                scanned.problems.append(parse_error(snippet.text, snippet.line))
                scanned.facts.facts.extend(_fragment_facts(snippet.text, snippet.line))
            else:
                scanned.facts.extend(facts)
        if matches_any(rel, config.migrations):
            scanned.migration = classify(path.name, text)
        return scanned
    if path.suffix in PY_SUFFIXES:
        scanned = ScannedFile(rel, "python")
        try:
            snippets = python_snippets(text)
        except SyntaxError as exc:
            scanned.problems.append(
                (exc.lineno or 1, f"not valid Python, its strings were not checked: {exc.msg}")
            )
            return scanned
    else:
        scanned = ScannedFile(rel, "js")
        snippets = js_snippets(text)
    for snippet in snippets:
        _scan_snippet(snippet, scanned)
    return scanned


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
    if not looks_like_sql(snippet.text):
        return
    for variant in normalize(snippet.text):
        facts = scan_sql(variant, snippet.line)
        if facts is not None:
            scanned.facts.extend(facts)
            return
    scanned.facts.facts.extend(_fragment_facts(snippet.text, snippet.line))


def _fragment_facts(text: str, first_line: int) -> list[Fact]:
    """Facts read from SQL that does not parse: only the narrow patterns the contracts cannot miss."""
    facts = []
    for match in _FRAGMENT_WRITE.finditer(text):
        verb = match.group(1).split()[0].upper()
        facts.append(
            Fact(
                "write",
                "executor_jobs",
                first_line + text.count("\n", 0, match.start()),
                None,
                f"{verb} (in SQL that does not parse on its own)",
            )
        )
    for match in _FRAGMENT_CALL.finditer(text):
        facts.append(
            Fact(
                "call",
                match.group(1).lower(),
                first_line + text.count("\n", 0, match.start()),
                None,
                "(in SQL that does not parse on its own)",
            )
        )
    return facts
