"""SQL hidden in application code: string literals of Python (via its AST) and JS/TS (via a lexer-ish
regex), each with the line it starts on, ready for the SQL parser.

Python: every str or bytes constant, and every string the code builds (f-strings, `+`, `%`, `.format`, `.join`,
psycopg's `sql.SQL(...).format(sql.Identifier(...))`), folded from the constants it is given (contracts/pyfold.py),
so `cur.execute("insert into executor_jobs ...")` and `f"INSERT INTO {QUEUE} ..."` with `QUEUE = "executor_jobs"`
are both seen; a part that cannot be known becomes a placeholder identifier. Docstrings and messages are handed
over too, but only text that starts like a SQL statement is ever parsed.
JS/TS: '...', "..." and `...` literals; a template's `${NAME}` and a `'...' + NAME + '...'` chain take the value
of a `const|let|var NAME = '...'` of the same file, any other part becomes the placeholder.

Driver placeholders (`%s`, `%(name)s`, psycopg's binary `%b` and text `%t`, `:name`, `?`) are not Postgres syntax; `normalize` turns them into
`$1` so the statement parses.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from contracts.pyfold import Importer, sql_candidates
from contracts.sqlscan import PLACEHOLDER

_PYFORMAT = re.compile(r"%\((\w+)\)[sbt]|%[sbt]")  # psycopg: %s, %b (binary), %t (text)
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_QMARK = re.compile(r"(?<![\w?|&])\?(?![|&\w])")
_BRACES = re.compile(r"\{[A-Za-z_0-9.!:\[\]]*\}")
_JS_LITERAL = re.compile(
    r"""//[^\n]*|/\*.*?\*/|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`""", re.DOTALL
)
_JS_INTERP = re.compile(r"\$\{\s*([^}]*?)\s*\}")
_JS_CONST = re.compile(
    r"\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*('(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")"
)
_JS_CHAIN = re.compile(
    r"""(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|[A-Za-z_$][\w$.]*)"""
    r"""(?:\s*\+\s*(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|[A-Za-z_$][\w$.]*))+"""
)


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


def python_snippets(
    source: str | ast.Module, package: str = "", importer: Importer | None = None
) -> list[Snippet]:
    """String constants and built strings of a Python module (`package`: its package, for relative imports;
    `importer`: constants of other modules of the tree). Raises SyntaxError for a file that is not Python."""
    tree = ast.parse(source) if isinstance(source, str) else source
    found = [Snippet(text, line) for text, line in sql_candidates(tree, package, importer)]
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(value) for value in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in inside_fstring:
            if isinstance(node.value, str):
                found.append(Snippet(node.value, node.lineno))
            elif isinstance(node.value, bytes):
                found.append(Snippet(node.value.decode("utf-8", "replace"), node.lineno))
    return found


def js_snippets(source: str) -> list[Snippet]:
    """String and template literals of a JS/TS file (comments are skipped), and `+` chains of literals and
    names, with the file's string constants substituted."""
    constants = {m.group(1): m.group(2)[1:-1] for m in _JS_CONST.finditer(source)}
    found = []
    for match in _JS_LITERAL.finditer(source):
        token = match.group(0)
        if token.startswith(("//", "/*")):
            continue
        body = token[1:-1]
        if token.startswith("`"):
            body = _JS_INTERP.sub(lambda m: constants.get(m.group(1), PLACEHOLDER), body)
        found.append(Snippet(body, source.count("\n", 0, match.start()) + 1))
    for match in _JS_CHAIN.finditer(source):
        parts = re.split(r"\s*\+\s*", match.group(0))
        if not any(p[:1] in "'\"" for p in parts):
            continue
        text = "".join(p[1:-1] if p[:1] in "'\"" else constants.get(p, PLACEHOLDER) for p in parts)
        found.append(Snippet(text, source.count("\n", 0, match.start()) + 1))
    return found
