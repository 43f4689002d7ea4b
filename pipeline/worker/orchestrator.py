"""orchestrator: the executor. It runs protect -> tsa -> anchor jobs; it never decides.

A batch is claimed (committed), the handlers run outside any transaction (their side effects are calls to
the external services, idempotent per job), and then every outcome is written in one transaction: for a
success, `complete_job` appends the canonical `job.<type>.completed` event and finishes the run and the job
together; for a failure, `fail_job` schedules a retry with backoff or declares the job dead with its
`job.<type>.failed` event. A worker whose lease expired meanwhile is fenced off by the SQL.
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

        One outcome is one statement, sent as its own transaction. Several are pipelined inside BEGIN ...
        COMMIT, so the worker waits for the server once per batch rather than once per job. Nothing commits
        before the COMMIT (or, alone, before the statement leaves), so a crash at any failpoint here loses
        the batch's writes together.
        """
        if len(outcomes) == 1:
            statement = self._statement(*outcomes[0])
            self.failpoints.hit("orchestrator.before_commit")
            self.alone(*statement)
            return
        with conn.pipeline():
            for outcome in outcomes:
                conn.execute(*self._statement(*outcome))
            self.failpoints.hit("orchestrator.before_commit")
            conn.commit()

    def _statement(self, job: dict[str, Any], kind: str, data: Any) -> tuple[str, dict[str, Any]]:
        """The statement that records one outcome; its failpoint is hit before it is sent."""
        ids = {"job_id": job["job_id"], "run_id": job["run_id"]}
        if kind == "ok":
            self.failpoints.hit("orchestrator.before_result_event")
            self.jobs_done += 1
            return COMMON["complete_job"], {**ids, "result": Jsonb(data), "result_event_id": None}
        if kind == "fail":
            error, retryable = data
            log.info("event=job_failed job_id=%s retryable=%s error=%s", job["job_id"], retryable, error)
            return COMMON["fail_job"], {**ids, "error": error[:2000], "retryable": retryable}
        return COMMON["release_job"], ids
