"""Classifying migrations core / legacy / infra, by name (`0007_legacy_gateway_v0.sql`) or by a header line
(`-- class: legacy`) in the first 2000 characters; when both are present they must agree.

This is the rule of harness/provision/migrations.py, restated here so a PR gate can use contracts/ without the
harness runner; tests/contracts checks that both agree on every case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLASSES = ("core", "legacy", "infra")
_NAME = re.compile(r"^(?P<version>\d+)_(?:(?P<cls>core|legacy|infra)_)?(?P<name>[A-Za-z0-9_\-]+)\.sql$")
_HEADER = re.compile(r"^--\s*class:\s*(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class Classification:
    version: str | None
    cls: str | None  # core | legacy | infra, or None when unclassified
    problem: str | None  # why it is unclassified, for the finding
    line: int = 1  # where to point: the header line, else the first line


def classify(filename: str, text: str) -> Classification:
    """The class of one migration file, or the problem that leaves it unclassified."""
    match = _NAME.match(filename)
    head = text[:2000]
    header = _HEADER.search(head)
    header_cls = header.group(1) if header else None
    line = head[: header.start()].count("\n") + 1 if header else 1
    if not match:
        return Classification(
            None, None, "its name does not look like NNNN_<core|legacy|infra>_<name>.sql", line
        )
    name_cls = match.group("cls")
    if name_cls and header_cls and name_cls != header_cls:
        return Classification(
            match.group("version"),
            None,
            f"its name says {name_cls!r} but its header says {header_cls!r}",
            line,
        )
    cls = name_cls or header_cls
    if cls not in CLASSES:
        what = (
            f"its header names {header_cls!r}, not core, legacy or infra"
            if header_cls
            else ("neither its name nor a `-- class:` header says core, legacy or infra")
        )
        return Classification(match.group("version"), None, what, line)
    return Classification(match.group("version"), cls, None, line)
