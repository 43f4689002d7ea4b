"""orchestrator: the executor. It runs protect -> tsa -> anchor jobs; it never decides.

A batch is claimed (committed), the handlers run outside any transaction (their side effects are calls to
the external services, idempotent per job), and then every outcome is written in one transaction: for a
success, `complete_jobs` appends the canonical `job.<type>.completed` event and finishes the run and the job
together (one call for all of a batch's successes); for a failure, `fail_job` schedules a retry with backoff
or declares the job dead with its `job.<type>.failed` event. A worker whose lease expired meanwhile is fenced
off by the SQL.

The outcomes are written by background writers (`pipeline.worker.writers`) while the next batch is claimed
and run; at most two batches are being written at once. A partial batch (the queue ran dry) and a stopping
worker wait for every write, and a write's error surfaces in the step that collects it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pipeline.handlers import Handler, PoisonPayload
from pipeline.services.client import ServiceRejected
from pipeline.sql import queries
from pipeline.worker.base import COMMON, Worker, WorkerConfig

log = logging.getLogger("pipeline.worker.orchestrator")
Q = queries("orchestrator")
Outcome = tuple[dict[str, Any], str, Any]


class Orchestrator(Worker):
    role = "orchestrator"
    default_db_role = "pipeline_executor"
    channels = ("executor_jobs_execution",)
    writer_count = 2  # see pipeline.worker.writers for what was measured

    def __init__(self, config: WorkerConfig, handlers: Mapping[str, Handler]) -> None:
        super().__init__(config)
        self.handlers = dict(handlers)

    def step(self) -> bool:
        jobs = self.claim(Q["claim"])
        if not jobs:
            return self.idle()
        types = [job["job_type"] for job in jobs]
        try:
            self.failpoints.hit("orchestrator.after_claim", types)
            outcomes = [self._execute(job) for job in jobs]
            self.failpoints.hit("orchestrator.after_side_effect", types)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a failpoint raised between claim and commit: fail the batch, retryably
            outcomes = self._failed(jobs, exc)
        return self.hand_off(lambda conn: self._record_batch(conn, outcomes), len(jobs) == self.config.batch)

    def _record_batch(self, conn: psycopg.Connection[Any], outcomes: list[Outcome]) -> int:
        """Write a batch's outcomes (a writer thread runs this); the number of jobs completed."""
        try:
            return self._record(conn, outcomes)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a failpoint raised before the commit: fail the batch, retryably
            conn.rollback()
            return self._record(conn, self._failed([job for job, _, _ in outcomes], exc))

    @staticmethod
    def _failed(jobs: list[dict[str, Any]], exc: Exception) -> list[Outcome]:
        return [(job, "fail", (f"{type(exc).__name__}: {exc}", True)) for job in jobs]

    def _execute(self, job: dict[str, Any]) -> Outcome:
        if self.stopping:
            return job, "release", None
        handler = self.handlers.get(job["job_type"])
        if handler is None:
            return job, "fail", (f"no handler for job type {job['job_type']!r} in this orchestrator", False)
        try:
            return job, "ok", handler(job["job_id"], job["payload"])
        except (ServiceRejected, PoisonPayload) as exc:
            return job, "fail", (f"{type(exc).__name__}: {exc}", False)
        except Exception as exc:
            return job, "fail", (f"{type(exc).__name__}: {exc}", True)

    def _record(self, conn: psycopg.Connection[Any], outcomes: list[Outcome]) -> int:
        """Write every outcome of the batch in one transaction, in one round trip; the number of successes.

        Every success goes into one `complete_jobs` call, which writes each table once for the whole batch;
        failures and releases are one statement each. A single statement is sent as its own transaction;
        several are pipelined inside BEGIN ... COMMIT, so the worker waits for the server once per batch.
        Nothing commits before the COMMIT (or, alone, before the statement leaves), so a crash at any
        failpoint here loses the batch's writes together.
        """
        statements = self._statements(outcomes)
        types = [job["job_type"] for job, _, _ in outcomes]
        if len(statements) == 1:
            self.failpoints.hit("orchestrator.before_commit", types)
            self.alone(*statements[0], conn=conn)
        else:
            with conn.pipeline():
                for statement in statements:
                    conn.execute(*statement)
                self.failpoints.hit("orchestrator.before_commit", types)
                conn.commit()
        return sum(kind == "ok" for _, kind, _ in outcomes)

    def _statements(self, outcomes: list[Outcome]) -> list[tuple[str, dict[str, Any]]]:
        """The statements that record a batch's outcomes; each outcome's failpoint is hit before any is sent."""
        done = [(job, data) for job, kind, data in outcomes if kind == "ok"]
        statements = []
        if done:
            for job, _ in done:
                self.failpoints.hit("orchestrator.before_result_event", (job["job_type"],))
            statements.append(
                (
                    COMMON["complete_jobs"],
                    {
                        "job_ids": [job["job_id"] for job, _ in done],
                        "run_ids": [job["run_id"] for job, _ in done],
                        "results": [Jsonb(data) for _, data in done],
                        "result_event_ids": [None] * len(done),
                    },
                )
            )
        for job, kind, data in outcomes:
            ids = {"job_id": job["job_id"], "run_id": job["run_id"]}
            if kind == "fail":
                error, retryable = data
                log.info("event=job_failed job_id=%s retryable=%s error=%s", job["job_id"], retryable, error)
                statements.append(
                    (COMMON["fail_job"], {**ids, "error": error[:2000], "retryable": retryable})
                )
            elif kind == "release":
                statements.append((COMMON["release_job"], ids))
        return statements
