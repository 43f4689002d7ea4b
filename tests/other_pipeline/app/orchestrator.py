"""orchestrator: executes protect -> tsa -> anchor; it never decides what comes next.

Claimed jobs run in a thread pool (tsa and anchor wait on HTTP services, so one slow call must not hold
up the rest); the pool's threads never touch the database. The main thread settles each finished job in
one statement: `complete_job` appends the canonical job.<type>.completed (payload.job_id) and completes the
job and its attempt together, or `fail_job` schedules a retry with backoff or, when the attempts are used
up or the payload cannot be processed, ends the job dead with job.<type>.failed.

The external calls carry the job's idempotency key, so a job run twice (its worker died after the call,
its lease expired) gets the same token and receipt: the side effect happens once, the result is told once.

    python orchestrator.py --dsn DSN --tsa URL --ledger URL [--batch N] [--poll S] [--concurrency K]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import psycopg
from common import GRACE_S, Lifecycle, connect, first_line, listen, serve, setup
from psycopg.types.json import Jsonb

ROLE = "orchestrator"
HTTP_TIMEOUT_S = 5.0


class Permanent(Exception):
    """A job that no retry can help (its payload cannot be processed): it dies at once."""


@dataclass(frozen=True)
class Job:
    job_id: int
    job_type: str
    entity_id: uuid.UUID
    attempt: int
    max_attempts: int
    payload: dict[str, Any]
    source_event_id: uuid.UUID
    correlation_id: str | None
    trace_id: str | None

    @property
    def key(self) -> str:
        """The idempotency key of the job's external call: the same on every attempt."""
        return f"other-pipeline-job-{self.job_id}"


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any] | None = None
    error: str | None = None
    permanent: bool = False


class Services:
    def __init__(self, tsa_url: str, ledger_url: str) -> None:
        self.tsa_url = tsa_url.rstrip("/")
        self.ledger_url = ledger_url.rstrip("/")

    def post(self, base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                raise Permanent(f"{base}{path} refused the job: HTTP {exc.code}") from exc
            raise


def _text(job: Job, field: str) -> str:
    value = job.payload.get(field)
    if not isinstance(value, str) or not value:
        raise Permanent(f"payload.{field} is {json.dumps(value)}, not a non-empty string")
    return value


def protect(job: Job, services: Services) -> dict[str, Any]:
    return {"digest": hashlib.sha256(_text(job, "document").encode()).hexdigest()}


def tsa(job: Job, services: Services) -> dict[str, Any]:
    digest = _text(job, "digest")
    answer = services.post(
        services.tsa_url, "/timestamp", {"key": job.key, "job_id": job.job_id, "digest": digest}
    )
    return {"digest": digest, "token": answer["token"]}


def anchor(job: Job, services: Services) -> dict[str, Any]:
    body = {
        "key": job.key,
        "job_id": job.job_id,
        "digest": _text(job, "digest"),
        "token": _text(job, "token"),
    }
    return {"receipt": services.post(services.ledger_url, "/anchor", body)["receipt"]}


HANDLERS = {"protect": protect, "tsa": tsa, "anchor": anchor}


def execute(job: Job, services: Services) -> Outcome:
    """Run one job's side effect (in a pool thread): a result, or an error and whether it is permanent."""
    handler = HANDLERS.get(job.job_type)
    if handler is None:
        return Outcome(error=f"no handler for job type {job.job_type!r}", permanent=True)
    try:
        return Outcome(result=handler(job, services))
    except Permanent as exc:
        return Outcome(error=str(exc), permanent=True)
    except Exception as exc:  # the service is down, slow or failing: retried with backoff
        return Outcome(error=f"{type(exc).__name__}: {first_line(exc)}")


class Orchestrator:
    def __init__(self, life: Lifecycle, services: Services, batch: int, concurrency: int) -> None:
        self.life = life
        self.services = services
        self.batch = batch
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="job")
        self.running: dict[Future[Outcome], Job] = {}
        self.finished: list[tuple[Job, Outcome]] = []  # executed, not yet settled in the database

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        did = self.settle(conn)
        free = self.concurrency - len(self.running)
        if free <= 0 or self.life.stop.is_set():
            return did
        rows = conn.execute(
            "SELECT job_id, job_type, entity_id, attempt, max_attempts, payload, source_event_id, correlation_id, "
            "trace_id FROM claim_orchestrator_jobs(%s, %s)",
            (self.life.name, min(self.batch, free)),
        ).fetchall()
        for row in rows:
            job = Job(*row)
            if job.attempt > job.max_attempts:
                self.finished.append(
                    (job, Outcome(error=f"gave up after {job.attempt - 1} attempts", permanent=True))
                )
                continue
            future = self.pool.submit(execute, job, self.services)
            self.running[future] = job
            future.add_done_callback(lambda _f: self.life.wake.set())
        return did or bool(rows)

    def settle(self, conn: psycopg.Connection[Any]) -> bool:
        for future in [f for f in self.running if f.done()]:
            self.finished.append((self.running.pop(future), future.result()))
        settled = False
        while self.finished:
            job, outcome = self.finished[0]
            if outcome.result is not None:
                event_id = str(uuid.uuid4())
                event = {
                    "id": event_id,
                    "type": f"job.{job.job_type}.completed",
                    "correlation_id": job.correlation_id,
                    "trace_id": job.trace_id,
                    "causation_id": str(job.source_event_id),
                    "payload": {"job_id": job.job_id, **outcome.result},
                }
                (held,) = conn.execute(
                    "SELECT complete_job(%s, %s, %s, %s, %s)",
                    (job.job_id, job.attempt, self.life.name, Jsonb([event]), event_id),
                ).fetchone()
                state = "succeeded" if held else "fenced"
            else:
                (state,) = conn.execute(
                    "SELECT fail_job(%s, %s, %s, %s, %s)",
                    (job.job_id, job.attempt, self.life.name, outcome.error, outcome.permanent),
                ).fetchone()
            if state != "succeeded":
                self.life.log.info(
                    "job %s (%s) attempt %s: %s %s",
                    job.job_id,
                    job.job_type,
                    job.attempt,
                    state,
                    outcome.error or "(lease lost before completing)",
                )
            self.finished.pop(0)
            settled = True
        return settled

    def shutdown(self, dsn: str) -> None:
        """Graceful stop: let running calls finish and settle them; give back whatever is left."""
        wait(list(self.running), timeout=GRACE_S / 2)
        try:
            with connect(dsn, self.life.name) as conn:
                self.settle(conn)
                for job in self.running.values():
                    conn.execute("SELECT release_job(%s, %s, %s)", (job.job_id, job.attempt, self.life.name))
        except psycopg.Error as exc:
            self.life.log.warning(
                "could not settle at stop (%s): the leases will bring the jobs back", first_line(exc)
            )
        self.pool.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tsa", required=True, help="base URL of the timestamp authority")
        parser.add_argument("--ledger", required=True, help="base URL of the anchoring ledger")
        parser.add_argument("--concurrency", type=int, default=16, help="jobs executing at once")

    args = setup(ROLE, None, options)
    life = Lifecycle(ROLE)
    orchestrator = Orchestrator(life, Services(args.tsa, args.ledger), args.batch, args.concurrency)
    listen(life, args.dsn, ["execution_jobs"])
    serve(life, args.dsn, args.poll, orchestrator.step)
    orchestrator.shutdown(args.dsn)
    life.log.info("stopped")


if __name__ == "__main__":
    main()
