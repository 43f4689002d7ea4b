"""A contracts config that says nothing of the allowlist keeps the default one (`contracts/allowlist.toml`
beside it), as running without a config does: narrowing the migrations must not turn every justified,
allowlisted exception into a violation."""

from __future__ import annotations

from pathlib import Path

from contracts.config import load_config


def test_a_config_without_an_allowlist_key_keeps_the_default_allowlist(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "allowlist.toml").write_text("")
    assert load_config(None, tmp_path).allowlist == tmp_path / "contracts" / "allowlist.toml"
    (tmp_path / "contracts.toml").write_text('migrations = ["db/*.sql"]\n')
    config = load_config(None, tmp_path)
    assert config.migrations == ("db/*.sql",)
    assert config.allowlist == (tmp_path / "contracts" / "allowlist.toml").resolve()


def test_without_an_allowlist_file_there_is_none(tmp_path: Path) -> None:
    (tmp_path / "contracts.toml").write_text('migrations = ["db/*.sql"]\n')
    assert load_config(None, tmp_path).allowlist is None
