"""A running system under test: its services and worker processes on one database.

`RunningSystem` writes the SUT's settings, starts the external services (learning their URLs), then the
workers, each under the supervisor so faults can kill, pause or restart any of them. Closing stops them all.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict

from harness.errors import HarnessError
from harness.sut.adapter import SutSql
from harness.sut.config import Sut
from harness.sut.supervisor import Managed, Supervisor, tail
from harness.wait import WaitTimeout, wait_until

if TYPE_CHECKING:
    from harness.sut.network import Network


@dataclass(frozen=True)
class SystemOptions:
    workers: dict[str, int] = field(
        default_factory=lambda: {"fase1-executor": 1, "orchestrator": 1, "scheduler": 1}
    )
    batch: int = 25  # the batch that served flows best in harness runs (DECISIONS.md, "Workers' batch")
    poll_interval_s: float = 0.5
    settings: dict[str, str] = field(default_factory=dict)
    network: bool = False  # route workers -> Postgres and orchestrator -> services through proxy links


class RunningSystem:
    def __init__(
        self,
        sut: Sut,
        dsn: str,
        log_dir: Path,
        options: SystemOptions | None = None,
        sql: SutSql | None = None,
    ) -> None:
        self.sut = sut
        self.dsn = dsn
        self.options = options or SystemOptions()
        self.sql = sql or SutSql.connect(sut, dsn)  # raises SutIncomplete, naming what the pipeline lacks
        self.supervisor = Supervisor(log_dir)
        self.urls: dict[str, str] = {}
        self.network: Network | None = None  # when the options ask for proxied links
        self.worker_dsn = dsn
        self.worker_urls: dict[str, str] = {}
        self.found: dict[str, str] = {}  # capabilities seen once running (a service's admin API)
        # {sut_dir}: the SUT file's folder, so a team's commands can name scripts beside it
        self._sut_dir = str(sut.path.parent) if sut.path else "."

    def __enter__(self) -> RunningSystem:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.sql.write_settings(self.dsn, {**self.sut.settings, **self.options.settings})
        for name, command in self.sut.services.items():
            argv = [
                part.replace("{python}", sys.executable)
                .replace("{sut_dir}", self._sut_dir)
                .replace("{state_dir}", str(self.supervisor.log_dir))
                for part in command
            ]
            managed = self.supervisor.start(name, argv, env=self.sut.env, wait_url_s=15)
            self.urls[name] = managed.url or ""
            if _answers(self.urls[name] + "/_admin/config"):
                self.found[f"service-admin:{name}"] = f"{name} answers /_admin/config"
            if name in self.sut.side_effects and _answers(self.urls[name] + "/_admin/issued"):
                self.found[f"side-effects:{name}"] = f"{name} answers /_admin/issued"
        self.worker_urls = dict(self.urls)
        if self.options.network:
            from harness.sut.network import Network

            self.network = Network()
            self.network.start()
            self.worker_dsn = self.network.link_dsn(self.dsn)
            self.worker_urls = {name: self.network.link_url(name, url) for name, url in self.urls.items()}
        for role, count in self.options.workers.items():
            for index in range(count):
                self.start_worker(role, index)
        self.wait_workers_ready()

    def wait_workers_ready(self, timeout_s: float = 20) -> None:
        """Wait until every worker is ready, so a measured run does not count the workers' start-up as
        pipeline latency: it announced itself (where the pipeline records heartbeats), or else it holds a
        connection to the database it was given (any pipeline's worker does, once it can work)."""
        workers = self.workers()
        heartbeats = self.sql.facts.has("heartbeats")
        target = _db_address(self.worker_dsn)
        with psycopg.connect(self.dsn, autocommit=True) as conn:

            def all_ready() -> bool:
                if heartbeats:
                    pids = [m.pid for m in workers]
                    row = conn.execute(self.sql.queries("system")["live_workers"], {"pids": pids}).fetchone()
                    assert row is not None  # a count
                    ready = row[0]
                else:
                    ready = sum(1 for m in workers if _connected(m.pid, target))
                dead = [m.name for m in self.workers() if not m.alive]
                if dead:
                    raise HarnessError(
                        f"worker {dead[0]} exited at start; its log:\n{tail(self.supervisor.get(dead[0]).log_path)}"
                    )
                return bool(ready >= len(workers))

            try:
                wait_until(all_ready, timeout=timeout_s, describe="every worker ready")
            except WaitTimeout:
                raise HarnessError(
                    f"workers did not become ready within {timeout_s:.0f} s "
                    f"({'no heartbeat' if heartbeats else 'no connection to the database'}); see their logs in "
                    f"{self.supervisor.log_dir}"
                ) from None

    def start_worker(self, role: str, index: int = 0) -> Managed:
        values = {
            "python": sys.executable,
            "dsn": self.worker_dsn,
            "batch": str(self.options.batch),
            "poll_interval": str(self.options.poll_interval_s),
            "tsa_url": self.worker_urls.get("tsa", ""),
            "ledger_url": self.worker_urls.get("ledger", ""),
            "sut_dir": self._sut_dir,
        }
        return self.supervisor.start(
            f"{role}-{index}", self.sut.worker_command(role, **values), env=self.sut.env
        )

    def restart_service(self, name: str) -> None:
        """Bring a service back on the port it had, so the workers' URLs stay right."""
        port = self.urls[name].rsplit(":", 1)[-1]
        old = self.supervisor.get(name)
        argv = list(old.argv)
        if "--port" in argv:
            argv[argv.index("--port") + 1] = port
        if old.alive:
            self.supervisor.kill(name)
        managed = self.supervisor.start(name, argv, env=old.env, wait_url_s=15)
        self.urls[name] = managed.url or self.urls[name]

    def side_effects(self) -> dict[str, tuple[dict[str, Any], ...]] | None:
        """What each service that can say so issued (`/_admin/issued`), for the final read; None when none
        can. A service that stopped answering makes the read-back of all of them void (None): a partial list
        would read as missing side effects."""
        found: dict[str, tuple[dict[str, Any], ...]] = {}
        for name in self.sut.side_effects:
            if f"side-effects:{name}" not in self.found:
                continue
            try:
                with urllib.request.urlopen(self.urls[name] + "/_admin/issued", timeout=5) as answer:
                    found[name] = tuple(json.loads(answer.read()).get("issued", ()))
            except (urllib.error.URLError, OSError, ValueError):
                return None
        return found or None

    def workers(self, role: str | None = None) -> list[Managed]:
        return [
            m
            for name, m in self.supervisor.procs.items()
            if name.rsplit("-", 1)[0] in self.sut.workers and (role is None or name.rsplit("-", 1)[0] == role)
        ]

    def close(self) -> None:
        self.supervisor.close()
        if self.network is not None:
            self.network.close()


def _answers(url: str) -> bool:
    """Whether an HTTP GET of `url` answers 200 (how the harness learns a service has its admin API)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _db_address(dsn: str) -> tuple[str, int] | None:
    """(host, port) a worker connects to over TCP; None for a Unix socket (readiness then by heartbeat or
    by the process being alive)."""
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "")
    if not host or host.startswith("/"):
        return None
    return host, int(params.get("port") or 5432)


def _connected(pid: int, target: tuple[str, int] | None) -> bool:
    """Whether the process (or a child of it) holds an established connection to `target`."""
    try:
        process = psutil.Process(pid)
        if target is None:
            return process.is_running()
        for proc in (process, *process.children(recursive=True)):
            for conn in proc.net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == target[1] and conn.status == psutil.CONN_ESTABLISHED:
                    return True
    except psutil.Error:
        return False
    return False
