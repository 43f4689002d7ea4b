"""Peer baselines for `harness bench`: other Postgres queues draining trivial jobs on the same server.

"Faster than pgqueuer on trivial jobs" is a claim about two systems on one machine at one moment, so the peer
runs inside `harness bench`, against the same Postgres, between our own figures. Its trivial job does nothing
at all: pgqueuer's cost is its dequeue and its completion log. pgqueuer runs on asyncpg, its fastest driver,
in its own scratch database so its schema never touches the pipeline's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
import uuid
from collections.abc import Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from harness.errors import HarnessError
from harness.perf.cpu import Drain, cpu_seconds
from harness.provision import Provider


def pgqueuer_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("pgqueuer", "asyncpg"))


def pgqueuer_drain(provider: Provider, jobs: int, batch: int, server_cpu: bool = True) -> Drain:
    """One pgqueuer QueueManager draining `jobs` no-op jobs in batches of `batch`: its rate, and the CPU per
    job of this process (the manager runs in it) and, with `server_cpu`, of its backend."""
    with pgqueuer_database(provider) as dsn:
        asyncio.run(_seed(dsn, jobs))
        return asyncio.run(_drain(dsn, jobs, batch, server_cpu))


@contextlib.contextmanager
def pgqueuer_database(provider: Provider) -> Iterator[str]:
    """A scratch database for pgqueuer's schema, so it never touches the pipeline's; dropped on the way out."""
    name = f"harness_peer_pgqueuer_{uuid.uuid4().hex[:8]}"
    admin = provider.admin_dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name built above from hex digits only
    try:
        yield make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _seed(dsn: str, jobs: int) -> None:
    import asyncpg
    from pgqueuer.adapters.persistence.queries import Queries
    from pgqueuer.db import AsyncpgDriver

    conn = await asyncpg.connect(**_asyncpg_params(dsn))
    try:
        queries = Queries(AsyncpgDriver(conn))
        if not await queries.has_table("pgqueuer"):
            await queries.install()
        await conn.execute("TRUNCATE pgqueuer, pgqueuer_log")
        for start in range(0, jobs, 1000):
            count = min(1000, jobs - start)
            await queries.enqueue(["trivial"] * count, [b"x"] * count, [0] * count)
        # Statistics of the queue as it stands, as autovacuum would take them on a long-running queue: without
        # them its dequeue may scan the whole table, and its cost per job would grow with the backlog.
        await conn.execute("ANALYZE pgqueuer, pgqueuer_log")
    finally:
        await conn.close()


async def _drain(dsn: str, jobs: int, batch: int, server_cpu: bool) -> Drain:
    """One QueueManager drains the queue, on a connection of its own."""
    import asyncpg
    from pgqueuer import types
    from pgqueuer.adapters.persistence.queries import Queries
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.qm import QueueManager

    conn = await asyncpg.connect(**_asyncpg_params(dsn))
    try:
        backend = [int(await conn.fetchval("SELECT pg_backend_pid()"))] if server_cpu else []
        manager = QueueManager(Queries(AsyncpgDriver(conn)))
        done = 0

        @manager.entrypoint("trivial")
        async def trivial(_job: object) -> None:
            nonlocal done
            done += 1

        server_before = cpu_seconds(backend)
        client_before = time.process_time()
        started = time.perf_counter()
        await manager.run(batch_size=batch, mode=types.QueueExecutionMode.drain)
        elapsed = time.perf_counter() - started
        client = time.process_time() - client_before
        server_after = cpu_seconds(backend)
    finally:
        await conn.close()
    if done != jobs:
        raise HarnessError(f"pgqueuer ran {done} of its {jobs} jobs: its figures would not be per job")
    cpu = None if server_before is None or server_after is None else client + server_after - server_before
    return Drain(done / elapsed, None if cpu is None else cpu * 1e6 / done)


def _asyncpg_params(dsn: str) -> dict[str, object]:
    parts = conninfo_to_dict(dsn)
    port = parts.get("port")
    return {
        key: value
        for key, value in {
            "host": parts.get("host"),
            "port": int(port) if port else None,
            "user": parts.get("user"),
            "password": parts.get("password"),
            "database": parts.get("dbname"),
        }.items()
        if value is not None
    }
