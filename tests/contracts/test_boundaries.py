"""The house's boundaries (`[tool.importlinter]` in pyproject.toml) hold on the tree, and each contract fails
on a copy of the tree that differs by one planted import: a guard that cannot fail guards nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("harness", "contracts", "pipeline"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the installed tree, is what gets read
    return subprocess.run(
        [str(lint), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_boundary(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("pipeline/errors.py", "import harness.errors", "the reference pipeline imports nothing"),
        ("contracts/finding.py", "import harness.errors", "contracts/ stands alone"),
        ("harness/sut/config.py", "import pipeline.flow", "it imports nothing of pipeline/"),
        ("harness/checkers/drained.py", "import psycopg", "checkers are pure"),
        ("harness/faults/base.py", "import harness.runner", "the harness's layers"),
    ],
    ids=[
        "pipeline-imports-harness",
        "contracts-import-harness",
        "harness-imports-pipeline",
        "impure-checker",
        "layer-upward",
    ],
)
def test_each_boundary_fails_on_a_planted_import(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(
        head + sep + f"\n{planted}  # planted\n" + rest if sep else f"{planted}  # planted\n{text}"
    )
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _verdicts(result.stdout) == {contract: "BROKEN"}, result.stdout


def _verdicts(stdout: str) -> dict[str, str]:
    """{a contract named by the given fragment: its verdict} for the contracts reported broken (lint-imports
    wraps long names over lines, so the report is read with its white space folded)."""
    import re

    folded = " ".join(stdout.split())
    names = re.findall(r"(?:KEPT|BROKEN|-) ((?:(?!KEPT|BROKEN).)*?) ?BROKEN", folded)
    found = {}
    for name in names:
        for fragment in (
            "the reference pipeline imports nothing",
            "contracts/ stands alone",
            "it imports nothing of pipeline/",
            "checkers are pure",
            "the harness's layers",
        ):
            if fragment in name:
                found[fragment] = "BROKEN"
    return found
