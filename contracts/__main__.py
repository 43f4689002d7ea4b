"""`python -m contracts check ...`: the contracts alone, for a PR gate that wants nothing else."""

from __future__ import annotations

import argparse
import sys

from contracts.cli import HANDLERS, register


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:  # `python -m contracts check` reads better than `... contracts check`
        argv = ["contracts", *argv]
    parser = argparse.ArgumentParser(prog="python -m contracts")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return HANDLERS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
