"""Mutants: every operator applied at every place it fits, one change each, checked to be a real change.

For a function, each SQL site (a statement or expression inside the body) is parsed with pglast, rewritten by
an operator and printed back (`IndentedStream` for statements, so a diff shows the changed clause on its own
line; `RawStream` for expressions), then spliced into the definition's text; statements are dropped by their
span. A site whose printed form does not parse back to the same tree is left alone (the printer would change
more than the operator). Every mutant must parse again (its header with `parse_sql`, a PL/pgSQL body with
`parse_plpgsql`, an SQL body with `parse_sql`), must still replace the same function (same name and argument
types), and must differ from the original; identical mutants from two operators are kept once (the first).
Triggers are parsed and printed whole as `CREATE OR REPLACE TRIGGER`.

The order mutants run in is seeded and spread over the functions: each function's mutants are shuffled
within each operator, interleaved across operators, and the functions are taken in turn.
"""

from __future__ import annotations

import difflib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast
from pglast.stream import IndentedStream, RawStream

from harness.mutate import textscan
from harness.mutate.anatomy import Anatomy, Site, analyse, create_function, identity, parses
from harness.mutate.operators import Edit, Operator
from harness.mutate.source import Definition

_ENABLE = {"A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}


@dataclass(frozen=True)
class Mutant:
    id: str
    target: str  # the function's regprocedure, or `trigger ON table`
    kind: str  # function | trigger
    name: str  # the function's or trigger's name
    operator: str
    change: str  # one line: what the operator changed
    line: int  # where in the definition (1-based)
    sql: str  # what the mutant migration runs
    diff: str  # unified diff of the definition, before and after
    probe: str | None  # the coverage probe whose hit means the mutated code ran (None: cannot tell)
    equivalent: str | None = None  # judged equivalent from its text alone: the rule that says so


@dataclass
class Generated:
    mutants: list[Mutant] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why a rewrite was not kept -> how many
    notes: list[str] = field(default_factory=list)
    anatomies: dict[int, Anatomy] = field(default_factory=dict)  # definition index -> anatomy


def _statement(text: str) -> Any:
    """The parse tree of the one statement `text` holds (ValueError otherwise)."""
    stmts = pglast.parse_sql(text)
    if len(stmts) != 1:
        raise ValueError("not one statement")
    return stmts[0].stmt


def parse_site(site: Site) -> Any:
    """A fresh parse tree of a site: the statement, or for an expression the ResTarget holding it."""
    if site.expr:
        return _statement("SELECT " + site.text).targetList[0]
    return _statement(site.text)


def print_site(site: Site, root: Any) -> str:
    """A site's tree as SQL text the parser reads back (see `parse_site`)."""
    return RawStream()(root.val) if site.expr else IndentedStream()(root)


def spliced(text: str, site: Site, printed: str) -> str:
    """The definition with the site's source replaced by `printed` (PERFORM and INTO put back)."""
    if site.perform:
        printed = printed.split(None, 1)[1] if printed.upper().startswith("SELECT") else printed
    if site.into:
        printed = f"{printed} {site.into}"
    printed = textscan.reindent(printed, textscan.column(text, site.start))
    return text[: site.start] + printed + text[site.end :]


def invalid(text: str, anatomy: Anatomy) -> str | None:
    """Why a mutated definition would not do (None: it parses and replaces the same function)."""
    if not parses(text, anatomy.language):
        return "would not parse"
    if identity(create_function(text)) != anatomy.identity:
        return "would create another function"
    return None


LIMIT_KEPT_BY_INTO = (
    "rule: PL/pgSQL's SELECT ... INTO (not STRICT) keeps the first row and drops the rest, so the dropped "
    "LIMIT 1 is recomputed by the INTO (only the plan may change)"
)


def _recomputed(site: Site, original: Any, mutated: Any) -> str | None:
    """The rule judging a mutant equivalent from its text alone, if one applies: the top-level LIMIT 1 of a
    non-STRICT SELECT ... INTO dropped."""
    limit = getattr(original, "limitCount", None)
    if (
        site.into
        and not site.strict
        and isinstance(original, ast.SelectStmt)
        and isinstance(limit, ast.A_Const)
        and getattr(limit.val, "ival", None) == 1
        and mutated.limitCount is None
    ):
        return LIMIT_KEPT_BY_INTO
    return None


def _edits(op: Operator, root: Any) -> list[Edit]:
    return op.edits(root) if op.edits is not None else []


def _diff(target: str, operator: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), f"{target} (now)", f"{target} ({operator})", n=2, lineterm=""
    )
    return "\n".join(lines)


