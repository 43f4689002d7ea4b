"""SQL hidden in application code: string literals of Python (via its AST) and JS/TS (via a lexer-ish
regex), each with the line it starts on, ready for the SQL parser.

Python: every str or bytes constant and every f-string (its `{...}` parts become a placeholder identifier),
so `cur.execute("insert into executor_jobs ...")` and `f"INSERT INTO {table} ..."` are both seen. Docstrings
and messages are handed over too, but only text that starts like a SQL statement is ever parsed.
JS/TS: '...', "..." and `...` literals (template `${...}` parts become the placeholder).

Driver placeholders (`%s`, `%(name)s`, psycopg's binary `%b` and text `%t`, `:name`, `?`) are not Postgres syntax; `normalize` turns them into
`$1` so the statement parses.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

PLACEHOLDER = "__fmt__"
_PYFORMAT = re.compile(r"%\((\w+)\)[sbt]|%[sbt]")  # psycopg: %s, %b (binary), %t (text)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_QMARK = re.compile(r"(?<![\w?|&])\?(?![|&\w])")
_BRACES = re.compile(r"\{[A-Za-z_0-9.!:\[\]]*\}")
_JS_LITERAL = re.compile(
    r"""//[^\n]*|/\*.*?\*/|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`""", re.DOTALL
)
_JS_INTERP = re.compile(r"\$\{[^}]*\}")


@dataclass(frozen=True)
class Snippet:
    text: str
    line: int  # the line of the file the text starts on


def normalize(text: str) -> list[str]:
    """Variants of `text` to try with the parser, most faithful first."""
    variants = [text]
    bound = _PYFORMAT.sub("$1", text).replace("%%", "%")
    if bound != text:
        variants.append(bound)
    braces = _BRACES.sub(PLACEHOLDER, bound)
    if braces != bound:
        variants.append(braces)
    named = _QMARK.sub("$1", _NAMED.sub("$1", braces))
    if named != braces:
        variants.append(named)
    return variants


def python_snippets(source: str) -> list[Snippet]:
    """String constants and f-strings of a Python module. Raises SyntaxError for a file that is not Python."""
    tree = ast.parse(source)
    found: list[Snippet] = []
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstring.add(id(value))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                else:
                    parts.append(PLACEHOLDER)
            found.append(Snippet("".join(parts), node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in inside_fstring:
            if isinstance(node.value, str):
                found.append(Snippet(node.value, node.lineno))
            elif isinstance(node.value, bytes):
                found.append(Snippet(node.value.decode("utf-8", "replace"), node.lineno))
    return found


def js_snippets(source: str) -> list[Snippet]:
    """String and template literals of a JS/TS file (comments are skipped)."""
    found = []
    for match in _JS_LITERAL.finditer(source):
        token = match.group(0)
        if token.startswith(("//", "/*")):
            continue
        body = token[1:-1]
        if token.startswith("`"):
            body = _JS_INTERP.sub(PLACEHOLDER, body)
        found.append(Snippet(body, source.count("\n", 0, match.start()) + 1))
    return found
