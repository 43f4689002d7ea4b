"""`harness bench`: the pipeline's speed, each figure beside a baseline measured in the same run.

Machines are shared and noisy, so nothing here is a pass/fail threshold: the report gives rates and their
ratios to a raw-SQL baseline taken on the same server a moment earlier.

- fresh database: median time to hand out a migrated clone and connect to it;
- raw canonical step: one Python connection doing only claim -> complete_jobs (which appends the result
  events, whose trigger calls the gateway for the next jobs), one job at a time and 10 at a time;
- worker: the real orchestrator process on the same kind of seeded jobs; ratio = worker / raw. The worker
  writes a batch's outcomes while it claims the next (pipeline/worker/writers.py) and the raw client does not,
  so a ratio above 1 is expected: the baseline is the leanest serial client, not a ceiling;
- trivial jobs: the decision worker process on the pipeline's own no-op jobs (decisions that append nothing);
- peer: pgqueuer draining no-op jobs on the same server (when the `peers` extra is installed), compared with
  both: the canonical step (far more work per job than pgqueuer's) and the trivial jobs (like for like);
- CPU per job, for the trivial jobs and the peer: the CPU microseconds each job cost the client process and
  its server backends together (read from /proc, so for a server on this machine only). A rate drops when a
  neighbour takes the machine; the CPU a job costs barely moves (harness/perf/cpu.py);
- core-trigger path: events appended by 4 concurrent clients, each append running trigger + gateway, on
  entities that take a flow's 8 events, and again on entities that already hold 100; then the same appends
  from 4 pgbench clients (no Python client sharing the machine);
- e2e: real flows through every process;
- network proxy: microseconds per round trip (`SELECT 1`) through the harness's network link with no toxic,
  median and p99, beside the same round trips straight to the server, interleaved in the same run.

The report also notes a server whose autovacuum wakes too seldom for the claim queue (its figures swing with
the queue's dead rows: a server setting, not the pipeline).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.e2e import run_e2e
from harness.errors import HarnessError, MissingBinary
from harness.perf.cpu import Drain, cpu_seconds
from harness.perf.peers import pgqueuer_available, pgqueuer_drain
from harness.provision import Provider, open_provider
from harness.provision.binaries import find_binaries
from harness.provision.migrations import MigrationPlan
from harness.sqlfile import named_queries
from harness.sut.config import Sut, reference_sut
from harness.sut.network import Network
from harness.sut.system import RunningSystem, SystemOptions

Q = named_queries("bench")


@dataclass
class BenchReport:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def ratio(self, name: str, numerator: str, denominator: str) -> None:
        if numerator in self.figures and self.figures.get(denominator):
            self.figures[name] = round(self.figures[numerator] / self.figures[denominator], 2)


def seed_protect_jobs(dsn: str, count: int) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(Q["reset_queue"])
        ids = [r[0] for r in conn.execute(Q["new_entities"], {"count": count}).fetchall()]
        with conn.cursor() as cur:
            cur.executemany(Q["require_protect"], [{"entity_id": e} for e in ids])


def seed_started_requests(dsn: str, count: int) -> None:
    """`count` no-op decision jobs: requests whose flow has already started (bench.sql started_requests)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(Q["reset_queue"])
        conn.execute(Q["started_requests"], {"count": count})


def raw_step_rate(dsn: str, jobs: int, batch: int) -> float:
    seed_protect_jobs(dsn, jobs)
    # The leanest client a raw-SQL user could write, so the worker's ratio is against the best: the claim
    # as its own one-statement transaction, a batch's completions pipelined in one transaction.
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        done = 0
        while rows := conn.execute(Q["claim_execution"], {"limit": batch}).fetchall():
            complete_all(conn, rows)
            done += len(rows)
        return done / (time.perf_counter() - started)


