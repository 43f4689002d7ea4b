"""`harness gate --phase N`: the command-line face of the phase gate (`phase_gate.py`).

Exit codes: 0 every criterion holds (Go), 1 a criterion is not met (No-Go), 3 bad input, 4 the gate itself
failed.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Any

EXIT_INTERNAL = 4


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `gate` to the harness's subcommands."""
    gate = subparsers.add_parser(
        "gate",
        help="check a phase's acceptance criteria; write evidence to reports/phase-gates/",
        description="Check the exit criteria of an RFC phase and write the evidence (Markdown and JSON).",
        epilog="Exit codes: 0 every criterion holds (Go), 1 a criterion is not met (No-Go), 3 bad input, "
        "4 the gate itself failed.",
    )
    gate.add_argument("--phase", type=int, required=True, choices=(1, 2, 3, 4))
    gate.add_argument(
        "--postgres",
        metavar="DSN|embedded",
        default="embedded",
        help="embedded (default): the reference system on a private server; a DSN: a running "
        "pipeline whose workers are up",
    )
    gate.add_argument(
        "--source", type=Path, default=Path("."), metavar="PATH", help="source tree (default: .)"
    )
    gate.add_argument(
        "--runs",
        type=int,
        default=3,
        metavar="K",
        help="consecutive real protect -> tsa -> anchor flows (default 3; the RFC canary asks 5)",
    )
    gate.add_argument("--config", type=Path, metavar="FILE", help="contracts config")
    gate.add_argument("--sut", type=Path, metavar="FILE", help="SUT file (default: the reference pipeline)")
    gate.add_argument("--out-dir", type=Path, default=Path("reports/phase-gates"), metavar="DIR")
    gate.add_argument(
        "--window-days",
        type=float,
        default=7.0,
        help="phase 2: the window over which compat warnings must be zero (default 7)",
    )
    gate.add_argument("--flow-timeout", type=float, default=60.0, help="seconds each canary flow may take")


def run_gate(args: argparse.Namespace) -> int:
    """`gate --phase N`: returns the exit code; the evidence goes to --out-dir."""
    from contracts.errors import ContractError

    try:
        from harness.gate.phase_gate import gate_command

        return gate_command(args)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        print("error: the phase gate failed (exit 4); this is a bug in harness/gate/", file=sys.stderr)
        return EXIT_INTERNAL
