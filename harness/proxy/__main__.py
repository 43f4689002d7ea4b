"""`python -m harness.proxy`: run the Toxiproxy-compatible server until Ctrl-C or SIGTERM.

`main(argv)` returns the exit code, so a command-line front end (`harness proxy`) can reuse it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from harness.proxy.errors import ProxyError
from harness.proxy.server import VERSION, ProxyServer

EXIT_OK, EXIT_BAD_INPUT, EXIT_HARNESS_FAILED = 0, 3, 4

EPILOG = """\
exit codes:
  0  stopped by Ctrl-C or SIGTERM
  3  bad arguments
  4  the server could not start (for example, the port is taken)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad arguments exit 3, the project's code for bad input (argparse alone would exit 2)."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number from 0 to 65535 (0 picks a free port)"
        )
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m harness.proxy",
        description="Run the built-in Toxiproxy-compatible proxy server (Toxiproxy HTTP API v2).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the HTTP API (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8474, help="port of the HTTP API (default: 8474, Toxiproxy's)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection and API request")
    parser.add_argument("--version", action="version", version=VERSION)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (`cmd &`)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with ProxyServer(args.host, args.port) as server:
            print(f"toxiproxy-compatible server on {server.api_url} (Ctrl-C to stop)", flush=True)
            while not stop.wait(0.5):  # wake up now and then so Ctrl-C is seen promptly
                pass
    except ProxyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_FAILED
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