def _one(conn: psycopg.Connection[Any], query: str, params: dict[str, Any] | None = None) -> Any:
    """The value of a query that returns one row of one column."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def complete_all(conn: psycopg.Connection[Any], runs: list[Any]) -> None:
    """Complete claimed (job_id, run_id) pairs with one `complete_jobs` statement, as the workers do."""
    conn.execute(Q["complete"], {"job_ids": [r[0] for r in runs], "run_ids": [r[1] for r in runs]})


def worker_drain(sut: Sut, dsn: str, jobs: int, batch: int, log_dir: Path, server_cpu: bool = True) -> Drain:
    """The orchestrator process on seeded protect jobs: the canonical step, as the raw baseline runs it."""
    seed_protect_jobs(dsn, jobs)
    return _drain(sut, dsn, "orchestrator", batch, log_dir, server_cpu)


def trivial_worker_drain(
    sut: Sut, dsn: str, jobs: int, batch: int, log_dir: Path, server_cpu: bool = True
) -> Drain:
    """The decision worker process on the pipeline's own no-op jobs: decisions for requests whose flow has
    already started, which append nothing. Each is claimed, its entity locked and read, decided and completed:
    the queue's whole cost with no work behind it, as pgqueuer's trivial jobs are."""
    seed_started_requests(dsn, jobs)
    return _drain(sut, dsn, "fase1-executor", batch, log_dir, server_cpu)


def _drain(sut: Sut, dsn: str, role: str, batch: int, log_dir: Path, server_cpu: bool) -> Drain:
    """One worker process of `role` drains the seeded jobs: its rate, and the CPU each job cost the worker
    and (with `server_cpu`, for a server on this machine) its backends.

    The worker starts draining as soon as it is connected, a moment before the harness sees it announce
    itself, so the clock starts at that moment and counts only the jobs still left then (at thousands of jobs
    a second, counting them all overstated a figure by up to a tenth). Why not seed after the worker is up: its
    plans would be made on empty tables, and such a plan stays with the session until autovacuum next analyzes
    the table: the figures would measure that plan, not the step."""
    kind = "execution" if role == "orchestrator" else "decision"
    options = SystemOptions(workers={role: 1}, batch=batch, poll_interval_s=0.2)
    with psycopg.connect(dsn, autocommit=True) as conn, RunningSystem(sut, dsn, log_dir, options) as system:
        pids = [m.pid for m in system.workers()]
        if server_cpu:
            for worker in list(pids):
                pids += [row[0] for row in conn.execute(Q["worker_backends"], {"name": f"%:{worker}"})]
        before = cpu_seconds(pids)
        left = _one(conn, Q["work_remaining"], {"kind": kind})
        started = time.perf_counter()
        while _one(conn, Q["work_left"], {"kind": kind}):
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        after = cpu_seconds(pids)
    if not left:
        raise HarnessError(f"the {role} worker drained every job before the clock started: seed more jobs")
    cpu = None if before is None or after is None else (after - before) * 1e6 / left
    return Drain(left / elapsed, cpu)


# Events a flow appends to its entity (pipeline/flow.py): the request, required and completed for each of the
# three steps, and document.anchored.
FLOW_EVENTS = 8
# Entities each append client owns: enough that a flow-length run never comes back to a full one.
ENTITIES_PER_CLIENT = 2500


def append_rate(
    dsn: str, clients: int, seconds: float, per_entity: int = FLOW_EVENTS, prefilled: int = 0
) -> float:
    """Events/s appended through the append API (core trigger, gateway, claim queue, projection) by `clients`
    connections, each on entities of its own.

    Every append rewrites its entity's whole event list, so the list's length is part of what is measured and
    is fixed here: an entity takes `per_entity` events (a flow's worth by default), then its client moves to a
    fresh one. With `prefilled`, every entity starts with that many events and the clients go round their
    entities, so the figure shows what long lists cost. (An earlier version went round 200 entities per client
    for the whole run, so a faster server measured longer lists.)"""
    per_client = ENTITIES_PER_CLIENT if not prefilled else 50
    with psycopg.connect(dsn) as conn:
        conn.execute(Q["reset_queue"])
        entities = [r[0] for r in conn.execute(Q["new_entities"], {"count": clients * per_client}).fetchall()]
        if prefilled:
            conn.execute(Q["prefill_events"], {"count": prefilled})
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        mine = entities[index::clients]
        # One cursor and a statement prepared from the first call, as a lean client would hold them: a new
        # cursor per call cost the client about 15% more CPU per append, taken from the server's two cores.
        with psycopg.connect(dsn, autocommit=True) as own, own.cursor() as cur:
            n = 0
            while time.perf_counter() < stop:
                cur.execute(
                    Q["require_protect"], {"entity_id": mine[(n // per_entity) % len(mine)]}, prepare=True
                )
                n += 1
            counts[index] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


# The same appends as append_rate's, for pgbench: client i takes its ENTITIES_PER_CLIENT numbered entities in
# turn, a flow's worth of events each (pgbench keeps a client's variables from one transaction to the next).
PGBENCH_APPENDS = f"""\\set step :step + 1
\\set n :client_id * {ENTITIES_PER_CLIENT} + (:step / {FLOW_EVENTS}) % {ENTITIES_PER_CLIENT}
SELECT append_event(md5('bench-' || :n)::uuid, 'job.protect.required', '{{"document": "bench"}}');
"""


def pgbench_append_rate(dsn: str, clients: int, seconds: float) -> float | None:
    """append_rate's figure with pgbench (Postgres' own load client, shipped with the server binaries) as the
    clients: the path's capacity without the Python client's share of the machine (its threads take about a
    third of a core). None when no pgbench is found beside the server binaries."""
    try:
        pgbench = find_binaries().bin_dir / "pgbench"
    except MissingBinary:
        return None
    if not pgbench.exists():
        return None
    with psycopg.connect(dsn) as conn:
        conn.execute(Q["reset_queue"])
        conn.execute(Q["new_numbered_entities"], {"count": clients * ENTITIES_PER_CLIENT})
    with tempfile.NamedTemporaryFile("w", suffix=".pgb") as script:
        script.write(PGBENCH_APPENDS)
        script.flush()
        args = [str(pgbench), "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2))]
        args += ["-T", str(max(1, round(seconds))), "-D", "step=0", "-f", script.name, dsn]
        out = subprocess.run(args, capture_output=True, text=True, check=False)
    found = re.search(r"^tps = ([0-9.]+)", out.stdout, re.MULTILINE)
    if out.returncode != 0 or not found:
        raise HarnessError(
            f"pgbench failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[-400:]}"
        )
    return float(found.group(1))


def soak(dsn: str, minutes: float, window_s: float = 30.0, batch: int = 10) -> list[float]:
    """Jobs/s of the canonical step in consecutive windows over `minutes`, the queue refilled as it drains.

    The decision jobs each step materializes are completed too, as a decision worker would, so the queue's
    ready set stays the size of the backlog while finished jobs pile up in executor_jobs and every claim
    leaves dead index entries behind: the steady state of a long-running pipeline. A decay from the first
    window to the last shows whether the hot table stays lean.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(Q["reset_queue"])
    rates: list[float] = []
    end = time.monotonic() + minutes * 60
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < end:
            window_end, done, started = min(time.monotonic() + window_s, end), 0, time.monotonic()
            while time.monotonic() < window_end:
                rows = conn.execute(Q["claim_execution"], {"limit": batch}).fetchall()
                if not rows:
                    ids = [r[0] for r in conn.execute(Q["new_entities"], {"count": 500}).fetchall()]
                    with conn.transaction(), conn.cursor() as cur:
                        cur.executemany(Q["require_protect"], [{"entity_id": e} for e in ids])
                    continue
                complete_all(conn, [*rows, *conn.execute(Q["claim_decision"], {"limit": batch}).fetchall()])
                done += len(rows)
            rates.append(done / (time.monotonic() - started))
    return rates


