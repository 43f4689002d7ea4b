"""Planting violations in a throw-away source tree: files are written with their text dedented, and the
line of a marker comment is returned so a test can assert the exact location a finding names."""

from __future__ import annotations

import textwrap
from pathlib import Path

from contracts.check import run_checks
from contracts.config import Config, load_config
from contracts.finding import Finding
from contracts.result import CheckResult

ROOT = Path(__file__).resolve().parents[2]


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, marker: str) -> int:
    """The 1-based line of the first line containing `marker`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in {path}")


def static(root: Path, config: Config | None = None) -> CheckResult:
    return run_checks(config or load_config(None, root), source=root)


def violations(result: CheckResult, rule: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule and f.violation]


def notebook(root: Path, rel: str, *cells: str) -> Path:
    """A Jupyter notebook (nbformat 4, written as Jupyter writes it: one source line per JSON line) whose code
    cells hold `cells`, each dedented."""
    import json

    def cell(text: str) -> dict[str, object]:
        lines = textwrap.dedent(text).strip("\n").splitlines(keepends=True)
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines}

    doc = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# a notebook\n", "prose only"]}]
        + [cell(c) for c in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def where(result: CheckResult, rule: str, level: str = "error") -> list[tuple[str, int]]:
    """`(path, line)`, sorted, of each finding of `rule` at `level` that no allowlist entry covers."""
    return sorted(
        (f.path or "", f.line or 0)
        for f in result.findings
        if f.rule == rule and f.level == level and not f.suppressed
    )
