"""The `harness` command line.

Exit codes (every command):
  0  all expectations held
  1  an expectation failed (a flow not completed, a trace incomplete, a check invalid)
  2  unknown: a check could not decide
  3  bad input or arguments (a bad DSN, an unknown entity, a missing binary)
  4  the harness itself failed
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from contracts import cli as contracts_cli
from harness.errors import BadInput, HarnessError
from harness.gate import cli as gate_cli
from harness.ops import cli as observability_cli

if TYPE_CHECKING:
    from harness.sut.config import Sut

EXIT_OK, EXIT_FAILED, EXIT_UNKNOWN, EXIT_BAD_INPUT, EXIT_HARNESS = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _postgres_arg(parser: argparse.ArgumentParser, default: str | None = "embedded") -> None:
    parser.add_argument(
        "--postgres",
        default=default,
        metavar="embedded|docker|DSN",
        help="where Postgres comes from (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Chaos and contract harness for Postgres event pipelines.",
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    e2e = sub.add_parser("e2e", help="run N real protect -> tsa -> anchor flows and verify each trace")
    e2e.add_argument("--flows", type=int, default=20)
    e2e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e2e.add_argument("--timeout", type=float, default=300, help="seconds to wait for the flows (default 300)")
    e2e.add_argument("--decision-workers", type=int, default=1)
    e2e.add_argument("--orchestrators", type=int, default=1)
    e2e.add_argument("--batch", type=int, default=25)
    e2e.add_argument("--sut", type=Path, help="SUT config file (default: the reference pipeline)")
    _postgres_arg(e2e)

    load = sub.add_parser(
        "load", help="the pipeline under a Locust load: requests, flows, event_to_job_gap; judged after drain"
    )
    load.add_argument("--users", type=int, default=10, help="concurrent Locust users (default 10)")
    load.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    load.add_argument("--duration", type=float, default=30, help="seconds of load (default 30)")
    load.add_argument(
        "--rate-per-user",
        type=float,
        default=5,
        help="flows/s each user requests; 0: as fast as it can (default 5)",
    )
    load.add_argument("--processes", type=int, default=1, help="Locust processes on this machine (default 1)")
    load.add_argument(
        "--expect-workers",
        type=int,
        default=0,
        help="run Locust as a master and wait for N workers from elsewhere",
    )
    load.add_argument("--master-bind-host", default="127.0.0.1", help="where that master listens")
    load.add_argument("--master-bind-port", type=int, default=5557)
    load.add_argument("--gap-p99-ms", type=float, help="fail when event_to_job_gap p99 is above this")
    load.add_argument(
        "--drain-timeout", type=float, default=120, help="seconds to wait for the flows to close"
    )
    load.add_argument("--decision-workers", type=int, default=1)
    load.add_argument("--orchestrators", type=int, default=1)
    load.add_argument("--batch", type=int, default=25)
    load.add_argument("--html", type=Path, help="also write Locust's HTML report here")
    load.add_argument("--csv", type=Path, help="also write Locust's CSV statistics with this prefix")
    load.add_argument("--json", action="store_true", help="print the summary as JSON")
    load.add_argument("--sut", type=Path, help="SUT config file (default: the reference pipeline)")
    _postgres_arg(load)

    trace = sub.add_parser("trace", help="print event -> job -> run -> result for one entity")
    trace.add_argument("entity", help="the entity id (a uuid)")
    trace.add_argument("--json", action="store_true")
    trace.add_argument(
        "--sut", type=Path, help="SUT file (default: the pipeline's tables as the RFC names them)"
    )
    _postgres_arg(trace, default=None)

    up = sub.add_parser("up", help="start the reference system on an embedded Postgres until Ctrl-C")
    up.add_argument("--sut", type=Path)
    up.add_argument(
        "--log-dir", type=Path, help="where worker logs go (default: a temp folder, removed at exit)"
    )
    _postgres_arg(up)
    observability_cli.add_up_arguments(up)

    bench = sub.add_parser("bench", help="throughput and latency beside a raw-SQL baseline from the same run")
    bench.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    bench.add_argument("--jobs", type=int, default=3000)
    bench.add_argument("--flows", type=int, default=1000)
    bench.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds of the step and append figures; each is their median",
    )
    bench.add_argument(
        "--soak-minutes", type=float, help="instead: the canonical step for this long, in 30 s windows"
    )
    bench.add_argument(
        "--instructions",
        action="store_true",
        help="instead: instructions per job of the hot paths, counted by callgrind (needs valgrind)",
    )
    bench.add_argument(
        "--baseline-until", metavar="NNNN", help="with --instructions: also count the migrations up to NNNN"
    )
    bench.add_argument(
        "--max-regression",
        type=float,
        metavar="PCT",
        help="with --instructions and --baseline-until: exit 1 when a count exceeds its baseline by more",
    )
    bench.add_argument(
        "--sut", type=Path, help="with --instructions: SUT config file (default: the reference)"
    )
    bench.add_argument("--json", action="store_true")
    _postgres_arg(bench)

    run = sub.add_parser(
        "run", help="run scenarios (suite names or files); write JSON, JUnit and HTML reports"
    )
    run.add_argument(
        "targets", nargs="+", metavar="SUITE-or-FILE", help="smoke, nightly, gate, drill, or .yaml files"
    )
    run.add_argument("--report-dir", type=Path, help="run folder (default: reports/<run-id>)")
    run.add_argument("--seed", type=int, help="override every scenario's seed")
    run.add_argument("--repeat", type=int, default=1, help="run each scenario K times (flakiness check)")
    run.add_argument("--sut", type=Path, help="SUT file (default: the reference pipeline)")
    run.add_argument(
        "--fail-fast", action="store_true", help="stop at the first invalid scenario (same as --maxfail 1)"
    )
    run.add_argument("--maxfail", type=int, metavar="N", help="stop once N scenarios are invalid")
    run.add_argument(
        "--workers",
        action="append",
        default=[],
        metavar="ROLE=N",
        help="run N workers of ROLE in every scenario (e.g. orchestrator=2); repeatable",
    )
    _scenarios_arg(run)
    _postgres_arg(run)

    scenarios = sub.add_parser("scenarios", help="list suites and scenarios, or validate scenario files")
    scenarios_sub = scenarios.add_subparsers(dest="scenarios_command", required=True, parser_class=_Parser)
    listing = scenarios_sub.add_parser("list", help="every scenario with its suites and faults")
    listing.add_argument("--sut", type=Path, help="also list the scenario folders of this SUT file")
    _scenarios_arg(listing)

    check = sub.add_parser(
        "check",
        help="judge a stored run folder again with the current checkers (same files: same verdict, same bytes)",
    )
    check.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by harness run")
    check.add_argument("--scenario", help="judge only this scenario")
    check.add_argument(
        "--report-dir", type=Path, help="where the re-judged reports go (default: RUN_DIR/recheck)"
    )

    replay = sub.add_parser(
        "replay", help="run one scenario of a stored run again: the same seed, workload, faults and SUT file"
    )
    replay.add_argument(
        "folder", type=Path, metavar="RUN_DIR/SCENARIO", help="a scenario folder of a run folder"
    )
    replay.add_argument(
        "--sut", type=Path, help="another SUT file (default: the one the scenario ran against)"
    )
    replay.add_argument(
        "--report-dir", type=Path, help="run folder of the replay (default: reports/<run-id>)"
    )
    _postgres_arg(replay)

    init = sub.add_parser(
        "init",
        help="write a SUT file, a scenarios folder and CI files (GitHub Actions, GitLab CI) for your pipeline",
    )
    init.add_argument("folder", nargs="?", type=Path, default=Path("."), metavar="DIR", help="default: .")

    sut = sub.add_parser("sut", help="hold a pipeline against the SUT contract")
    sut_sub = sut.add_subparsers(dest="sut_command", required=True, parser_class=_Parser)
    sut_check = sut_sub.add_parser(
        "check",
        help="required objects, capabilities, and which scenarios can run (exit 3 when something is missing)",
    )
    sut_check.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="the SUT file (harness init writes one; default: the reference pipeline, as `harness run` uses it)",
    )
    sut_check.add_argument(
        "--suite", action="append", help="the suites whose scenarios to judge (default: nightly); repeatable"
    )
    sut_check.add_argument("--json", action="store_true", help="print the report as JSON")
    _scenarios_arg(sut_check)
    _postgres_arg(sut_check)
    validate = scenarios_sub.add_parser("validate", help="validate files; every problem reported at once")
    validate.add_argument("files", nargs="+", type=Path)

    mutate = sub.add_parser(
        "mutate", help="mutants of the SUT's SQL functions and triggers against a suite: its kill rate"
    )
    mutate.add_argument("--sut", type=Path, help="SUT file (default: the reference pipeline)")
    mutate.add_argument(
        "--suite", nargs="+", default=["nightly"], metavar="SUITE-or-FILE", help="default: nightly"
    )
    mutate.add_argument("--operators", help="comma-separated operator names (default: all)")
    mutate.add_argument("--functions", help="comma-separated function or trigger names (default: all)")
    mutate.add_argument("--budget", type=float, metavar="MINUTES", help="stop when spent; count the untried")
    mutate.add_argument("--seed", type=int, default=1, help="the order mutants are taken in (default 1)")
    mutate.add_argument("--max-mutants", type=int, metavar="N", help="take only the first N in that order")
    mutate.add_argument("--min-kill-rate", type=float, metavar="R", help="exit 1 below this rate (0-1)")
    mutate.add_argument("--json", action="store_true", help="print the report as JSON")
    mutate.add_argument("--html", type=Path, metavar="FILE", help="also write the report as HTML")
    mutate.add_argument("--report-dir", type=Path, help="keep each mutant's copy and run reports here")
    mutate.add_argument("--run-unreached", action="store_true", help="also run mutants no scenario reaches")
    mutate.add_argument("--all-scenarios", action="store_true", help="every scenario for every mutant")
    mutate.add_argument("--no-coverage", action="store_true", help="skip the coverage run")
    mutate.add_argument("--list", action="store_true", help="list the mutants in order; run nothing")
    _scenarios_arg(mutate)
    _postgres_arg(mutate)

    proxy = sub.add_parser("proxy", help="run the built-in Toxiproxy-compatible server", add_help=False)
    proxy.add_argument("rest", nargs=argparse.REMAINDER)
    contracts_check = contracts_cli.register(sub, databases=_contracts_database)
    contracts_check.add_argument(
        "--sut", type=Path, help="with --postgres embedded: SUT file whose schema to build"
    )
    gate_cli.register(sub)
    observability_cli.register(sub)
    return parser


@contextlib.contextmanager
def _contracts_database(spec: str, args: argparse.Namespace) -> Iterator[str]:
    """`harness contracts check --postgres embedded`: the SUT's schema (the reference by default) on a
    private server, for the live contracts."""
    from contracts.errors import ContractInputError
    from harness.provision import open_provider
    from harness.provision.migrations import MigrationPlan

    try:
        with (
            open_provider(spec, ready_clones=0) as provider,
            provider.database(MigrationPlan(_sut(getattr(args, "sut", None)).migrations)) as dsn,
        ):
            yield dsn
    except HarnessError as exc:
        raise ContractInputError(f"could not provision Postgres ({spec}): {exc}") from exc


def _scenarios_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenarios",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of the team's own scenario files, beside the built-in ones (repeatable)",
    )


def _folders(args: argparse.Namespace, sut: Any = None) -> list[Path]:
    """Where scenarios come from: the built-in folder, the SUT file's `scenarios`, then --scenarios."""
    from harness.scenario import SCENARIO_DIR

    extra = [*(sut.scenarios if sut is not None else ()), *args.scenarios]
    return list(dict.fromkeys([SCENARIO_DIR, *(p.resolve() for p in extra)]))