# Above this, autovacuum visits the claim queue too seldom to keep it lean under load (pipeline/README.md).
LEAN_QUEUE_NAPTIME_S = 10


def naptime_note(naptime_s: int) -> str | None:
    """A note for a report taken on a server whose autovacuum wakes too seldom for the queue: its rates then
    swing with the dead rows gathered between passes, which is the server's setting, not the pipeline."""
    if naptime_s <= LEAN_QUEUE_NAPTIME_S:
        return None
    return (
        f"this server's autovacuum_naptime is {naptime_s} s: the claim queue gathers dead rows between passes "
        f"and the rates swing with them; set it to {LEAN_QUEUE_NAPTIME_S} s or less for steady figures"
    )


def server_notes(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        naptime = _one(conn, Q["autovacuum_naptime_s"])
    note = naptime_note(int(naptime))
    return [note] if note else []


def clone_ms(provider: Provider, plan: MigrationPlan, samples: int = 9) -> float:
    provider.keep_ready(plan)
    times = []
    for _ in range(samples):
        time.sleep(0.4)  # let the pool refill, as it does between scenarios
        started = time.perf_counter()
        dsn = provider.new_database(plan)
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT 1")
        times.append((time.perf_counter() - started) * 1000)
        provider.drop_database(dsn)
    return statistics.median(times)


def proxy_roundtrips(dsn: str, samples: int, blocks: int = 10) -> dict[str, float]:
    """Median and p99 microseconds per `SELECT 1` round trip on a connection through the network proxy the
    harness's faults go through (`harness.sut.network`: the built-in one, or `HARNESS_TOXIPROXY`'s), with no
    toxic, and on a connection straight to the server. The two take turns in `blocks`, so both see the same
    stretch of machine noise; what the proxy adds is the difference."""
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    network = Network()
    network.start()
    try:
        through = network.link_dsn(dsn)
        with (
            psycopg.connect(dsn, autocommit=True) as direct,
            psycopg.connect(through, autocommit=True) as proxied,
        ):
            for _ in range(blocks):
                for name, conn in (("direct", direct), ("proxy", proxied)):
                    for _ in range(max(1, samples // blocks)):
                        started = time.perf_counter()
                        conn.execute("SELECT 1").fetchone()
                        times[name].append((time.perf_counter() - started) * 1e6)
    finally:
        network.close()
    figures: dict[str, float] = {}
    for name, micros in times.items():
        figures[f"{name}_roundtrip_median_us"] = round(statistics.median(micros), 1)
        figures[f"{name}_roundtrip_p99_us"] = round(statistics.quantiles(micros, n=100)[-1], 1)
    return figures


def add_proxy_figures(report: BenchReport, dsn: str, samples: int) -> None:
    report.figures.update(proxy_roundtrips(dsn, samples))
    report.ratio(
        "proxy_vs_direct_roundtrip_median", "proxy_roundtrip_median_us", "direct_roundtrip_median_us"
    )
    report.ratio("proxy_vs_direct_roundtrip_p99", "proxy_roundtrip_p99_us", "direct_roundtrip_p99_us")


def run_soak(postgres: str, minutes: float, window_s: float = 30.0) -> BenchReport:
    """The canonical step for `minutes`, in windows: the last window's rate over the first's shows decay, and
    the medians of the first and last five windows say the same with less noise."""
    report = BenchReport()
    with open_provider(postgres, ready_clones=0) as pg:
        dsn = pg.new_database(MigrationPlan(reference_sut().migrations))
        report.notes.extend(server_notes(dsn))
        rates = soak(dsn, minutes, window_s)
    report.notes.append(f"windows of {window_s:g} s, jobs/s: " + " ".join(f"{r:.0f}" for r in rates))
    report.figures["soak_first_window_jobs_per_s"] = round(rates[0])
    report.figures["soak_last_window_jobs_per_s"] = round(rates[-1])
    report.ratio("soak_last_vs_first", "soak_last_window_jobs_per_s", "soak_first_window_jobs_per_s")
    k = min(5, len(rates))
    report.figures["soak_first_windows_median"] = round(statistics.median(rates[:k]))
    report.figures["soak_last_windows_median"] = round(statistics.median(rates[-k:]))
    report.ratio("soak_last_vs_first_medians", "soak_last_windows_median", "soak_first_windows_median")
    return report


def step_rounds(
    sut: Sut, pg: Provider, dsn: str, jobs: int, rounds: int, log_dir: Path
) -> dict[str, list[float]]:
    """The per-step rates, each measured once per round, the rounds one after the other.

    Why rounds: on a shared machine one measurement of each figure, taken a minute apart from the one it is
    compared with, moved ratios by a third between runs. Interleaving puts every figure and its baseline in
    the same stretch of machine noise, and the median drops the round a neighbour spoiled."""
    rates: dict[str, list[float]] = {}
    # CPU time of server backends is read from /proc: only where the server runs on this machine.
    server_cpu = pg.info().provider == "embedded"
    for _ in range(rounds):
        for batch in (1, 10):
            rates.setdefault(f"raw_step_jobs_per_s_batch{batch}", []).append(raw_step_rate(dsn, jobs, batch))
            drains = {
                "worker": worker_drain(sut, dsn, jobs, batch, log_dir, server_cpu),
                "worker_trivial": trivial_worker_drain(sut, dsn, jobs, batch, log_dir, server_cpu),
            }
            if pgqueuer_available():
                drains["pgqueuer"] = pgqueuer_drain(pg, jobs, batch, server_cpu)
            for who, drain in drains.items():
                rates.setdefault(f"{who}_jobs_per_s_batch{batch}", []).append(drain.jobs_per_s)
                if drain.cpu_us_per_job is not None and who != "worker":
                    rates.setdefault(f"{who}_cpu_us_per_job_batch{batch}", []).append(drain.cpu_us_per_job)
    return rates


def append_rounds(dsn: str, rounds: int, seconds: float) -> dict[str, list[float]]:
    """The core-trigger path's figures, each once per round (see step_rounds for why rounds): 4 Python
    clients on a flow's 8-event lists, the same on 100-event lists, and 4 pgbench clients when found."""
    rates: dict[str, list[float]] = {}
    for _ in range(rounds):
        rates.setdefault("append_events_per_s_4_clients", []).append(append_rate(dsn, 4, seconds))
        rates.setdefault("append_events_per_s_4_clients_100_event_lists", []).append(
            append_rate(dsn, 4, seconds, per_entity=1, prefilled=100)
        )
        by_pgbench = pgbench_append_rate(dsn, 4, seconds)
        if by_pgbench is not None:
            rates.setdefault("append_events_per_s_4_pgbench_clients", []).append(by_pgbench)
    return rates


def run_bench(
    postgres: str = "embedded", jobs: int = 3000, flows: int = 1000, quick: bool = False, rounds: int = 3
) -> BenchReport:
    if quick:
        jobs, flows, rounds = 600, 200, 1
    sut = reference_sut()
    plan = MigrationPlan(sut.migrations)
    report = BenchReport()
    with (
        open_provider(postgres, ready_clones=2) as pg,
        tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp,
    ):
        info = pg.info()
        report.notes.append(f"postgres {info.provider} {info.version}; {jobs} jobs per step figure")
        report.figures["fresh_database_ms"] = round(clone_ms(pg, plan), 1)
        dsn = pg.new_database(plan)
        report.notes.extend(server_notes(dsn))
        steps = step_rounds(sut, pg, dsn, jobs, rounds, Path(tmp))
        appends = append_rounds(dsn, rounds, 3 if quick else 5)
        sampled = {**steps, **appends}
        report.figures.update({name: round(statistics.median(rates)) for name, rates in sampled.items()})
        if rounds > 1:
            report.notes.append(
                f"step and append figures are medians of {rounds} interleaved rounds; their ranges: "
                + "; ".join(f"{name} {min(r):.0f}-{max(r):.0f}" for name, r in sampled.items())
            )
        if not pgqueuer_available():
            report.notes.append("pgqueuer is not installed, so no peer figures: pip install -e '.[peers]'")
        if "append_events_per_s_4_pgbench_clients" not in appends:
            report.notes.append("no pgbench beside the server binaries, so no pgbench append figure")
        add_proxy_figures(report, dsn, samples=1000 if quick else 5000)
    report.ratio("worker_vs_raw_batch1", "worker_jobs_per_s_batch1", "raw_step_jobs_per_s_batch1")
    report.ratio("worker_vs_raw_batch10", "worker_jobs_per_s_batch10", "raw_step_jobs_per_s_batch10")
    report.ratio("worker_vs_pgqueuer_batch1", "worker_jobs_per_s_batch1", "pgqueuer_jobs_per_s_batch1")
    report.ratio("worker_vs_pgqueuer_batch10", "worker_jobs_per_s_batch10", "pgqueuer_jobs_per_s_batch10")
    for batch in (1, 10):
        report.ratio(
            f"worker_trivial_vs_pgqueuer_batch{batch}",
            f"worker_trivial_jobs_per_s_batch{batch}",
            f"pgqueuer_jobs_per_s_batch{batch}",
        )
        # CPU per job the other way up (theirs over ours), so that here too above 1 means ours is ahead.
        report.ratio(
            f"worker_trivial_vs_pgqueuer_cpu_batch{batch}",
            f"pgqueuer_cpu_us_per_job_batch{batch}",
            f"worker_trivial_cpu_us_per_job_batch{batch}",
        )
    e2e = run_e2e(flows, postgres)
    report.figures["e2e_flows_per_s"] = round(e2e.flows_per_s, 1)
    report.figures["e2e_p99_latency_ms"] = e2e.latency_ms.get("p99", 0.0)
    if not e2e.ok:
        report.notes.append(f"e2e: only {e2e.flows_completed}/{flows} flows completed")
    return report


def render(report: BenchReport) -> str:
    lines = [f"{name:<46} {value:>10}" for name, value in report.figures.items()]
    return "\n".join([*report.notes, *lines])


def as_dict(report: BenchReport) -> dict[str, Any]:
    return {"figures": report.figures, "notes": report.notes}
