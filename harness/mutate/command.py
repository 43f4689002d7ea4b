"""`harness mutate`: the command's arguments checked, the session run, the report printed and written, and
the exit code (`--min-kill-rate` makes it a CI gate).

Exit codes: 0 done (and the kill rate at least `--min-kill-rate`); 1 the kill rate is below it; 2 no mutant
was killed or survived, so the rate is unknown (with `--min-kill-rate`); 3 bad arguments; 4 the harness failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.mutate.operators import choose
from harness.mutate.report import as_dict, render_html, render_text
from harness.mutate.session import MutateOptions, run_mutate


def _names(text: str | None) -> set[str] | None:
    return {n.strip() for n in text.split(",") if n.strip()} if text else None


def options(args: argparse.Namespace, sut: Any, folders: list[Path]) -> MutateOptions:
    """The session's options from the command line; BadInput (exit 3) names a bad one."""
    if args.budget is not None and args.budget <= 0:
        raise BadInput(f"--budget must be a positive number of minutes, got {args.budget:g}")
    if args.min_kill_rate is not None and not 0 <= args.min_kill_rate <= 1:
        raise BadInput(
            f"--min-kill-rate is a fraction between 0 and 1 (0.8 for 80%), got {args.min_kill_rate:g}"
        )
    if args.max_mutants is not None and args.max_mutants < 1:
        raise BadInput(f"--max-mutants must be at least 1, got {args.max_mutants}")
    try:
        operators = choose(args.operators)
    except ValueError as exc:
        raise BadInput(f"--operators: {exc}") from exc
    if sut.path is None:
        raise BadInput("harness mutate copies the SUT file: pass --sut FILE")
    return MutateOptions(
        sut=sut,
        targets=list(args.suite),
        folders=folders,
        operators=operators,
        functions=_names(args.functions),
        budget_min=args.budget,
        seed=args.seed,
        postgres=args.postgres,
        workdir=args.report_dir.resolve() if args.report_dir else None,
        coverage=not args.no_coverage,
        run_unreached=args.run_unreached,
        all_scenarios=args.all_scenarios,
        max_mutants=args.max_mutants,
        list_only=args.list,
    )


def main(args: argparse.Namespace, sut: Any, folders: list[Path]) -> int:
    chosen = options(args, sut, folders)
    result = run_mutate(chosen, progress=lambda line: print(line, file=sys.stderr, flush=True))
    if chosen.list_only:
        for m in result.order:
            print(f"{m.id}  {m.operator:<22} {m.target} line {m.line}: {m.change}")
        return 0
    print(json.dumps(as_dict(result), indent=1) if args.json else render_text(result))
    if args.html:
        args.html.write_text(render_html(result), encoding="utf-8")
    if args.min_kill_rate is None:
        return 0
    if result.kill_rate is None:
        return 2
    return 0 if result.kill_rate >= args.min_kill_rate else 1
