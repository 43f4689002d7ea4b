"""SQL in files that are neither SQL, Python nor JS: shell scripts (`psql -c "..."`, heredocs), Jupyter
notebooks, Markdown code blocks, CI YAML, Makefiles, Dockerfiles and any other text file.

Each reader returns `(kind, Snippet)` pairs, kind `sql` (a unit to parse whole) or `text` (a string to parse if
it starts like SQL); a notebook also gives its code cells as one Python module. Lines are lines of the file as stored, so a finding in a
notebook points at the line of its raw JSON that holds the code.

- shell and other text: double-quoted strings (with `$VAR`, `${VAR}`, `${VAR:-x}` and Make's `$(VAR)` taken
  from the file's own `VAR=value` assignments, the rest a placeholder), single-quoted strings, heredoc bodies,
  and lines that start like a SQL statement (YAML block scalars, raw SQL), read up to a `;` or a blank line;
- notebooks: code cells as one Python module (a name defined in one cell is known in the next), `%%sql` cells
  and `%sql` lines as SQL, `%%bash`/`%%sh` cells and `!` lines as shell;
- Markdown: fenced blocks tagged sql/psql/pgsql/plpgsql/postgres(ql) as SQL, sh/bash/shell/console/zsh as shell
  (runbooks keep executable queries there); prose is never read.
"""

from __future__ import annotations

import json
import re

from contracts.extract import Snippet
from contracts.sqlscan import PLACEHOLDER, looks_like_sql

