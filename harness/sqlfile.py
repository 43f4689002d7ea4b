"""The harness's SQL, kept in `.sql` files under harness/sql and read by query name. Every statement the
harness runs against a pipeline is in that folder, so the contract it relies on can be read in one place."""

from __future__ import annotations

from pathlib import Path

from contracts.sqlfile import named_queries as _named_queries

_FOLDER = Path(__file__).parent / "sql"


def named_queries(file: str, folder: Path = _FOLDER) -> dict[str, str]:
    """`{name: statement}` for <folder>/<file>.sql (harness/sql by default); comment lines are dropped."""
    return _named_queries(file, folder)
