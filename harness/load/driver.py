"""`harness load`: the pipeline under a Locust load, judged on what it did with it.

Locust drives the load (`harness/load/locustfile.py`: each user requests new flows through the SQL contract), in
its own process: Locust monkey-patches the standard library for gevent on import, which the harness's threads
and subprocesses must not see. Locust can run as one process, as a master with forked workers on this machine
(`--processes`), or as a master waiting for workers on other machines (`--expect-workers`).

Locust's statistics say how the requests went (count, failures, latency). The pipeline's database says what
became of them, read once the load has stopped and the flows have drained: every requested flow must close
with `document.anchored` and a complete trace, every `job.<type>.required` event must have its job, and the
event_to_job_gap (the RFC's KPI: from a required event to its job) is measured over all of them, with an
optional p99 limit. Exit 0 only when all of that held.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.checkers.gap_slo import percentile
from harness.e2e import E2EResult, judge_flows, wait_closed
from harness.errors import BadInput, HarnessError
from harness.provision import open_provider
from harness.provision.migrations import MigrationPlan
from harness.sut.adapter import SutSql
from harness.sut.config import Sut, reference_sut
from harness.sut.system import RunningSystem, SystemOptions

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REQUEST = "request_protection"


@dataclass(frozen=True)
class LoadOptions:
    users: int = 10
    spawn_rate: float | None = None  # users started per second; None: all at once
    duration_s: float = 30.0
    rate_per_user: float = 5.0  # flows/s each user requests; 0: as fast as it can
    processes: int = 1  # Locust processes on this machine (more than 1: a master and forked workers)
    expect_workers: int = 0  # Locust workers on other machines to wait for (master mode)
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    gap_p99_ms: float | None = None
    drain_timeout_s: float = 120.0
    html: Path | None = None
    csv_prefix: Path | None = None

    def validate(self) -> None:
        if self.users < 1:
            raise BadInput(f"--users must be at least 1, got {self.users}")
        if self.spawn_rate is not None and self.spawn_rate <= 0:
            raise BadInput(f"--spawn-rate must be positive, got {self.spawn_rate}")
        if self.duration_s <= 0:
            raise BadInput(f"--duration must be positive, got {self.duration_s}")
        if self.rate_per_user < 0:
            raise BadInput(
                f"--rate-per-user must be 0 (as fast as possible) or more, got {self.rate_per_user}"
            )
        if self.processes < 1:
            raise BadInput(f"--processes must be at least 1, got {self.processes}")
        if self.expect_workers < 0:
            raise BadInput(f"--expect-workers must be 0 or more, got {self.expect_workers}")
        if self.expect_workers and self.processes > 1:
            raise BadInput(
                "--expect-workers and --processes do not combine: start the extra workers yourself"
            )
        if self.gap_p99_ms is not None and self.gap_p99_ms <= 0:
            raise BadInput(f"--gap-p99-ms must be positive, got {self.gap_p99_ms}")


@dataclass
class LoadResult:
    options: LoadOptions
    owner: str
    requests: int = 0
    request_failures: int = 0
    failure_messages: list[str] = field(default_factory=list)
    requests_per_s: float = 0.0
    request_latency_ms: dict[str, float] = field(default_factory=dict)
    flows: E2EResult = field(default_factory=lambda: E2EResult(flows_requested=0))
    gap_ms: dict[str, Any] = field(default_factory=dict)
    locust: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        flows = self.flows.as_dict()
        return {
            "ok": self.ok,
            "users": self.options.users,
            "duration_s": self.options.duration_s,
            "rate_per_user": self.options.rate_per_user,
            "locust": self.locust,
            "requests": {
                "count": self.requests,
                "failures": self.request_failures,
                "per_s": round(self.requests_per_s, 1),
                "latency_ms": self.request_latency_ms,
                "failure_messages": self.failure_messages[:10],
            },
            "flows": {
                k: flows[k]
                for k in (
                    "flows_requested",
                    "flows_completed",
                    "flows_failed",
                    "traces_complete",
                    "flows_per_s",
                    "latency_ms",
                )
            },
            "event_to_job_gap_ms": self.gap_ms,
            "postgres": flows["postgres"],
            "owner": self.owner,
            "problems": self.problems[:50],
        }


def require_locust() -> None:
    """Locust is an optional extra: say how to get it, before anything is started."""
    try:
        found = importlib.util.find_spec("locust") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BadInput("harness load needs Locust: pip install -e '.[load]' (or pip install locust)")


def locust_command(options: LoadOptions, out: Path) -> list[str]:
    """The Locust command line of a run, but for the locustfile's own options (see run_locust)."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    command += ["-u", str(options.users), "-r", str(options.spawn_rate or options.users)]
    command += ["-t", f"{options.duration_s:g}s", "--stop-timeout", "5", "--only-summary"]
    command += ["--loglevel", "WARNING", "--json-file", str(out), "--exit-code-on-error", "0"]
    if options.processes > 1:
        command += ["--processes", str(options.processes)]
    if options.expect_workers:
        command += ["--master", "--expect-workers", str(options.expect_workers)]
        command += ["--master-bind-host", options.master_bind_host]
        command += ["--master-bind-port", str(options.master_bind_port)]
    if options.html:
        command += ["--html", str(options.html)]
    # Always CSV: its failures file is where Locust gives each error's message (its JSON counts them only).
    command += ["--csv", str(options.csv_prefix or out)]
    return command


