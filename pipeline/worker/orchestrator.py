"""orchestrator: the executor. It runs protect -> tsa -> anchor jobs; it never decides.

A batch is claimed (committed), the handlers run outside any transaction (their side effects are calls to
the external services, idempotent per job), and then every outcome is written in one transaction: for a
success, `complete_jobs` appends the canonical `job.<type>.completed` event and finishes the run and the job
together (one call for all of a batch's successes); for a failure, `fail_job` schedules a retry with backoff
or declares the job dead with its `job.<type>.failed` event. A worker whose lease expired meanwhile is fenced
off by the SQL.
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


class Orchestrator(Worker):
    role = "orchestrator"
    default_db_role = "pipeline_executor"
    channels = ("executor_jobs_execution",)

    def __init__(self, config: WorkerConfig, handlers: Mapping[str, Handler]) -> None:
        super().__init__(config)
        self.handlers = dict(handlers)

    def step(self) -> bool:
        conn = self.work
        assert conn is not None
        jobs = self.claim(Q["claim"])
        if not jobs:
            return False
        try:
            self.failpoints.hit("orchestrator.after_claim")
            outcomes = [self._execute(job) for job in jobs]
            self.failpoints.hit("orchestrator.after_side_effect")
            self._record(conn, outcomes)
        except psycopg.OperationalError:
            raise
        except Exception as exc:  # a failpoint raised between claim and commit: fail the batch, retryably
            conn.rollback()
            self._record(conn, [(job, "fail", (f"{type(exc).__name__}: {exc}", True)) for job in jobs])
        return len(jobs) == self.config.batch

    def _execute(self, job: dict[str, Any]) -> tuple[dict[str, Any], str, Any]:
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

    def _record(self, conn: psycopg.Connection[Any], outcomes: list[tuple[dict[str, Any], str, Any]]) -> None:
        """Write every outcome of the batch in one transaction, in one round trip.

        Every success goes into one `complete_jobs` call, which writes each table once for the whole batch;
        failures and releases are one statement each. A single statement is sent as its own transaction;
        several are pipelined inside BEGIN ... COMMIT, so the worker waits for the server once per batch.
        Nothing commits before the COMMIT (or, alone, before the statement leaves), so a crash at any
        failpoint here loses the batch's writes together.
        """
        statements = self._statements(outcomes)
        if len(statements) == 1:
            self.failpoints.hit("orchestrator.before_commit")
            self.alone(*statements[0])
            return
        with conn.pipeline():
            for statement in statements:
                conn.execute(*statement)
            self.failpoints.hit("orchestrator.before_commit")
            conn.commit()

    def _statements(
        self, outcomes: list[tuple[dict[str, Any], str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The statements that record a batch's outcomes; each outcome's failpoint is hit before any is sent."""
        done = [(job, data) for job, kind, data in outcomes if kind == "ok"]
        statements = []
        if done:
            for _ in done:
                self.failpoints.hit("orchestrator.before_result_event")
            self.jobs_done += len(done)
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
