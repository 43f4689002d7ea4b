"""SQL kept in `.sql` files and read by query name: `-- name: <query>` headers, comment lines dropped.

The harness reads its own SQL with this same reader (contracts/ is the lower layer: it imports nothing of
the harness)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_FOLDER = Path(__file__).parent / "sql"
_NAMED = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def named_queries(file: str, folder: Path = _FOLDER) -> dict[str, str]:
    """`{name: statement}` for <folder>/<file>.sql (contracts/sql by default)."""
    chunks = _NAMED.split((folder / f"{file}.sql").read_text(encoding="utf-8"))
    return {
        name: "\n".join(ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")).strip()
        for name, body in zip(chunks[1::2], chunks[2::2], strict=True)
    }
