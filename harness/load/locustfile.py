"""The Locust workload of `harness load`: each Locust user is a client of the pipeline that requests the
protection of new documents through the SQL contract's `request_protection`, one flow per call.

Locust has no Postgres client, so each user holds one psycopg connection and reports every call to Locust's
statistics itself (`events.request.fire`), which is how Locust documents non-HTTP users. Psycopg 3 cooperates
with the gevent loop Locust runs its users on (from 3.1.14), so a user waiting on the server yields to the
others. Every call is a new entity owned by `--pg-owner`, so `harness load` finds what was requested in the
database afterwards, whichever process (or machine) sent it.

Distributed: run this file with the plain `locust` command on other machines as workers of a `harness load
--expect-workers N` master (their `--pg-dsn` must reach the same server):

    locust -f "$(python -c 'import harness, pathlib; print(pathlib.Path(harness.__file__).with_name("locustfile.py"))')" \\
        --worker --master-host MASTER --pg-dsn DSN
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from locust import User, constant_throughput, events, task

OWNER = "harness-load"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--pg-dsn", env_var="HARNESS_LOAD_DSN", default="", help="the pipeline's database")
    parser.add_argument("--pg-owner", default=OWNER, help="owner of every requested document")
    parser.add_argument(
        "--pg-request",
        env_var="HARNESS_LOAD_REQUEST",
        default="",
        help="the pipeline's entry statement (%%(entity_id)s, %%(document)s, %%(owner)s, %%(event_id)s)",
    )
    parser.add_argument(
        "--pg-rate", type=float, default=0.0, help="flows/s each user requests (0: as fast as it can)"
    )


@events.test_start.add_listener
def _check_dsn(environment: Any, **_: Any) -> None:
    if not environment.parsed_options.pg_dsn:
        raise SystemExit("harness locustfile: pass --pg-dsn DSN (or set HARNESS_LOAD_DSN)")
    if not environment.parsed_options.pg_request:
        raise SystemExit("harness locustfile: pass --pg-request SQL (or set HARNESS_LOAD_REQUEST)")


class SqlError(Exception):
    """A failed call as Locust reports it: SQLSTATE and the server's first line."""


class PipelineUser(User):
    """One client of the pipeline: a connection, and a request for a new flow at each task."""

    def wait_time(self) -> float:
        rate = self.environment.parsed_options.pg_rate
        return constant_throughput(rate)(self) if rate > 0 else 0.0

    def on_start(self) -> None:
        self.conn: psycopg.Connection[Any] | None = None

    def on_stop(self) -> None:
        if self.conn is not None:
            self.conn.close()

    @task
    def request_protection(self) -> None:
        options = self.environment.parsed_options
        entity = str(uuid.uuid4())
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(options.pg_dsn, autocommit=True, connect_timeout=5)
            self.conn.execute(
                options.pg_request,
                {
                    "entity_id": entity,
                    "document": f"document {entity}",
                    "owner": options.pg_owner,
                    "event_id": None,
                },
                prepare=True,
            )
        except psycopg.Error as exc:
            # Locust files each failure under its message: the first line, not the server's CONTEXT lines.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            error = SqlError(f"{exc.sqlstate or type(exc).__name__}: {first}")
            if self.conn is not None and self.conn.broken:
                self.conn = None
        self.environment.events.request.fire(
            request_type="sql",
            name="request_protection",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )
