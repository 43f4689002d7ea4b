"""Applying a pipeline's migrations: a folder of plain `.sql` files, applied in name order.

Each file is classified `core`, `legacy` or `infra`, by its name (`0007_legacy_gateway_v0.sql`) or by a
header line (`-- class: legacy`). The harness applies them itself rather than importing the pipeline, so any
team's folder of SQL files works the same way. Applied files are recorded in `schema_migrations`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.errors import BadInput, MigrationError

CLASSES = ("core", "legacy", "infra")
_NAME = re.compile(r"^(?P<version>\d+)_(?:(?P<cls>core|legacy|infra)_)?(?P<name>[A-Za-z0-9_\-]+)\.sql$")
_HEADER = re.compile(r"^--\s*class:\s*(\w+)", re.MULTILINE)

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY, name text NOT NULL,
    class text NOT NULL CHECK (class IN ('core', 'legacy', 'infra')),
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp())
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    cls: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MigrationPlan:
    """Which migrations of a folder to apply: all, or up to and including `until`, less `skip`."""

    folder: Path
    until: str | None = None
    skip: tuple[str, ...] = ()

    def selected(self) -> list[Migration]:
        chosen = []
        known = load_migrations(self.folder)
        versions = {m.version for m in known}
        for wanted in (self.until, *self.skip):
            if wanted is not None and wanted not in versions:
                raise BadInput(
                    f"migration {wanted!r} is not in {self.folder} (versions there: {', '.join(sorted(versions))})"
                )
        for migration in known:
            if migration.version in self.skip:
                continue
            chosen.append(migration)
            if self.until is not None and migration.version == self.until:
                break
        return chosen

    def key(self) -> str:
        """A short stable name for databases built from this plan: which migrations, and a digest of what
        they say, so two folders (the reference pipeline and a copy with a planted bug, say) never share a
        template in one cluster."""
        label = "all" if self.until is None else f"u{self.until}"
        if self.skip:
            label += "_s" + "_".join(self.skip)
        digest = hashlib.sha1()
        for migration in self.selected():
            digest.update(migration.path.name.encode() + b"\0" + migration.path.read_bytes() + b"\0")
        return f"{label}_{digest.hexdigest()[:10]}"


def load_migrations(folder: Path) -> list[Migration]:
    """Read and classify every migration of a folder; raise BadInput naming any file that breaks the rules."""
    if not folder.is_dir():
        raise BadInput(
            f"migrations folder {folder} does not exist; point the SUT config at a folder of .sql files"
        )
    found: list[Migration] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            problems.append(f"{path.name}: name must look like NNNN_<core|legacy|infra>_<name>.sql")
            continue
        cls = match.group("cls")
        header = _HEADER.search(path.read_text(encoding="utf-8")[:2000])
        header_cls = header.group(1) if header else None
        if cls and header_cls and cls != header_cls:
            problems.append(f"{path.name}: name says {cls!r} but header says {header_cls!r}")
            continue
        cls = cls or header_cls
        if cls not in CLASSES:
            problems.append(
                f"{path.name}: unclassified; add 'core', 'legacy' or 'infra' to its name or header"
            )
            continue
        found.append(Migration(match.group("version"), match.group("name"), cls, path))
    if problems:
        raise BadInput("bad migrations: " + "; ".join(problems))
    if not found:
        raise BadInput(f"migrations folder {folder} holds no .sql files")
    return found


def apply_migrations(dsn: str, plan: MigrationPlan) -> list[Migration]:
    """Apply the plan's migrations to the database at `dsn`, each in its own transaction."""
    applied: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute(_LEDGER)
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in plan.selected():
            if migration.version in done:
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql().encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, class) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.cls),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.path.name} failed: {exc}".strip()) from exc
            applied.append(migration)
    return applied
