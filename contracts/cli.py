"""`contracts check`: the command-line face of contracts/.

`register(subparsers)` adds the command to any argparse parser (the harness CLI, or `python -m contracts`);
`run(args)` returns the exit code. Imports of the checkers are deferred, so building the parser costs nothing.
contracts/ imports nothing of the harness: a caller that can build a disposable database (the harness, for
`--postgres embedded`) hands in a factory for it.

Exit codes: 0 every contract held, 1 a contract was violated (a finding of level error not allowlisted),
3 bad input (a DSN that does not connect, a missing source path, a malformed config or allowlist),
4 the checker itself failed.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from contracts.result import CheckResult

# (spec, parsed arguments) -> a context manager yielding the DSN of a disposable database for `spec`.
DatabaseFactory = Callable[[str, argparse.Namespace], AbstractContextManager[str]]

Parser = TypeVar(
    "Parser", bound=argparse.ArgumentParser
)  # the caller's parser class, kept for its subcommands

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 3, 4
FORMATS = ("text", "json", "junit", "sarif")


def register(
    subparsers: argparse._SubParsersAction[Parser],
    databases: DatabaseFactory | None = None,
) -> Parser:
    """Add `contracts check` to a CLI's subcommands; returns its parser (a caller may add options).
    `databases` builds a disposable database for a `--postgres` spec that is not a DSN (e.g. `embedded`)."""
    contracts = subparsers.add_parser(
        "contracts",
        help="live-schema and static anti-drift contracts",
        description="Anti-drift contracts of the RFC, checked against a live database and/or a source tree.",
    )
    inner = contracts.add_subparsers(dest="contracts_command", required=True)
    check = inner.add_parser(
        "check",
        help="check the contracts; text, JSON, JUnit or SARIF",
        description="Check the live-schema contracts (PGC0xx, with --postgres) and the static contracts "
        "(PGC1xx, with --source). Rules: contracts/README.md.",
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--postgres",
        metavar="DSN|embedded" if databases else "DSN",
        help="database to check"
        + ("; `embedded` builds the pipeline's schema on a private server" if databases else ""),
    )
    check.add_argument(
        "--source", type=Path, metavar="PATH", help="source tree (or file) to check statically"
    )
    check.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    check.add_argument("--output", type=Path, metavar="FILE", help="write the report here instead of stdout")
    check.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="contracts config (default: <source>/contracts.toml, else the reference's)",
    )
    check.add_argument("--verbose", action="store_true", help="text format: list allowlisted findings too")
    check.set_defaults(databases=databases)
    return check


def run(args: argparse.Namespace) -> int:
    """`contracts check`: returns the exit code; the report goes to --output or stdout."""
    from contracts.errors import ContractError

    try:
        return _check(args)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:  # the checker's own bug: say so, with the traceback, and exit 4
        traceback.print_exc()
        print("error: the contract checker failed (exit 4); this is a bug in contracts/", file=sys.stderr)
        return EXIT_INTERNAL


def _check(args: argparse.Namespace) -> int:
    from contracts.check import run_checks
    from contracts.config import load_config
    from contracts.errors import ContractInputError

    if args.postgres is None and args.source is None:
        raise ContractInputError("nothing to check: give --postgres DSN, --source PATH, or both")
    if args.source is not None and not args.source.exists():
        raise ContractInputError(f"source path {args.source} does not exist")
    config = load_config(args.config, args.source if args.source and args.source.is_dir() else None)
    if args.postgres in ("embedded", "docker"):
        factory: DatabaseFactory | None = getattr(args, "databases", None)
        if factory is None:
            raise ContractInputError(
                f"--postgres {args.postgres} needs the harness (`harness contracts check`); pass a DSN instead"
            )
        with factory(args.postgres, args) as dsn:
            result = run_checks(config, args.source, dsn)
    else:
        result = run_checks(config, args.source, args.postgres)
    text = _render(result, args.format, getattr(args, "verbose", False))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(result.summary(), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _render(result: CheckResult, fmt: str, verbose: bool) -> str:
    from contracts import render
    from contracts.sarif import sarif

    if fmt == "json":
        return render.as_json(result)
    if fmt == "junit":
        return render.junit(result)
    if fmt == "sarif":
        return sarif(result)
    return render.text(result, verbose)


HANDLERS = {"contracts": run}
