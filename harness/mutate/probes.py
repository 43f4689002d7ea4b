"""Coverage probes: which statement of which function ran during a suite, read from the server log.

The coverage run deploys an instrumented copy of the pipeline: one more migration re-creating each function
with a probe before every statement a mutant changes (`RAISE LOG 'harness-mutate-probe f3.s7'` in PL/pgSQL; a
call of `harness_mutate_probe` in an SQL body). A probe only logs; the function otherwise does what it did.
An instrumented function that would not parse loses the probes that broke it (one at a time, checked by
pglast), and its mutants are then of unknown reach. The server's log is read after each scenario: the probe
ids it names are the statements that scenario executed.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.mutate.anatomy import Anatomy, parses
from harness.mutate.source import Definition
from harness.sqlfile import named_queries

PROBE_HIT = re.compile(r"harness-mutate-probe (f\d+\.s\d+)")


def _insert(anatomy: Anatomy, text: str, start: int, probe: str) -> str:
    queries = named_queries("mutate")
    template = queries["plpgsql_probe"] if anatomy.language == "plpgsql" else queries["sql_probe"]
    indent = start - (text.rfind("\n", 0, start) + 1)
    line_start = text.rfind("\n", 0, start) + 1
    separator = "\n" + " " * indent if not text[line_start:start].strip() else " "
    return text[:start] + template.format(probe=probe) + separator + text[start:]


def instrument(index: int, anatomy: Anatomy) -> tuple[str, set[str]]:
    """The definition with a probe before each of its statements, and the probe ids it holds."""
    text = anatomy.text
    placed: set[str] = set()
    for statement in sorted(anatomy.statements, key=lambda s: s.start, reverse=True):
        probe = f"f{index}.{statement.probe}"
        candidate = _insert(anatomy, text, statement.start, probe)
        if parses(candidate, anatomy.language):
            text = candidate
            placed.add(probe)
    return text, placed


def probe_migration(definitions: list[Definition], anatomies: dict[int, Anatomy]) -> tuple[str, set[str]]:
    """The instrumented copy's extra migration, and every probe id it places."""
    parts = ["-- class: core", "-- harness mutate: coverage probes (an instrumented copy, never deployed)"]
    parts.append(named_queries("mutate")["probe_function"] + ";")
    placed: set[str] = set()
    for index, anatomy in sorted(anatomies.items()):
        if anatomy.body is None or not anatomy.statements or definitions[index].kind != "function":
            continue
        text, probes = instrument(index, anatomy)
        if probes:
            parts.append(text.rstrip().rstrip(";") + ";")
            placed |= probes
    return "\n\n".join(parts) + "\n", placed


def hits(log: Path, offset: int) -> tuple[set[str], int]:
    """Probe ids named in the server log after `offset`, and the offset the log ends at now."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return set(), offset
    return set(PROBE_HIT.findall(data.decode("utf-8", errors="replace"))), offset + len(data)
