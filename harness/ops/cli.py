"""The observability commands of the `harness` CLI: `dashboard`, `alerts export`, `drill`, and what `harness up`
adds to the running system (the alert profile, the monitor with its /metrics, the dashboard).

Kept beside `cli.py` so that file only wires commands; exit codes are the CLI's (0 ok, 1 an expectation
failed, 3 bad input, 4 the harness failed).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import BadInput
from harness.sut.config import Sut
from harness.sut.system import RunningSystem

EXIT_OK, EXIT_FAILED = 0, 1


def _postgres(parser: argparse.ArgumentParser, default: str | None, text: str) -> None:
    parser.add_argument("--postgres", default=default, metavar="embedded|DSN", help=text)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    dashboard = sub.add_parser(
        "dashboard", help="serve the web dashboard of a pipeline database on 127.0.0.1"
    )
    _postgres(dashboard, None, "the pipeline database's DSN (harness up prints it)")
    dashboard.add_argument(
        "--port", type=int, default=8780, help="port on 127.0.0.1 (default 8780; 0 = free)"
    )

    alerts = sub.add_parser("alerts", help="the alert rules as a Prometheus rule file")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    export = alerts_sub.add_parser("export", help="write the alert rules as a Prometheus rule file")
    _postgres(export, "embedded", "read the rules from a fresh embedded database (default) or a DSN")
    export.add_argument(
        "--profile",
        default=None,
        help="production or fast (default: production on embedded, the database's own on a DSN)",
    )
    export.add_argument("-o", "--output", type=Path, help="rule file to write (default: stdout)")
    export.add_argument(
        "--tests", type=Path, help="also write promtool unit tests for the rules to this file"
    )

    obs = sub.add_parser(
        "obs", help="the harness's observability pack (event_to_job_gap KPI and RFC alerts) on any pipeline"
    )
    obs_sub = obs.add_subparsers(dest="obs_command", required=True)
    install = obs_sub.add_parser("install", help="install or refresh the pack in schema harness_obs")
    _postgres(install, None, "the pipeline database's DSN")
    install.add_argument(
        "--sut", type=Path, help="SUT file, where the pipeline's tables differ from the RFC's"
    )
    install.add_argument("--profile", default="production", choices=("production", "fast"))
    evaluate = obs_sub.add_parser("evaluate", help="evaluate the pack's alerts (once, or --every S seconds)")
    _postgres(evaluate, None, "the pipeline database's DSN")
    evaluate.add_argument("--every", type=float, help="keep evaluating every S seconds until Ctrl-C")
    status = obs_sub.add_parser("status", help="the pack's alerts now, and the event_to_job_gap KPI")
    _postgres(status, None, "the pipeline database's DSN")

    drill = sub.add_parser(
        "drill", help="incident drill: plant a runbook's fault, detect it, walk the runbook"
    )
    drill.add_argument("runbook", help="not-enqueued, enqueued-not-executed or executed-no-event")
    drill.add_argument("--auto", action="store_true", help="run every step unattended (CI)")
    drill.add_argument("--report-dir", type=Path, default=Path("reports/drills"))
    drill.add_argument("--sut", type=Path, help="SUT file of the pipeline to drill (default: the reference)")
    _postgres(drill, "embedded", "where the fresh reference system's database lives (default: embedded)")


def cmd_dashboard(args: argparse.Namespace) -> int:
    from harness.ops.dashboard import open_dashboard

    if not args.postgres or args.postgres in ("embedded", "docker"):
        raise BadInput(
            "harness dashboard reads an existing database: pass --postgres DSN (harness up prints it)"
        )
    try:
        server = open_dashboard(args.postgres, args.port)
    except OSError as exc:
        raise BadInput(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"dashboard listening on {server.url} (read-only, as pipeline_reader); Ctrl-C stops it", flush=True)
    stop.wait()
    server.stop()
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    from harness.ops.alerts import dump, read_rules, rule_file, unit_tests

    with _database(args.postgres) as (dsn, fresh), psycopg.connect(dsn, autocommit=True) as conn:
        rules = read_rules(conn, args.profile or ("production" if fresh else None))
    header = (
        f"# Prometheus rules of the pipeline (profile {rules.profile}), written by `harness alerts export`\n"
        "# from alert_rules_current; the metrics are the monitor's /metrics.\n"
    )
    text = dump(rule_file(rules), header)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {len(rules.rules)} rules to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.tests:
        name = args.output.name if args.output else "rules.yml"
        args.tests.parent.mkdir(parents=True, exist_ok=True)
        args.tests.write_text(
            dump(unit_tests(rules, name), "# promtool test rules (harness alerts export)\n"), encoding="utf-8"
        )
    return EXIT_OK


@contextlib.contextmanager
def _database(postgres: str) -> Iterator[tuple[str, bool]]:
    """(dsn, fresh): a fresh migrated embedded database, or the DSN given."""
    if postgres not in ("embedded", "docker"):
        yield postgres, False
        return
    from harness.provision import open_provider
    from harness.provision.migrations import MigrationPlan
    from harness.sut.config import reference_sut

    with open_provider(postgres, ready_clones=0) as pg:
        yield pg.new_database(MigrationPlan(reference_sut().migrations)), True


def cmd_drill(args: argparse.Namespace) -> int:
    from harness.ops.drill import run_drill, spec_for
    from harness.sut.config import load_sut

    spec_for(args.runbook)  # an unknown runbook is bad input before anything starts
    sut = load_sut(args.sut) if args.sut else None
    result, _paths = run_drill(
        args.runbook, args.postgres, auto=args.auto, report_dir=args.report_dir, sut=sut
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_obs(args: argparse.Namespace) -> int:
    """`harness obs install|evaluate|status --postgres DSN`."""
    from harness.observability import pack
    from harness.sut.adapter import SutSql
    from harness.sut.config import load_sut

    if not args.postgres or args.postgres in ("embedded", "docker"):
        raise BadInput("harness obs works on an existing database: pass --postgres DSN")
    try:
        conn = psycopg.connect(args.postgres, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise BadInput(f"cannot connect to --postgres: {str(exc).strip().splitlines()[0]}") from exc
    with conn:
        if args.obs_command == "install":
            sql = SutSql.discovered(conn, load_sut(args.sut) if args.sut else None)
            pack.install(args.postgres, sql, profile=args.profile)
            print(f"installed harness_obs ({args.profile} profile): rules {', '.join(pack.pack_rules(sql))}")
            print(
                "evaluate it every few seconds: harness obs evaluate --every 15, or SELECT harness_obs.evaluate()"
            )
            return EXIT_OK
        if not pack.installed(conn):
            raise BadInput("the pack is not installed in this database: run harness obs install first")
        if args.obs_command == "evaluate":
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            while True:
                states = pack.evaluate(conn)
                firing = [rule for rule, state, _ in states if state == "firing"]
                print(f"evaluated {len(states)} rules; firing: {', '.join(firing) or 'none'}", flush=True)
                if args.every is None or stop.wait(args.every):
                    return EXIT_OK
        for row in pack.status(conn):
            print(
                f"{row['rule']:<22} {row['state']:<9} value {row['value']} (threshold {row['threshold']})  "
                f"{row['summary']}"
            )
        return EXIT_OK


HANDLERS = {"dashboard": cmd_dashboard, "alerts": cmd_alerts, "drill": cmd_drill, "obs": cmd_obs}


def add_up_arguments(up: argparse.ArgumentParser) -> None:
    up.add_argument(
        "--alert-profile",
        default="fast",
        choices=("fast", "production"),
        help="fast (default): apply the SUT file's alerts.profile, so alerts fire in seconds; production: leave "
        "the pipeline's own thresholds",
    )
    up.add_argument("--dashboard-port", type=int, default=8780, help="dashboard port on 127.0.0.1 (0 = free)")


@contextlib.contextmanager
def up_extras(system: RunningSystem, sut: Sut, args: argparse.Namespace) -> Iterator[list[str]]:
    """Apply the alert profile, start the monitor (with /metrics) and the dashboard; lines to print."""
    lines: list[str] = []
    server = None
    statement = sut.alerts.profile
    if args.alert_profile == "production":
        lines.append("alerts    the pipeline's own thresholds (production profile)")
    elif statement is None:
        lines.append("alerts    the pipeline's own thresholds (its SUT file gives no alerts.profile)")
    else:
        try:
            with psycopg.connect(system.dsn, autocommit=True) as conn:
                conn.execute(statement)
            lines.append(f"alerts    fast profile: {statement}")
        except psycopg.Error as exc:
            lines.append(
                f"alerts    alerts.profile failed, thresholds unchanged: {str(exc).strip().splitlines()[0]}"
            )
    if "monitor" in sut.workers and not system.workers("monitor"):
        managed = system.supervisor.start(
            "monitor-0",
            sut.worker_command("monitor", dsn=system.dsn, python=sys.executable),
            env=sut.env,
            wait_url_s=15,
        )
        lines.append(f"metrics   {managed.url}")
    try:
        from harness.ops.dashboard import open_dashboard

        try:
            server = open_dashboard(system.dsn, args.dashboard_port).start()
        except OSError:  # the port is taken (another `harness up`?): any free port will do
            server = open_dashboard(system.dsn, 0).start()
        lines.append(f"dashboard {server.url}")
    except (BadInput, OSError) as exc:
        lines.append(f"dashboard not started: {exc}")
    try:
        yield lines
    finally:
        if server is not None:
            server.stop()
