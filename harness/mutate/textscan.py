"""Reading SQL source text by position: where a statement ends, where a parsed query sits, byte offsets.

The parse trees of pglast give positions only partly (PL/pgSQL statements carry a line number, SQL nodes a
byte offset), so the mutator finds the rest in the text itself. Everything here is lexical: quotes, dollar
quotes and comments are skipped, so a `;` inside a string never ends a statement.
"""

from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def char_offset(text: str, byte_offset: int) -> int:
    """The character index of a byte offset into `text` encoded as UTF-8 (pglast's locations are bytes)."""
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def line_starts(text: str) -> list[int]:
    """The character index where each line of `text` begins (index 0 is line 1)."""
    starts = [0]
    starts += [m.end() for m in re.finditer("\n", text)]
    return starts


def skip_lexeme(text: str, i: int) -> int:
    """If a string, quoted identifier, dollar-quoted string or comment starts at `i`, the index after it;
    else `i` itself."""
    ch = text[i]
    if ch in "'\"":
        j = i + 1
        escaped = ch == "'" and i > 0 and text[i - 1] in "eE"
        while j < len(text):
            if escaped and text[j] == "\\":
                j += 2
                continue
            if text[j] == ch:
                if j + 1 < len(text) and text[j + 1] == ch:
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(text)
    if text.startswith("--", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    if text.startswith("/*", i):
        depth, j = 1, i + 2
        while j < len(text) and depth:
            if text.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif text.startswith("*/", j):
                depth, j = depth - 1, j + 2
            else:
                j += 1
        return j
    if ch == "$" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
        match = _DOLLAR.match(text, i)
        if match:
            end = text.find(match.group(0), match.end())
            return len(text) if end < 0 else end + len(match.group(0))
    return i


def statement_end(text: str, start: int, limit: int | None = None) -> int | None:
    """The index just after the `;` that ends the statement starting at `start`; None if there is none
    before `limit`."""
    limit = len(text) if limit is None else limit
    i = start
    while i < limit:
        after = skip_lexeme(text, i)
        if after != i:
            i = after
            continue
        if text[i] == ";":
            return i + 1
        i += 1
    return None


def query_pattern(query: str) -> re.Pattern[str]:
    """A pattern finding `query` in the source it was cut from. PL/pgSQL keeps a statement's text but blanks
    its INTO clause with as many spaces, so a run of spaces in `query` stands for that many characters."""
    parts = []
    for chunk in re.split(r"( +)", query.strip()):
        if not chunk:
            continue
        parts.append(f"[\\s\\S]{{{len(chunk)}}}" if chunk.startswith(" ") else re.escape(chunk))
    return re.compile("".join(parts))


def locate(text: str, query: str, start: int, end: int) -> tuple[int, int] | None:
    """Where `query` (as the PL/pgSQL parser stored it) sits in `text[start:end]`, as (first, after)."""
    if not query.strip():
        return None
    match = query_pattern(query).search(text, start, end)
    return (match.start(), match.end()) if match else None


def blanked(source: str, query: str) -> str:
    """The clause PL/pgSQL blanked out of `query` (its INTO target), read from `source`, the text `query` was
    located at; "" when nothing was blanked."""
    query = query.strip()
    differing = [i for i, ch in enumerate(query) if ch == " " and source[i] != " "]
    if not differing:
        return ""
    return source[differing[0] : differing[-1] + 1].strip()


def drop_span(text: str, start: int, end: int) -> str:
    """`text` without `text[start:end]`, and without the line it stood on when nothing else is left there."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    if not text[line_start:start].strip() and not text[end:line_end].strip():
        return text[:line_start] + text[min(line_end + 1, len(text)) :]
    return text[:start] + text[end:].lstrip(" ")


def column(text: str, index: int) -> int:
    """The column (0-based) of `index` in its line."""
    return index - (text.rfind("\n", 0, index) + 1)


def reindent(block: str, indent: int) -> str:
    """`block` with every line after the first indented by `indent` more spaces (printed SQL spliced into a
    body where the statement starts at that column)."""
    lines = block.split("\n")
    return "\n".join([lines[0], *((" " * indent + line) if line else line for line in lines[1:])])