class _Builder:
    def __init__(self, operators: list[Operator]) -> None:
        self.operators = operators
        self.out = Generated()
        self.seen: set[tuple[str, str]] = set()
        self.pending: list[dict[str, Any]] = []

    def add(
        self,
        definition: Definition,
        op: Operator,
        change: str,
        at: int,
        before: str,
        after: str,
        sql: str,
        probe: str | None,
        equivalent: str | None = None,
    ) -> None:
        if (definition.target, sql) in self.seen:
            self.out.skipped["same mutant as another operator's"] += 1
            return
        self.seen.add((definition.target, sql))
        self.pending.append(
            dict(
                target=definition.target,
                kind=definition.kind,
                name=definition.name,
                operator=op.name,
                change=change,
                line=before[:at].count("\n") + 1,
                sql=sql,
                diff=_diff(definition.target, op.name, before, after),
                probe=probe,
                equivalent=equivalent,
            )
        )

    def function(self, index: int, definition: Definition) -> None:
        try:
            anatomy = analyse(definition.text, definition.language)
        except Exception as exc:
            self.out.notes.append(f"{definition.target}: not read ({type(exc).__name__}: {exc})")
            return
        self.out.anatomies[index] = anatomy
        self.out.notes += [f"{definition.target}: {note}" for note in anatomy.notes]
        text = anatomy.text

        def probe(statement: Any) -> str:
            return f"f{index}.{statement.probe}"

        entry = probe(anatomy.statements[0]) if anatomy.statements else None

        def keep(
            op: Operator,
            change: str,
            at: int,
            after: str,
            before: str = text,
            where: str | None = None,
            equivalent: str | None = None,
        ) -> None:
            why = invalid(after, anatomy)
            if why or after == before:
                self.out.skipped[why or "no change"] += 1
                return
            self.add(definition, op, change, at, before, after, after, where, equivalent)

        for op in self.operators:
            if op.family == "sql":
                for site in anatomy.sites:
                    self._site(op, site, text, keep, probe(site.statement))
            elif op.name == "negate-condition":
                for st in anatomy.statements:
                    if st.kind in ("if", "while", "exit"):
                        for site in st.sites:
                            after = (
                                text[: site.start] + f"NOT ({text[site.start : site.end]})" + text[site.end :]
                            )
                            keep(
                                op,
                                f"`{' '.join(site.text.split())[:60]}` negated",
                                site.start,
                                after,
                                where=probe(st),
                            )
            elif op.family == "statement" and op.drops is not None:
                for st in anatomy.statements:
                    if st.end is not None and op.drops(st, text):
                        shown = " ".join(text[st.start : st.end].split())
                        shown = shown if len(shown) <= 70 else shown[:67] + "..."
                        after = textscan.drop_span(text, st.start, st.end)
                        keep(op, f"drop `{shown}`", st.start, after, where=probe(st))
            elif op.family == "header" and anatomy.security_definer:
                start, end = anatomy.security_definer
                keep(op, "drop SECURITY DEFINER", start, textscan.drop_span(text, start, end), where=entry)

    def _site(self, op: Operator, site: Site, text: str, keep: Any, where: str) -> None:
        try:
            original = parse_site(site)
            baseline_piece = print_site(site, original)
            if parse_site(Site(0, 0, baseline_piece, site.expr, site.statement)) != original:
                self.out.skipped["printer not faithful to the site"] += 1
                return
            count = len(_edits(op, original))
        except Exception:
            self.out.skipped["site not parseable alone"] += 1
            return
        baseline = spliced(text, site, baseline_piece)
        for k in range(count):
            root = parse_site(site)
            change, apply = _edits(op, root)[k]
            apply()
            if root == original:
                self.out.skipped["no change"] += 1
                continue
            try:
                piece = print_site(site, root)
            except Exception:
                self.out.skipped["would not print"] += 1
                continue
            after = spliced(text, site, piece)
            keep(
                op,
                change,
                site.start,
                after,
                before=baseline,
                where=where,
                equivalent=_recomputed(site, original, root),
            )

    def trigger(self, definition: Definition) -> None:
        for op in self.operators:
            if op.family != "trigger":
                continue
            original = _statement(definition.text)
            original.replace = True
            before = IndentedStream()(original)
            for k in range(len(_edits(op, original))):
                root = _statement(definition.text)
                root.replace = True
                change, apply = _edits(op, root)[k]
                apply()
                after = IndentedStream()(root)
                sql = after + ";"
                if definition.enabled in _ENABLE:
                    sql += f"\nALTER TABLE {definition.table} {_ENABLE[definition.enabled]} TRIGGER {definition.name}"
                self.add(definition, op, change, 0, before, after, sql, None)


def generate(definitions: list[Definition], operators: list[Operator]) -> Generated:
    """Every mutant of `definitions` the operators make, numbered in generation order (M001, ...)."""
    builder = _Builder(operators)
    for index, definition in enumerate(definitions):
        if definition.kind == "function":
            builder.function(index, definition)
        elif definition.enabled != "D":
            builder.trigger(definition)
    width = max(3, len(str(len(builder.pending))))
    builder.out.mutants = [
        Mutant(id=f"M{n + 1:0{width}d}", **fields) for n, fields in enumerate(builder.pending)
    ]
    return builder.out


def seeded_order(mutants: list[Mutant], seed: int) -> list[Mutant]:
    """A deterministic order spread over the functions: within a function, each operator's mutants shuffled
    and the operators interleaved; then one mutant of each function in turn (the functions shuffled too)."""
    rng = random.Random(seed)
    by_function: dict[str, dict[str, list[Mutant]]] = defaultdict(lambda: defaultdict(list))
    for mutant in mutants:
        by_function[mutant.target][mutant.operator].append(mutant)
    queues = []
    for target in sorted(by_function):
        operators = sorted(by_function[target])
        rng.shuffle(operators)
        lists = []
        for name in operators:
            items = list(by_function[target][name])
            rng.shuffle(items)
            lists.append(items)
        queues.append(_interleave(lists))
    rng.shuffle(queues)
    return _interleave(queues)


def _interleave(lists: list[list[Mutant]]) -> list[Mutant]:
    out: list[Mutant] = []
    depth = max((len(items) for items in lists), default=0)
    for i in range(depth):
        out += [items[i] for items in lists if i < len(items)]
    return out
