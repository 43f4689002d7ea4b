"""The harness's SQL, kept in `.sql` files under harness/sql and read by query name."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_FOLDER = Path(__file__).parent / "sql"
_NAMED = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def named_queries(file: str, folder: Path = _FOLDER) -> dict[str, str]:
    """`{name: statement}` for <folder>/<file>.sql (harness/sql by default); comment lines are dropped."""
    chunks = _NAMED.split((folder / f"{file}.sql").read_text(encoding="utf-8"))
    return {
        name: "\n".join(ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")).strip()
        for name, body in zip(chunks[1::2], chunks[2::2], strict=True)
    }
