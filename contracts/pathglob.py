"""Glob patterns over paths relative to the source root, with `**` spanning folders.

`fnmatch` lets `*` cross `/`, so `pipeline/*.py` would match a file three folders down; config and
allowlist globs need the usual meaning: `*` within one folder, `**` across any number.
"""

from __future__ import annotations

import re
from functools import cache


@cache
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, pattern: str) -> bool:
    """Whether the relative posix `path` matches `pattern`."""
    return _compile(pattern.lstrip("./") if pattern.startswith("./") else pattern).match(path) is not None


def matches_any(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(matches(path, pattern) for pattern in patterns)
