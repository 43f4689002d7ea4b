"""SQL lives in `.sql` files: the migrations, and named queries per worker role loaded into mappings.

Runtime Python holds no SQL strings. A query file is a list of `-- name: <query>` headers each followed by
one statement; comment lines under a header describe it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
MIGRATIONS = HERE / "migrations"
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def queries(group: str) -> dict[str, str]:
    """The named queries of `sql/queries/<group>.sql` (common, decision, orchestrator, scheduler)."""
    text = (HERE / "queries" / f"{group}.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        found[name] = "\n".join(lines).strip()
    return found