_ASSIGN = re.compile(
    r"""^[ \t]*(?:export[ \t]+|local[ \t]+|readonly[ \t]+|declare[ \t]+(?:-\w+[ \t]+)?)?([A-Za-z_]\w*)[ \t]*(?::?=|=)[ \t]*"""
    r"""(?:"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)'|([^\s;#]*))""",
    re.MULTILINE,
)
_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?::?-([^}]*))?\}|\(([A-Za-z_]\w*)\)|([A-Za-z_]\w*))")
_HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)([A-Za-z_]\w*)\1")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|`([^`]*)`', re.DOTALL)
_COMMENT_LINE = re.compile(r"^[ \t]*(?:#|//|--|;|rem\b).*$", re.MULTILINE | re.IGNORECASE)
_LINE_LEAD = re.compile(r"^[ \t]*(?:-[ \t]+)?(?:[\w.\-]+[ \t]*:[ \t]*(?:[|>][-+]?[ \t]*)?)?")
_FENCE = re.compile(r"^([ \t]*)(```+|~~~+)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
SQL_TAGS = {"sql", "psql", "pgsql", "plpgsql", "postgres", "postgresql"}
SHELL_TAGS = {"sh", "bash", "shell", "console", "zsh", "shell-session"}
Unit = tuple[str, Snippet]


def shell_units(text: str, first_line: int = 1) -> list[Unit]:
    """Candidate SQL of a shell script or any other text file."""
    variables = _variables(text)
    units: list[Unit] = []
    blanked = _COMMENT_LINE.sub(lambda m: " " * len(m.group(0)), text)
    for match in _HEREDOC.finditer(blanked):
        start = blanked.find("\n", match.end()) + 1
        if start == 0:
            continue
        end_match = re.compile(rf"^[ \t]*{match.group(2)}[ \t]*$", re.MULTILINE).search(blanked, start)
        end = end_match.start() if end_match else len(blanked)
        body = blanked[start:end]
        body = body if match.group(1) else _expand(body, variables)
        units.append(("sql", Snippet(body, first_line + blanked.count("\n", 0, start))))
        blanked = blanked[:start] + _blank(blanked[start:end]) + blanked[end:]
    for match in _QUOTED.finditer(blanked):
        body = (
            _expand(match.group(1), variables)
            if match.group(1) is not None
            else match.group(2) or match.group(3) or ""
        )
        kind = "sql" if body.lstrip().startswith("\\") else "text"  # psql input: `\copy ... from`
        units.append((kind, Snippet(body, first_line + blanked.count("\n", 0, match.start()))))
    unquoted = _QUOTED.sub(lambda m: _blank(m.group(0)), blanked)
    lines = unquoted.split("\n")
    index = 0
    while index < len(lines):
        lead = _LINE_LEAD.match(lines[index])
        rest = lines[index][lead.end() if lead else 0 :]
        if not looks_like_sql(rest):
            index += 1
            continue
        taken = [rest]
        end = index
        while not taken[-1].rstrip().endswith(";") and end + 1 < len(lines) and lines[end + 1].strip():
            end += 1
            taken.append(lines[end])
        units.append(("text", Snippet(_expand("\n".join(taken), variables), first_line + index)))
        index = end + 1
    return units


def notebook_units(text: str) -> tuple[list[Unit], str, list[int]]:
    """Candidate SQL of a Jupyter notebook (nbformat 4 JSON): the SQL and shell units, the code cells as one
    Python module, and the raw line of each line of that module. Nothing when it is not a notebook."""
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return [], "", []
    raw_lines = _source_lines(text)
    python: list[tuple[str, int]] = []  # (line of the notebook's code, raw line)
    units: list[Unit] = []
    for number, cell in enumerate(c for c in cells if isinstance(c, dict)):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        lines = "".join(source).split("\n") if isinstance(source, list) else str(source).split("\n")
        where = raw_lines[number] if number < len(raw_lines) else []

        def raw(i: int, where: list[int] = where) -> int:
            return where[i] if i < len(where) else (where[-1] if where else 1)

        head = lines[0].strip() if lines else ""
        if head.startswith("%%sql"):
            units.append(("sql", Snippet("\n".join(lines[1:]), raw(1))))
            continue
        if head.startswith(("%%bash", "%%sh", "%%script bash", "%%script sh")):
            for kind, snippet in shell_units("\n".join(lines[1:])):
                units.append((kind, Snippet(snippet.text, raw(snippet.line))))
            continue
        for i, line in enumerate(lines):
            stripped = line.lstrip()
            if stripped.startswith("%sql "):
                units.append(("sql", Snippet(stripped[5:], raw(i))))
                python.append(("", raw(i)))
            elif stripped.startswith("!"):
                units.extend((kind, Snippet(s.text, raw(i))) for kind, s in shell_units(stripped[1:]))
                python.append(("", raw(i)))
            elif stripped.startswith("%"):
                python.append(("", raw(i)))
            else:
                python.append((line, raw(i)))
    return units, "\n".join(line for line, _ in python), [r for _, r in python]


def markdown_units(text: str) -> list[Unit]:
    """Fenced SQL and shell blocks of a Markdown file."""
    units: list[Unit] = []
    for match in _FENCE.finditer(text):
        tag = match.group(3).lower()
        body = match.group(4)
        line = text.count("\n", 0, match.start(4)) + 1
        if tag in SQL_TAGS:
            units.append(("sql", Snippet(body, line)))
        elif tag in SHELL_TAGS:
            units.extend(shell_units(body, line))
    return units


def _source_lines(text: str) -> list[list[int]]:
    """For each cell, in order, the raw line of each line of its source (nbformat writes one list element per
    line; a source given as one string maps every line to the line of its key)."""
    lines = text.split("\n")
    cells: list[list[int]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith('"source"'):
            if stripped.rstrip(",").endswith("["):
                mapped = []
                index += 1
                while index < len(lines) and not lines[index].strip().startswith("]"):
                    mapped.append(index + 1)
                    index += 1
                cells.append(mapped)
            else:
                cells.append([index + 1] * (stripped.count("\\n") + 1))
        index += 1
    return cells


def _variables(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ASSIGN.finditer(text):
        value = next((g for g in match.groups()[1:] if g is not None), "")
        found.setdefault(match.group(1), _expand(value, found))
    return found


def _expand(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name in variables:
            return variables[name]
        return match.group(2) if match.group(2) is not None else PLACEHOLDER

    return _VAR.sub(value, text)


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)