def _workers(pairs: list[str]) -> dict[str, int]:
    """`--workers ROLE=N` options as {role: count}, each checked."""
    from harness.sut.config import ROLES

    found = {}
    for pair in pairs:
        role, sep, count = pair.partition("=")
        if not sep or role not in ROLES or not count.isdigit() or not 0 <= int(count) <= 8:
            raise BadInput(
                f"--workers {pair!r}: expected ROLE=N with ROLE one of {', '.join(ROLES)} and N 0-8"
            )
        found[role] = int(count)
    return found


def _sut(path: Path | None) -> Sut:
    from harness.sut.config import load_sut, reference_sut

    return load_sut(path) if path else reference_sut()


def cmd_e2e(args: argparse.Namespace) -> int:
    from harness.e2e import run_e2e
    from harness.sut.system import SystemOptions

    if args.flows < 1:
        raise BadInput(f"--flows must be at least 1, got {args.flows}")
    options = SystemOptions(
        workers={"fase1-executor": args.decision_workers, "orchestrator": args.orchestrators, "scheduler": 1},
        batch=args.batch,
    )
    result = run_e2e(args.flows, args.postgres, args.timeout, _sut(args.sut), options)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        pg = result.postgres
        print(f"postgres: {pg.get('provider')} {pg.get('version')} ({pg.get('detail')})")
        print(
            f"flows completed: {result.flows_completed}/{result.flows_requested} "
            f"(failed {result.flows_failed}), traces complete: {result.traces_complete}"
        )
        print(
            f"throughput: {result.flows_per_s:.1f} flows/s; latency p50 {result.latency_ms.get('p50')} ms, "
            f"p99 {result.latency_ms.get('p99')} ms; wall {result.wall_s:.1f} s"
        )
        for problem in result.problems[:20]:
            print(f"  problem: {problem}")
        print("OK" if result.ok else "FAILED")
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_load(args: argparse.Namespace) -> int:
    from harness.load.driver import LoadOptions, render, run_load
    from harness.sut.system import SystemOptions

    options = LoadOptions(
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.duration,
        rate_per_user=args.rate_per_user,
        processes=args.processes,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_bind_port=args.master_bind_port,
        gap_p99_ms=args.gap_p99_ms,
        drain_timeout_s=args.drain_timeout,
        html=args.html,
        csv_prefix=args.csv,
    )
    system = SystemOptions(
        workers={"fase1-executor": args.decision_workers, "orchestrator": args.orchestrators, "scheduler": 1},
        batch=args.batch,
    )
    progress = None if args.json else lambda line: print(line, file=sys.stderr, flush=True)
    result = run_load(options, args.postgres, _sut(args.sut), system, progress=progress)
    print(json.dumps(result.as_dict(), indent=2) if args.json else render(result))
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_trace(args: argparse.Namespace) -> int:
    import uuid

    import psycopg

    from harness.checkers.trace import render
    from harness.sut.adapter import SutSql
    from harness.sut.config import load_sut
    from harness.sut.readback import read_trace

    if not args.postgres or args.postgres in ("embedded", "docker"):
        raise BadInput("harness trace reads an existing database: pass --postgres DSN (harness up prints it)")
    try:
        uuid.UUID(args.entity)
    except ValueError as exc:
        raise BadInput(
            f"entity {args.entity!r} is not a uuid; pass the id of a document_entities row"
        ) from exc
    try:
        conn = psycopg.connect(args.postgres, connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        raise BadInput(f"cannot connect to --postgres: {str(exc).strip().splitlines()[0]}") from exc
    with conn:
        sql = SutSql.discovered(conn, load_sut(args.sut) if args.sut else None)
        trace = read_trace(conn, args.entity, sql)
    print(json.dumps(trace.as_dict(), indent=2, default=str) if args.json else render(trace))
    return EXIT_OK if trace.complete else EXIT_FAILED


def cmd_up(args: argparse.Namespace) -> int:
    from harness.provision import open_provider
    from harness.provision.migrations import MigrationPlan
    from harness.sut.system import RunningSystem

    sut = _sut(args.sut)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with (
        open_provider(args.postgres, ready_clones=0) as pg,
        tempfile.TemporaryDirectory(prefix="harness-up-") as tmp,
    ):
        dsn = pg.new_database(MigrationPlan(sut.migrations))
        log_dir = args.log_dir or Path(tmp)
        with (
            RunningSystem(sut, dsn, log_dir) as system,
            observability_cli.up_extras(system, sut, args) as extras,
        ):
            info = pg.info()
            print(f"postgres  {info.provider} {info.version} on {info.host}:{info.port} ({info.detail})")
            print(f"DSN       {dsn}")
            for name, url in system.urls.items():
                print(f"service   {name:<16} {url}")
            for managed in system.workers():
                print(f"worker    {managed.name:<16} pid {managed.pid}  log {managed.log_path}")
            print(f"try       psql '{dsn}' -c \"SELECT request_protection(gen_random_uuid(), 'hello')\"")
            print(f"          harness trace ENTITY --postgres '{dsn}'")
            for line in extras:
                print(line)
            print("running; Ctrl-C stops everything and removes every file", flush=True)
            stop.wait()
        print("stopped; server, workers and temp files removed", flush=True)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.perf.bench import as_dict, render, run_bench, run_soak

    if args.instructions:
        return _bench_instructions(args)
    if args.baseline_until or args.max_regression is not None or args.sut:
        raise BadInput("--baseline-until, --max-regression and --sut go with --instructions")
    if args.soak_minutes is not None:
        if args.soak_minutes <= 0:
            raise BadInput(f"--soak-minutes must be positive, got {args.soak_minutes}")
        report = run_soak(args.postgres, args.soak_minutes)
    else:
        if args.rounds < 1:
            raise BadInput(f"--rounds must be at least 1, got {args.rounds}")
        report = run_bench(
            args.postgres, jobs=args.jobs, flows=args.flows, quick=args.quick, rounds=args.rounds
        )
    print(json.dumps(as_dict(report), indent=2) if args.json else render(report))
    return EXIT_FAILED if any(note.startswith("e2e: only") for note in report.notes) else EXIT_OK


def _bench_instructions(args: argparse.Namespace) -> int:
    from harness.perf import instructions

    if args.postgres != "embedded":
        raise BadInput("--instructions runs its own server under valgrind: leave --postgres at embedded")
    if args.max_regression is not None and (args.max_regression < 0 or not args.baseline_until):
        raise BadInput("--max-regression takes a percentage of 0 or more, and needs --baseline-until")
    report = instructions.run_instructions(
        _sut(args.sut),
        args.baseline_until,
        jobs=40 if args.quick else 100,
        max_regression_pct=args.max_regression,
    )
    print(json.dumps(report.as_dict(), indent=2) if args.json else instructions.render(report))
    return EXIT_FAILED if report.regressions() else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from harness.reports import summary_table, write_reports
    from harness.scenario import select
    from harness.session import new_run_id, run_session

    if args.repeat < 1:
        raise BadInput(f"--repeat must be at least 1, got {args.repeat}")
    if args.maxfail is not None and args.maxfail < 1:
        raise BadInput(f"--maxfail must be at least 1, got {args.maxfail}")
    sut = _sut(args.sut)
    workers = _workers(args.workers)
    scenarios = [
        dataclasses.replace(s, workers={**s.workers, **workers}) if workers else s
        for s in select(args.targets, _folders(args, sut))
    ]
    folder = args.report_dir or (Path("reports") / new_run_id())
    summary = run_session(
        scenarios,
        sut,
        args.postgres,
        folder,
        args.repeat,
        args.seed,
        progress=lambda line: print(line, flush=True),
        argv=sys.argv[1:],
        maxfail=1 if args.fail_fast else args.maxfail,
        after_each=lambda partial: write_reports(partial, folder),
    )
    write_reports(summary, folder)
    print(summary_table(summary))
    return _exit_for(summary)


def cmd_scenarios(args: argparse.Namespace) -> int:
    from harness.records import SUITES
    from harness.scenario import all_scenario_files, load_scenarios

    if args.scenarios_command == "validate":
        scenarios = load_scenarios(args.files)
        for scenario in scenarios:
            print(f"ok  {scenario.path}: {scenario.name}")
        return EXIT_OK
    scenarios = load_scenarios(all_scenario_files(_folders(args, _sut(args.sut) if args.sut else None)))
    if not scenarios:
        raise BadInput("no scenario files found; the harness's own are missing from this installation")
    width = max(len(s.name) for s in scenarios)
    for scenario in scenarios:
        faults = ", ".join(f.label for f in scenario.faults) or "(no fault)"
        print(f"{scenario.name:<{width}}  [{', '.join(scenario.suites)}]  {faults}")
    suites = dict.fromkeys((*SUITES, *(x for s in scenarios for x in s.suites)))
    for suite in suites:
        members = [s.name for s in scenarios if suite in s.suites]
        print(f"suite {suite}: {len(members)} scenario(s)")
    return EXIT_OK


def _exit_for(summary: Any) -> int:
    """The exit code of a run, a re-check or a replay. Not-applicable scenarios are counted and named, never
    failed; but a run where nothing applied proved nothing about the pipeline: unknown."""
    from harness.records import Verdict

    if summary.verdict == Verdict.INVALID:
        return EXIT_FAILED
    if any(result.error for result in summary.scenarios):
        return EXIT_HARNESS
    return EXIT_OK if summary.verdict == Verdict.VALID else EXIT_UNKNOWN


def cmd_check(args: argparse.Namespace) -> int:
    from harness.rejudge import rejudge, write_and_compare
    from harness.reports import summary_table

    if not args.run_dir.is_dir():
        raise BadInput(f"{args.run_dir} is not a folder; give a run folder written by harness run")
    summary = rejudge(args.run_dir, args.scenario)
    out = args.report_dir or (args.run_dir / "recheck")
    print(summary_table(summary, args.run_dir))
    if args.scenario is None:
        compared = write_and_compare(summary, args.run_dir, out)
        if compared.differing:
            print(
                f"reports differ from the originals: {', '.join(compared.differing)} (re-judged ones in {out})"
            )
        else:
            print(f"reports identical to the originals, byte for byte ({', '.join(compared.same)})")
    return _exit_for(summary)


def cmd_replay(args: argparse.Namespace) -> int:
    from harness.rejudge import replay_scenario
    from harness.reports import summary_table, write_reports
    from harness.session import new_run_id, run_session

    scenario, recorded_sut, original = replay_scenario(args.folder)
    if scenario.path is not None and not scenario.path.is_file():
        scenario = dataclasses.replace(scenario, path=None)
    sut_path = args.sut or recorded_sut
    sut = _sut(sut_path)
    folder = args.report_dir or (Path("reports") / new_run_id())
    summary = run_session(
        [scenario],
        sut,
        args.postgres,
        folder,
        progress=lambda line: print(line, flush=True),
        argv=sys.argv[1:],
    )
    write_reports(summary, folder)
    print(summary_table(summary, folder))
    (result,) = summary.scenarios
    print(f"{scenario.name}: original {original} ({args.folder}) | replay {result.verdict} ({result.folder})")
    return _exit_for(summary)


def cmd_init(args: argparse.Namespace) -> int:
    from harness.sut.scaffold import scaffold

    for written in scaffold(args.folder):
        print(f"{'wrote' if written.created else 'kept '} {written.path}")
    print(
        "next: fill in harness.toml (migrations, [entry], [workers]), then `harness sut check harness.toml` "
        "until it exits 0, then `harness run nightly --sut harness.toml`"
    )
    return EXIT_OK


def cmd_sut(args: argparse.Namespace) -> int:
    from harness.provision import open_provider
    from harness.runner import requirements
    from harness.scenario import all_scenario_files, load_scenarios
    from harness.sut.check import check_sut, render

    sut = _sut(args.file)
    suites = args.suite or ["nightly"]
    scenarios = [
        s for s in load_scenarios(all_scenario_files(_folders(args, sut))) if set(s.suites) & set(suites)
    ]
    with open_provider(args.postgres, ready_clones=0) as provider:
        report = check_sut(
            sut, provider, scenarios, lambda s, sql, found: _applies(s, sql, found, requirements)
        )
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


def _applies(scenario: Any, sql: Any, found: dict[str, str], requirements: Any) -> list[str]:
    from harness.errors import NotApplicable
    from harness.runner import migration_plan

    try:
        migration_plan(sql.sut, scenario)
    except NotApplicable as exc:
        return list(exc.reasons)
    return requirements(scenario, sql, found)


def cmd_mutate(args: argparse.Namespace) -> int:
    from harness.mutate.command import main as mutate

    sut = _sut(args.sut)
    return mutate(args, sut, _folders(args, sut))


class Terminated(KeyboardInterrupt):
    """A SIGTERM, unwound through the same cleanup as Ctrl-C."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    # A process started in the background by a non-interactive shell (a CI script's `cmd &`) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: a Ctrl-C sent to it would be lost and the
    # servers and workers it started left running. Take the signal back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # SIGTERM is how CI cancels a job or ends one that ran out of time. Python's default would end the process
    # on the spot, leaving its workers and services running (only the Postgres server dies with the harness)
    # and its temp folders behind. Unwind as for Ctrl-C instead: faults healed, everything stopped, the report
    # written. (`harness up` replaces this with its own stop.)
    signal.signal(signal.SIGTERM, _terminate)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["proxy"]:
        from harness.proxy.__main__ import main as proxy_main

        return proxy_main(argv[1:])
    args = build_parser().parse_args(argv)
    handlers = {
        "e2e": cmd_e2e,
        "load": cmd_load,
        "trace": cmd_trace,
        "up": cmd_up,
        "bench": cmd_bench,
        "run": cmd_run,
        "scenarios": cmd_scenarios,
        "sut": cmd_sut,
        "init": cmd_init,
        "check": cmd_check,
        "replay": cmd_replay,
        "mutate": cmd_mutate,
        **contracts_cli.HANDLERS,
        "gate": gate_cli.run_gate,
        **observability_cli.HANDLERS,
    }
    try:
        return handlers[args.command](args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(
            f"{'terminated' if isinstance(exc, Terminated) else 'interrupted'}; cleaned up", file=sys.stderr
        )
        return EXIT_HARNESS
    except Exception as exc:  # a harness bug: never exit 1, which says the pipeline failed an expectation
        log = _crash_log(exc)
        print(
            f"error: the harness failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
            f"the traceback is in {log}; exit 4",
            file=sys.stderr,
        )
        return EXIT_HARNESS


def _crash_log(exc: BaseException) -> Path:
    """Write the traceback of an unexpected exception to a file of its own; its path."""
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="harness-crash-", suffix=".log", delete=False, encoding="utf-8"
    ) as log:
        log.write(f"harness {' '.join(sys.argv[1:])}\n")
        log.write("".join(traceback.format_exception(exc)))
    return Path(log.name)


if __name__ == "__main__":
    sys.exit(main())
