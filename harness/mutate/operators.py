"""Mutation operators: one small change each, with what a suite needs to notice it.

Three families, by what they rewrite:

- **SQL operators** rewrite the parse tree of one SQL statement or expression (pglast's AST) at one place:
  `edits(root)` lists every place the operator applies to, each as a label and a function making the change
  in place. The generator re-parses the text for each edit, so every mutant is one change from the original.
- **Statement operators** drop one PL/pgSQL (or SQL-function) statement whole, by its span in the source.
- **Header and trigger operators** drop `SECURITY DEFINER` from a function's header, or change a trigger's
  events or WHEN clause (`CREATE OR REPLACE TRIGGER`).

`needs` is the heuristic the report gives for a survivor: the fault or check a suite would need to kill it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast, enums
from pglast.stream import RawStream

Edit = tuple[str, Callable[[], None]]

# The RFC's status vocabularies (harness/sut/CONTRACT.md): a job's status and a run's outcome. A literal of
# one is replaced by the next of its cycle (`queued` -> `retrying`: the two ready states confused, and so on).
STATUS_CYCLE = {
    "queued": "retrying",
    "retrying": "running",
    "running": "succeeded",
    "succeeded": "dead",
    "dead": "queued",
    "failed": "lease_expired",
    "lease_expired": "released",
    "released": "failed",
}
_NEGATED = {"=": "<>", "<>": "=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_TRIGGER_EVENTS = {4: "INSERT", 8: "DELETE", 16: "UPDATE", 32: "TRUNCATE"}


def walk(node: Any) -> Iterator[Any]:
    """Every AST node under `node` (itself first), depth first in source order."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for name in getattr(type(node), "__slots__", ()):
        value = getattr(node, name, None)
        if isinstance(value, ast.Node | tuple | list):
            yield from walk(value)


def shown(node: Any, limit: int = 80) -> str:
    """A node as SQL, on one line, cut at `limit` characters, for labels."""
    try:
        text = " ".join(RawStream()(node).split())
    except Exception:  # some nodes (a SET target) have no printer of their own
        text = type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Operator:
    name: str
    family: str  # sql | statement | header | trigger
    what: str
    needs: str
    edits: Callable[[Any], list[Edit]] | None = None  # sql and trigger operators: (root) -> edits
    drops: Callable[[Any, str], bool] | None = None  # statement operators: (Statement, text) -> drop it?


def _without(items: tuple[Any, ...], index: int) -> tuple[Any, ...] | None:
    rest = items[:index] + items[index + 1 :]
    return rest or None


def _setter(node: Any, attribute: str, value: Any) -> Callable[[], None]:
    return lambda: setattr(node, attribute, value)


def _drop_for_update(root: Any) -> list[Edit]:
    edits = []
    for node in walk(root):
        for i, clause in enumerate(getattr(node, "lockingClause", None) or ()):
            edits.append(
                (f"drop FOR {shown(clause)}", _setter(node, "lockingClause", _without(node.lockingClause, i)))
            )
    return edits


def _drop_skip_locked(root: Any) -> list[Edit]:
    return [
        (
            f"FOR {shown(node)} -> without SKIP LOCKED",
            _setter(node, "waitPolicy", enums.LockWaitPolicy.LockWaitBlock),
        )
        for node in walk(root)
        if isinstance(node, ast.LockingClause) and node.waitPolicy == enums.LockWaitPolicy.LockWaitSkip
    ]


def _drop_on_conflict(root: Any) -> list[Edit]:
    return [
        (f"drop ON CONFLICT {shown(node.onConflictClause)}", _setter(node, "onConflictClause", None))
        for node in walk(root)
        if isinstance(node, ast.InsertStmt) and node.onConflictClause is not None
    ]


def _conjuncts(holder: Any, attribute: str) -> list[Edit]:
    clause = getattr(holder, attribute)
    if not (isinstance(clause, ast.BoolExpr) and clause.boolop == enums.BoolExprType.AND_EXPR):
        return []
    edits = []
    args = tuple(clause.args or ())
    for i, arg in enumerate(args):
        rest = _without(args, i) or ()
        value = rest[0] if len(rest) == 1 else ast.BoolExpr(boolop=clause.boolop, args=rest)
        edits.append((f"drop `{shown(arg)}` from AND", _setter(holder, attribute, value)))
    return edits


def _drop_conjunct(root: Any) -> list[Edit]:
    edits = []
    if isinstance(root, ast.ResTarget):  # an expression site (a PL/pgSQL condition: IF a AND b)
        edits += _conjuncts(root, "val")
    for node in walk(root):
        if (
            isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt)
            and node.whereClause is not None
        ):
            edits += _conjuncts(node, "whereClause")
    return edits


