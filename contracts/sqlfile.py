"""The checker's own SQL, kept in `.sql` files under contracts/sql and read by query name."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_FOLDER = Path(__file__).parent / "sql"
_NAMED = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def named_queries(file: str) -> dict[str, str]:
    """`{name: statement}` for contracts/sql/<file>.sql; comment lines are dropped from each statement."""
    chunks = _NAMED.split((_FOLDER / f"{file}.sql").read_text(encoding="utf-8"))
    return {
        name: "\n".join(ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")).strip()
        for name, body in zip(chunks[1::2], chunks[2::2], strict=True)
    }
