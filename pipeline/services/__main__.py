"""Command line: ``python -m pipeline.services tsa|ledger [options]``, run one service until SIGTERM.

The harness starts each service this way with ``--port 0`` and reads the single ``listening on`` line from
stdout to learn the port.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path
from typing import NoReturn

from pipeline.services.base import Journal, Knobs, Service, knob_problem, serve, updated_knobs
from pipeline.services.ledger import Ledger
from pipeline.services.tsa import TimestampAuthority
from pipeline.supervised import BadSupervisor, supervisor_pid

PROG = "python -m pipeline.services"
HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
EPILOG = """\
Prints one line, "listening on http://HOST:PORT", then serves until SIGTERM or SIGINT.
Fault settings can be changed at run time with POST /_admin/config (see pipeline/services/README.md).

exit codes:
  0  stopped by SIGTERM or SIGINT
  3  bad arguments (one line on stderr says which and what is allowed)
  4  the service could not start (e.g. the port is taken)
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 3 (the project's "bad input")."""

    def error(self, message: str) -> NoReturn:
        fail(message, 3)


def fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run one external service of the reference pipeline on a local port.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", choices=("tsa", "ledger"), help="which service to run")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, metavar="N", default=0, help="port to bind; 0 picks a free one (default: 0)"
    )
    parser.add_argument(
        "--latency-ms", type=float, metavar="N", default=0.0, help="added to every API request"
    )
    parser.add_argument(
        "--jitter-ms", type=float, metavar="N", default=0.0, help="plus uniform random 0..N ms"
    )
    parser.add_argument(
        "--failure-rate", type=float, metavar="F", default=0.0, help="probability 0..1 of a 503"
    )
    parser.add_argument(
        "--failure-point",
        default="before",
        metavar="{before,after}",
        help="before: fail without applying; after: apply, lose the answer",
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", default=None, help="seed of the fault RNG (default: random)"
    )
    parser.add_argument(
        "--key-hex", default=None, metavar="HEX", help="HMAC signing key, at least 16 bytes as hex"
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        metavar="FILE",
        help="remember what was issued in FILE (JSON lines), so a restarted service goes on where it stopped",
    )
    return parser


def parse(argv: list[str] | None) -> tuple[Service, str, int, Knobs, int | None]:
    """Parse and validate everything before starting anything; any problem exits 3 with one line."""
    args = build_parser().parse_args(argv)
    settings = {
        "latency_ms": args.latency_ms,
        "jitter_ms": args.jitter_ms,
        "failure_rate": args.failure_rate,
        "failure_point": args.failure_point,
        "seed": args.seed if args.seed is not None else random.randrange(2**31),
    }
    problems = [
        f"--{name.replace('_', '-')}{problem.removeprefix(name)}"
        for name, value in settings.items()
        if (problem := knob_problem(name, value))
    ]
    if not 0 <= args.port <= 65535:
        problems.append(f"--port: {args.port} is not allowed; expected 0 (a free port) to 65535")
    key = bytes.fromhex(args.key_hex) if args.key_hex and HEX.fullmatch(args.key_hex) else b""
    if args.key_hex is not None and len(key) < 16:
        problems.append(
            f"--key-hex: {args.key_hex!r} is not allowed; expected at least 16 bytes as hex (32+ digits)"
        )
    supervisor = None
    try:
        supervisor = supervisor_pid()
    except BadSupervisor as exc:
        problems.append(str(exc))
    if args.journal is not None and not args.journal.parent.is_dir():
        problems.append(
            f"--journal: {args.journal.parent} is not a folder; give a file in an existing folder"
        )
    if problems:
        fail("; ".join(problems), 3)
    knobs = updated_knobs(Knobs(), settings)
    kind = TimestampAuthority if args.service == "tsa" else Ledger
    journal = Journal(args.journal)
    service: Service = kind(key=key, journal=journal) if key else kind(journal=journal)
    return service, args.host, args.port, knobs, supervisor


def main(argv: list[str] | None = None) -> int:
    service, host, port, knobs, supervisor = parse(argv)
    try:
        return serve(service, host, port, knobs, supervisor=supervisor)
    except OSError as exc:
        fail(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port, or 0 for any",
            4,
        )


if __name__ == "__main__":
    sys.exit(main())