def _negate(node: Any) -> Edit | None:
    if isinstance(node, ast.A_Expr) and node.name and isinstance(node.name[-1], ast.String):
        op = node.name[-1].sval
        kind = node.kind
        if kind == enums.A_Expr_Kind.AEXPR_OP and op in _NEGATED:
            new = (*node.name[:-1], ast.String(sval=_NEGATED[op]))
            return f"`{shown(node)}`: {op} -> {_NEGATED[op]}", _setter(node, "name", new)
        if kind == enums.A_Expr_Kind.AEXPR_IN and op in ("=", "<>"):
            flipped = "<>" if op == "=" else "="
            label = f"`{shown(node)}`: {'IN -> NOT IN' if op == '=' else 'NOT IN -> IN'}"
            return label, _setter(node, "name", (ast.String(sval=flipped),))
        if kind in (enums.A_Expr_Kind.AEXPR_DISTINCT, enums.A_Expr_Kind.AEXPR_NOT_DISTINCT):
            other = (
                enums.A_Expr_Kind.AEXPR_NOT_DISTINCT
                if kind == enums.A_Expr_Kind.AEXPR_DISTINCT
                else enums.A_Expr_Kind.AEXPR_DISTINCT
            )
            return f"`{shown(node)}`: IS [NOT] DISTINCT FROM negated", _setter(node, "kind", other)
    if isinstance(node, ast.NullTest):
        test = (
            enums.NullTestType.IS_NOT_NULL
            if node.nulltesttype == enums.NullTestType.IS_NULL
            else enums.NullTestType.IS_NULL
        )
        return f"`{shown(node)}`: IS [NOT] NULL negated", _setter(node, "nulltesttype", test)
    return None


def _negate_comparison(root: Any) -> list[Edit]:
    return [edit for node in walk(root) if (edit := _negate(node)) is not None]


def _swap_status(root: Any) -> list[Edit]:
    edits = []
    for node in walk(root):
        if (
            isinstance(node, ast.A_Const)
            and isinstance(node.val, ast.String)
            and node.val.sval in STATUS_CYCLE
        ):
            old, new = node.val.sval, STATUS_CYCLE[node.val.sval]
            edits.append((f"'{old}' -> '{new}'", _setter(node, "val", ast.String(sval=new))))
    return edits


def _left_to_inner(root: Any) -> list[Edit]:
    return [
        (f"LEFT JOIN {shown(node.rarg, 40)} -> JOIN", _setter(node, "jointype", enums.JoinType.JOIN_INNER))
        for node in walk(root)
        if isinstance(node, ast.JoinExpr) and node.jointype == enums.JoinType.JOIN_LEFT
    ]


def _drop_limit(root: Any) -> list[Edit]:
    return [
        (f"drop LIMIT {shown(node.limitCount)}", _setter(node, "limitCount", None))
        for node in walk(root)
        if isinstance(node, ast.SelectStmt) and node.limitCount is not None
    ]


def _drop_set_column(root: Any) -> list[Edit]:
    edits = []
    for node in walk(root):
        targets = tuple(getattr(node, "targetList", None) or ())
        if isinstance(node, ast.UpdateStmt | ast.OnConflictClause) and len(targets) > 1:
            for i, target in enumerate(targets):
                label = f"drop `SET {target.name} = {shown(target.val, 50)}`"
                edits.append((label, _setter(node, "targetList", _without(targets, i))))
    return edits


def _without_event(root: Any, bit: int) -> Callable[[], None]:
    def change() -> None:
        root.events = (root.events or 0) & ~bit
        if bit == 16:
            root.columns = None  # UPDATE OF col goes with UPDATE

    return change


def _trigger_drop_event(root: Any) -> list[Edit]:
    if not isinstance(root, ast.CreateTrigStmt):
        return []
    present = [bit for bit in _TRIGGER_EVENTS if (root.events or 0) & bit]
    if len(present) < 2:
        return []
    return [
        (f"the trigger no longer fires on {_TRIGGER_EVENTS[bit]}", _without_event(root, bit))
        for bit in present
    ]


def _trigger_drop_when(root: Any) -> list[Edit]:
    if isinstance(root, ast.CreateTrigStmt) and root.whenClause is not None:
        return [(f"drop WHEN ({shown(root.whenClause)})", _setter(root, "whenClause", None))]
    return []


def _drops_notify(statement: Any, text: str) -> bool:
    return statement.end is not None and bool(statement.calls("pg_notify", text))


