"""`python -m pipeline worker ROLE --dsn DSN` and `python -m pipeline service tsa|ledger`.

Exit codes: 0 stopped cleanly, 3 bad input (unknown role, bad DSN, bad failpoint), 4 internal failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, NoReturn

import psycopg

from pipeline.errors import UnknownRole
from pipeline.failpoint import BadFailpoint, parse_spec
from pipeline.supervised import BadSupervisor, supervisor_pid

if TYPE_CHECKING:
    from pipeline.worker.base import Worker, WorkerConfig
    from pipeline.worker.monitor import Monitor

ROLES = ("fase1-executor", "orchestrator", "scheduler", "monitor")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: {message} (see --help)", 3)


def _fail(message: str, code: int) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    worker = sub.add_parser("worker", help="run one worker process until SIGTERM")
    worker.add_argument("role", help=f"one of: {', '.join(ROLES)}")
    worker.add_argument(
        "--dsn", default=os.environ.get("PIPELINE_DSN"), help="Postgres DSN (or PIPELINE_DSN)"
    )
    worker.add_argument("--batch", type=int, default=10, help="jobs claimed per round (default 10)")
    worker.add_argument(
        "--poll-interval", type=float, default=1.0, help="polling fallback, seconds (default 1)"
    )
    worker.add_argument("--lease-seconds", type=float, default=None, help="lease length (default: setting)")
    worker.add_argument(
        "--writers",
        type=int,
        default=None,
        help="fase1-executor and orchestrator: batches written in the background at once, each on a connection "
        "of its own (default 2; 0 writes in the worker's own loop, with two connections in all)",
    )
    worker.add_argument("--db-role", default=None, help="database role to SET ROLE to ('' keeps the user)")
    worker.add_argument("--tsa-url", default=os.environ.get("PIPELINE_TSA_URL", "http://127.0.0.1:8701"))
    worker.add_argument(
        "--ledger-url", default=os.environ.get("PIPELINE_LEDGER_URL", "http://127.0.0.1:8702")
    )
    worker.add_argument(
        "--service-timeout", type=float, default=5.0, help="external service timeout, seconds"
    )
    worker.add_argument("--worker-id", default=None)
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="monitor only: serve Prometheus /metrics on 127.0.0.1:PORT (0 = a free port, printed)",
    )
    worker.add_argument("--log-level", default=os.environ.get("PIPELINE_LOG_LEVEL", "WARNING"))
    service = sub.add_parser("service", help="run an external service (tsa or ledger)", add_help=False)
    service.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["service"]:
        from pipeline.services.__main__ import main as service_main

        return service_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        if args.role not in ROLES:
            raise UnknownRole(f"unknown worker role {args.role!r}; expected one of: {', '.join(ROLES)}")
        parse_spec(os.environ.get("PIPELINE_FAILPOINTS", ""))
        supervisor = supervisor_pid()
    except (UnknownRole, BadFailpoint, BadSupervisor) as exc:
        _fail(str(exc), 3)
    if not args.dsn:
        _fail("no database: pass --dsn DSN or set PIPELINE_DSN", 3)
    if args.batch < 1:
        _fail(f"--batch must be at least 1, got {args.batch}", 3)
    if args.writers is not None and args.writers < 0:
        _fail(f"--writers must be 0 or more, got {args.writers}", 3)
    try:
        psycopg.connect(args.dsn, connect_timeout=10).close()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _fail(f"cannot connect to the database ({first}); check --dsn", 3)
    return _build(args, supervisor).run()


def _build(args: argparse.Namespace, supervisor: int | None) -> Worker:
    from pipeline.worker.base import WorkerConfig

    config = WorkerConfig(
        dsn=args.dsn,
        batch=args.batch,
        poll_interval_s=args.poll_interval,
        lease_seconds=args.lease_seconds,
        db_role=args.db_role,
        worker_id=args.worker_id,
        supervisor_pid=supervisor,
        writers=args.writers,
    )
    if args.role == "fase1-executor":
        from pipeline.worker.decision import DecisionWorker

        return DecisionWorker(config)
    if args.role == "orchestrator":
        from pipeline.handlers import Handlers
        from pipeline.services.client import ServiceClient
        from pipeline.worker.orchestrator import Orchestrator

        handlers = Handlers(
            ServiceClient(args.tsa_url, args.service_timeout),
            ServiceClient(args.ledger_url, args.service_timeout),
        )
        return Orchestrator(config, handlers.table())
    if args.role == "monitor":
        return _monitor(config, args.metrics_port)
    from pipeline.worker.scheduler import Scheduler

    return Scheduler(config)


def _monitor(config: WorkerConfig, metrics_port: int | None) -> Monitor:
    """The monitor, with its /metrics served first (the URL is the first line on stdout)."""
    from pipeline.observability.metrics import SnapshotCollector, serve
    from pipeline.worker.monitor import Monitor

    collector = SnapshotCollector()
    if metrics_port is not None:
        try:
            port = serve(collector, metrics_port)
        except OSError as exc:
            _fail(f"cannot serve /metrics on 127.0.0.1:{metrics_port}: {exc.strerror}", 3)
        print(f"listening on http://127.0.0.1:{port}/metrics", flush=True)
    return Monitor(config, collector)


if __name__ == "__main__":
    sys.exit(main())