def run_locust(
    dsn: str, owner: str, options: LoadOptions, workdir: Path, request: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run Locust to the end of its run time; its final statistics (Locust's --json-file entries) and its
    failures. `request`: the pipeline's entry statement, which every user runs."""
    out = workdir / "locust"
    # The DSN goes in the environment, not on the command line, where any user of the machine could read it.
    env = {**os.environ, "HARNESS_LOAD_DSN": dsn, "HARNESS_LOAD_REQUEST": request}
    command = [*locust_command(options, out), "--pg-owner", owner, "--pg-rate", str(options.rate_per_user)]
    log = workdir / "locust.log"
    # Locust waits for its workers, then runs for the run time, then stops its users (at most 5 s).
    limit = options.duration_s + 60 + (600 if options.expect_workers else 0)
    with log.open("w") as sink:
        # Its own process group: Locust forks its workers (--processes), and an interrupted run (Ctrl-C, CI's
        # SIGTERM, the time limit) must take all of them down, not only the process the harness started.
        locust = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = locust.wait(timeout=limit)
        except BaseException as exc:
            _kill_group(locust)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise HarnessError(
                    f"Locust did not finish within {limit:g} s; its log: {_tail(log)}"
                ) from exc
            raise
    stats = out.with_suffix(".json")
    if code != 0 or not stats.exists():
        raise HarnessError(f"Locust failed (exit {code}): {_tail(log)}")
    return json.loads(stats.read_text()), _failures(options.csv_prefix or out)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(text[-lines:]) or "(no output)"


def histogram_percentile(times: dict[str, int], q: float) -> float:
    """A percentile of Locust's response-time histogram (rounded ms -> count), as Locust reports it."""
    points = sorted((float(ms), count) for ms, count in times.items())
    total = sum(count for _, count in points)
    if not total:
        return float("nan")
    seen = 0
    for ms, count in points:
        seen += count
        if seen >= q * total:
            return ms
    return points[-1][0]


def read_locust_stats(result: LoadResult, entries: list[dict[str, Any]], failures: list[str]) -> None:
    entry = next((e for e in entries if e.get("name") == REQUEST), None)
    if entry is None:
        result.problems.append("Locust reported no request_protection call: no user made a request")
        return
    result.requests = int(entry["num_requests"])
    result.request_failures = int(entry["num_failures"])
    span = float(entry.get("last_request_timestamp") or 0) - float(entry.get("start_time") or 0)
    result.requests_per_s = result.requests / span if span > 0 else 0.0
    times = entry.get("response_times") or {}
    result.request_latency_ms = {
        f"p{round(q * 100)}": histogram_percentile(times, q) for q in (0.5, 0.95, 0.99)
    } | {"max": round(float(entry.get("max_response_time") or 0), 1)}
    if result.request_failures:
        result.problems.append(f"{result.request_failures} of {result.requests} requests failed")
        result.failure_messages = failures


def judge_pipeline(dsn: str, result: LoadResult, drain_timeout_s: float, sql: SutSql) -> None:
    """What the pipeline made of the requests, read once they have drained."""
    Q = sql.queries("load")
    any_owner = not sql.entities_have("owner")
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute(Q["requested"], {"owner": result.owner, "any_owner": any_owner})]
    accepted = result.requests - result.request_failures
    if len(ids) < accepted:
        result.problems.append(
            f"{accepted} requests were acknowledged but only {len(ids)} entities exist: requests were lost"
        )
    result.flows.flows_requested = len(ids)
    if ids:
        wait_closed(dsn, ids, drain_timeout_s, sql)
        judge_flows(dsn, ids, result.flows, sql)
    flows = result.flows
    if flows.flows_completed < len(ids):
        open_ = len(ids) - flows.flows_completed - flows.flows_failed
        result.problems.append(
            f"{flows.flows_completed} of {len(ids)} flows completed ({flows.flows_failed} failed, {open_} still "
            f"open after {drain_timeout_s:g} s of drain)"
        )
    if flows.traces_complete < flows.flows_completed:
        result.problems.append(
            f"{flows.flows_completed - flows.traces_complete} completed flows have a broken trace"
        )
    result.problems.extend(flows.problems[:20])
    with psycopg.connect(dsn, autocommit=True) as conn:
        gaps = [r[0] for r in conn.execute(Q["gaps"], {"ids": ids})]
    measured = [float(g) for g in gaps if g is not None]
    missing = len(gaps) - len(measured)
    result.gap_ms = {
        "events": len(gaps),
        "without_job": missing,
        **(
            {
                "p50": round(percentile(measured, 0.5), 2),
                "p99": round(percentile(measured, 0.99), 2),
                "max": round(max(measured), 2),
            }
            if measured
            else {}
        ),
        "limit_p99": result.options.gap_p99_ms,
    }
    if missing:
        result.problems.append(
            f"{missing} job.<type>.required events have no job (lost by the core trigger path)"
        )
    limit = result.options.gap_p99_ms
    if limit is not None and measured and result.gap_ms["p99"] > limit:
        result.problems.append(
            f"event_to_job_gap p99 {result.gap_ms['p99']} ms is above the limit of {limit:g} ms"
        )


def run_load(
    options: LoadOptions,
    postgres: str = "embedded",
    sut: Sut | None = None,
    system: SystemOptions | None = None,
    log_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadResult:
    """Provision, start the pipeline, load it with Locust, drain, judge. `progress` hears what is going on."""
    options.validate()
    require_locust()
    sut = sut or reference_sut()
    result = LoadResult(options=options, owner=f"harness-load-{uuid.uuid4().hex[:8]}")
    with (
        open_provider(postgres, ready_clones=0) as pg,
        tempfile.TemporaryDirectory(prefix="harness-load-") as tmp,
    ):
        info = pg.info()
        result.flows.postgres = {"provider": info.provider, "version": info.version, "detail": info.detail}
        dsn = pg.new_database(MigrationPlan(sut.migrations))
        with RunningSystem(sut, dsn, log_dir or Path(tmp), system) as running:
            if not sut.entry.request:
                raise BadInput("harness load needs a SQL entry point ([entry] request in the SUT file)")
            if progress:
                pace = f"{options.rate_per_user:g} flows/s" if options.rate_per_user else "as fast as it can"
                progress(
                    f"load: pipeline up; {options.users} Locust users for {options.duration_s:g} s, each {pace}"
                )
            started = time.monotonic()
            entries, failures = run_locust(dsn, result.owner, options, Path(tmp), sut.entry.request)
            result.locust = {
                "processes": options.processes,
                "external_workers": options.expect_workers,
                "wall_s": round(time.monotonic() - started, 1),
            }
            read_locust_stats(result, entries, failures)
            if progress:
                progress(f"load: {result.requests} requests sent; waiting for the flows to drain")
            judge_pipeline(dsn, result, options.drain_timeout_s, running.sql)
    return result


def render(result: LoadResult) -> str:
    """The summary for people: what Locust sent, what the pipeline made of it, the verdict."""
    flows, req, gap = result.flows, result.request_latency_ms, result.gap_ms
    pg = flows.postgres
    lines = [
        f"postgres: {pg.get('provider')} {pg.get('version')} ({pg.get('detail')})",
        f"locust: {result.options.users} users, {result.options.processes} process(es)"
        + (f", {result.options.expect_workers} external worker(s)" if result.options.expect_workers else ""),
        f"requests: {result.requests} request_protection calls, {result.request_failures} failed, "
        f"{result.requests_per_s:.1f}/s; latency p50 {req.get('p50')} ms, p95 {req.get('p95')} ms, "
        f"p99 {req.get('p99')} ms, max {req.get('max')} ms",
        f"flows: {flows.flows_completed}/{flows.flows_requested} completed ({flows.flows_failed} failed), "
        f"{flows.traces_complete} traces complete; {flows.flows_per_s:.1f} flows/s; latency p50 "
        f"{flows.latency_ms.get('p50')} ms, p99 {flows.latency_ms.get('p99')} ms",
        f"event_to_job_gap: {gap.get('events')} required events, {gap.get('without_job')} without a job; "
        f"p50 {gap.get('p50')} ms, p99 {gap.get('p99')} ms, max {gap.get('max')} ms"
        + (f" (limit p99 {gap['limit_p99']:g} ms)" if gap.get("limit_p99") is not None else ""),
    ]
    lines += [f"  failure: {message}" for message in result.failure_messages[:5]]
    lines += [f"  problem: {problem}" for problem in result.problems[:20]]
    lines.append("OK" if result.ok else "FAILED")
    return "\n".join(lines)


def _failures(csv_prefix: Path) -> list[str]:
    """Each distinct failure of the run with its count, from Locust's failures CSV."""
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [f"{row['Occurrences']}x {row['Error']}" for row in csv.DictReader(handle)][:10]