def _drops_perform(statement: Any, text: str) -> bool:
    return statement.end is not None and statement.kind == "perform"


def _drops_raise(statement: Any, text: str) -> bool:
    return statement.end is not None and bool(statement.exception)


def _drops_any(statement: Any, text: str) -> bool:
    return statement.end is not None and statement.kind != "raise"


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator(
            "drop-for-update",
            "sql",
            "drop a FOR UPDATE/SHARE locking clause",
            "concurrent claimers of the same rows (two or more workers of the role) and a check that a job "
            "runs once at a time",
            edits=_drop_for_update,
        ),
        Operator(
            "drop-skip-locked",
            "sql",
            "FOR UPDATE ... SKIP LOCKED waits instead of skipping",
            "contention: several workers claiming at once, with a throughput or latency bound",
            edits=_drop_skip_locked,
        ),
        Operator(
            "drop-on-conflict",
            "sql",
            "drop an INSERT's ON CONFLICT clause",
            "duplicate events or requests (the duplicate-events fault, duplicates in the workload)",
            edits=_drop_on_conflict,
        ),
        Operator(
            "drop-where-conjunct",
            "sql",
            "drop one conjunct of a WHERE (or of a PL/pgSQL condition)",
            "rows the dropped condition excluded present at the same time (another kind, status or owner)",
            edits=_drop_conjunct,
        ),
        Operator(
            "negate-comparison",
            "sql",
            "negate one comparison (=, <, IN, IS NULL, IS DISTINCT FROM)",
            "data on both sides of the comparison's boundary",
            edits=_negate_comparison,
        ),
        Operator(
            "swap-status-literal",
            "sql",
            "replace a status literal by another status of the RFC",
            "a check of the state machine: the status each job reaches (no stuck or wrongly final job)",
            edits=_swap_status,
        ),
        Operator(
            "left-join-to-inner",
            "sql",
            "LEFT JOIN becomes JOIN",
            "rows with no match on the joined side (a job with no run yet, an entity with no job)",
            edits=_left_to_inner,
        ),
        Operator(
            "drop-limit",
            "sql",
            "drop a LIMIT",
            "more rows ready than one call may take, and a bound on what one call takes (batch, fairness)",
            edits=_drop_limit,
        ),
        Operator(
            "drop-set-column",
            "sql",
            "drop one column of an UPDATE's (or ON CONFLICT DO UPDATE's) SET",
            "a check reading the column no longer written",
            edits=_drop_set_column,
        ),
        Operator(
            "drop-notify",
            "statement",
            "drop a statement calling pg_notify",
            "wake-up latency with polling slowed down: a gap or throughput bound at a long poll interval",
            drops=_drops_notify,
        ),
        Operator(
            "drop-perform",
            "statement",
            "drop a PERFORM statement",
            "a check on the called function's effect",
            drops=_drops_perform,
        ),
        Operator(
            "drop-raise",
            "statement",
            "drop a RAISE EXCEPTION (a guard)",
            "input the guard must reject (bad arguments, a legacy insert in strict mode) and a check that "
            "it is rejected",
            drops=_drops_raise,
        ),
        Operator(
            "drop-statement",
            "statement",
            "drop one statement of a function body",
            "a check on that statement's effect (what it writes or decides)",
            drops=_drops_any,
        ),
        Operator(
            "negate-condition",
            "statement",
            "IF/ELSIF/WHILE/EXIT WHEN condition c becomes NOT (c)",
            "both outcomes of the condition exercised",
        ),
        Operator(
            "drop-security-definer",
            "header",
            "drop SECURITY DEFINER: the function runs as its caller",
            "callers without the owner's privileges: workers under their own least-privilege roles",
        ),
        Operator(
            "trigger-drop-event",
            "trigger",
            "a trigger stops firing on one of its events",
            "the dropped event happening (a row inserted, updated or deleted that way)",
            edits=_trigger_drop_event,
        ),
        Operator(
            "trigger-drop-when",
            "trigger",
            "drop a trigger's WHEN clause",
            "rows the WHEN clause let through, and the effect of the trigger on the others",
            edits=_trigger_drop_when,
        ),
    )
}


def choose(names: str | None) -> list[Operator]:
    """The operators named in a comma-separated list (all of them for None); ValueError names an unknown one."""
    if not names:
        return list(OPERATORS.values())
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown operator(s) {', '.join(unknown)}; known: {', '.join(OPERATORS)}")
    return [OPERATORS[n] for n in OPERATORS if n in chosen]
