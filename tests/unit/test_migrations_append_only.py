"""Shipped migrations are never edited: each is recorded by sha256 in pipeline/sql/migrations/SHA256SUMS.

A database already migrated never runs an edited migration again, so an edit makes fresh databases and
existing ones differ silently; a change belongs in a new migration. A new migration must be recorded, so
that it is guarded from the moment it ships.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.migration_manifest import MANIFEST, MIGRATIONS, problems, read, record_new


def test_every_shipped_migration_is_recorded_and_unchanged() -> None:
    found = problems()
    if found:
        pytest.fail("\n".join(found), pytrace=False)
    assert set(read()) == {path.name for path in MIGRATIONS.glob("*.sql")}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A throw-away copy of the migrations folder and its manifest, to plant violations in."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    assert problems(folder, folder / MANIFEST.name) == []
    return folder


def test_a_migration_edited_in_place_fails_in_one_line_saying_to_write_a_new_one(copy: Path) -> None:
    edited = copy / "0003_core_events_and_trigger.sql"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n-- a harmless-looking fix\n", encoding="utf-8")
    (message,) = problems(copy, copy / MANIFEST.name)
    assert "\n" not in message
    assert message.startswith("migration 0003_core_events_and_trigger.sql was edited after it shipped")
    assert "write a new migration instead" in message


def test_a_deleted_migration_fails(copy: Path) -> None:
    (copy / "0007_legacy_gateway_v0.sql").unlink()
    (message,) = problems(copy, copy / MANIFEST.name)
    assert message.startswith("migration 0007_legacy_gateway_v0.sql was deleted, but it shipped")
    assert "write a new migration that undoes what it did instead" in message


def test_a_new_migration_must_be_recorded_and_recording_never_rewrites_a_hash(copy: Path) -> None:
    """Recording adds the new file's line and leaves an edited file's recorded hash alone, so the edit
    still fails afterwards: recording is no way around the rule."""
    manifest = copy / MANIFEST.name
    (copy / "0999_core_new.sql").write_text("SELECT 1;\n", encoding="utf-8")
    edited = copy / "0001_infra_settings.sql"
    edited.write_text(edited.read_text(encoding="utf-8").replace("30", "31"), encoding="utf-8")
    found = problems(copy, manifest)
    assert "migration 0999_core_new.sql is not recorded in SHA256SUMS: record it with " in found[-1]
    assert len(found) == 2 and found[0].startswith("migration 0001_infra_settings.sql was edited")
    before = read(manifest)
    assert record_new(copy, manifest) == ["0999_core_new.sql"]
    after = read(manifest)
    assert after == {**before, "0999_core_new.sql": after["0999_core_new.sql"]}
    (remaining,) = problems(copy, manifest)
    assert remaining.startswith("migration 0001_infra_settings.sql was edited")
