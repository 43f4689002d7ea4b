"""The checker's own SQL, kept in `.sql` files under contracts/sql and read by query name (the harness's
reader, pointed at this folder)."""

from __future__ import annotations

from pathlib import Path

from harness.sqlfile import named_queries as _named_queries

_FOLDER = Path(__file__).parent / "sql"


def named_queries(file: str) -> dict[str, str]:
    """`{name: statement}` for contracts/sql/<file>.sql."""
    return _named_queries(file, _FOLDER)
