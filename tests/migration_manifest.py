"""Shipped migrations are never edited: `pipeline/sql/migrations/SHA256SUMS` holds the sha256 of each one.

A database migrated yesterday ran yesterday's file; editing that file changes what a fresh database gets and
nothing on the databases already migrated, so the two drift apart silently. The manifest is `sha256sum`'s
own format (`cd pipeline/sql/migrations && sha256sum -c SHA256SUMS` checks it too), one line per migration,
and lines are only ever added: `python -m tests.schema_snapshot --write` records the migrations it does not
list yet and never rewrites a recorded hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "pipeline" / "sql" / "migrations"
MANIFEST = MIGRATIONS / "SHA256SUMS"
RECORD = "python -m tests.schema_snapshot --write"

_PREAMBLE = """\
# sha256 of every shipped migration (sha256sum format: `sha256sum -c SHA256SUMS` in this folder checks it).
# Migrations are append-only: never edit or delete a file listed here; write a new migration instead.
# New migrations are recorded by `python -m tests.schema_snapshot --write`; tests/unit/test_migrations_append_only.py
# fails on a listed file that changed or went away, and on a migration not listed.
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(manifest: Path = MANIFEST) -> dict[str, str]:
    """`{file name: sha256}` as the manifest records them."""
    recorded: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise ValueError(f"{manifest}:{number}: not `<sha256>  <file name>`: {line!r}")
        recorded[name.lstrip("*")] = digest
    return recorded


def problems(folder: Path = MIGRATIONS, manifest: Path = MANIFEST) -> list[str]:
    """One line per broken rule: a recorded migration edited or deleted, a migration not recorded."""
    if not manifest.exists():
        return [f"{manifest.name} is missing from {folder.name}/: create it with `{RECORD}`"]
    recorded = read(manifest)
    present = {path.name: path for path in sorted(folder.glob("*.sql"))}
    found = []
    for name, digest in recorded.items():
        if name not in present:
            found.append(
                f"migration {name} was deleted, but it shipped (listed in {manifest.name}): migrations are "
                "append-only; restore it and write a new migration that undoes what it did instead"
            )
        elif sha256(present[name]) != digest:
            found.append(
                f"migration {name} was edited after it shipped (its sha256 is not the one {manifest.name} "
                "records): migrations are append-only; restore it and write a new migration instead (one never "
                f"merged anywhere may be rewritten: drop its line from {manifest.name} and run `{RECORD}`)"
            )
    for name in present:
        if name not in recorded:
            found.append(f"migration {name} is not recorded in {manifest.name}: record it with `{RECORD}`")
    return found


def record_new(folder: Path = MIGRATIONS, manifest: Path = MANIFEST) -> list[str]:
    """Append a line for each migration the manifest does not list yet (recorded lines are never rewritten);
    returns the names recorded."""
    recorded = read(manifest) if manifest.exists() else {}
    new = [path for path in sorted(folder.glob("*.sql")) if path.name not in recorded]
    if new or not manifest.exists():
        text = manifest.read_text(encoding="utf-8") if manifest.exists() else _PREAMBLE
        text += "".join(f"{sha256(path)}  {path.name}\n" for path in new)
        manifest.write_text(text, encoding="utf-8")
    return [path.name for path in new]
