"""Copies of the SUT with one extra migration: a mutant, or the coverage run's probes.

The team's migrations folder is copied whole to a work folder, one core migration is added (applied last,
`9999_core_<name>.sql`), and a SUT file pointing at the copy is written beside it (`to_toml`). The team's own
files are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.sut.config import Sut, load_sut, to_toml

MIGRATION = "9999_core_{name}.sql"


def sut_copy(sut: Sut, folder: Path, name: str, sql: str) -> tuple[Sut, Path]:
    """A copy of `sut`'s migrations in `folder/migrations` plus `sql` as the last migration; the copy's SUT
    (read back from the SUT file written at `folder/sut.toml`) and that file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    migrations = folder / "migrations"
    shutil.rmtree(migrations, ignore_errors=True)
    shutil.copytree(sut.migrations, migrations)
    (migrations / MIGRATION.format(name=name)).write_text(sql, encoding="utf-8")
    text = to_toml(sut, migrations=migrations.resolve())
    if sut.path is not None:  # a command naming {sut_dir} means the team's folder, not the copy's
        where = str(sut.path.parent.resolve()).replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace("{sut_dir}", where)
    path = folder / "sut.toml"
    path.write_text(text, encoding="utf-8")
    return load_sut(path), path


def mutant_migration(mutant_id: str, operator: str, target: str, sql: str) -> str:
    """The mutant's migration: a core migration re-creating one function (or trigger) as mutated."""
    statement = sql.rstrip().rstrip(";")
    return f"-- class: core\n-- harness mutate: {mutant_id} {operator} in {target}\n{statement};\n"
