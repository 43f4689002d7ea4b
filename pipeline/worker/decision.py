"""fase1-executor: the decision worker. It decides; it never executes.

For each claimed decision job it locks the entity's events, asks the pure state machine (`pipeline.flow`)
what comes next, appends those events and completes the job, all in one transaction. The core trigger turns
an appended `job.<type>.required` into its job through the gateway.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pipeline.flow import decide
from pipeline.sql import queries
from pipeline.worker.base import COMMON, Worker

log = logging.getLogger("pipeline.worker.decision")
Q = queries("decision")


class DecisionWorker(Worker):
    role = "fase1-executor"
    default_db_role = "pipeline_decider"
    channels = ("executor_jobs_decision",)

    def step(self) -> bool:
        conn = self.work
        assert conn is not None
        jobs = self.claim(Q["claim"])
        if not jobs:
            return False
        self.failpoints.hit("fase1.after_claim")
        if self.stopping:
            for job in jobs:
                conn.execute(COMMON["release_job"], {"job_id": job["job_id"], "run_id": job["run_id"]})
            conn.commit()
            return False
        # The whole batch in one transaction (one commit instead of ten), entities locked in a fixed order so
        # two decision workers never deadlock. If any decision fails, the batch is rolled back and replayed
        # one job per transaction, so one bad job cannot hold the others back.
        ordered = sorted(jobs, key=lambda job: (str(job["entity_id"]), job["job_id"]))
        try:
            self._complete(conn, [self._decide(conn, job) for job in ordered])
            self.failpoints.hit("fase1.before_commit")
            conn.commit()
            self.jobs_done += len(ordered)
        except psycopg.OperationalError:
            raise
        except Exception:
            conn.rollback()
            for job in ordered:
                self._decide_alone(conn, job)
        return len(jobs) == self.config.batch

    def _decide(self, conn: psycopg.Connection[Any], job: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        """Append what the flow needs next; return the job and the (type, id) of each appended event."""
        events = conn.execute(Q["lock_entity_events"], {"entity_id": job["entity_id"]}).fetchone()
        appended = []
        for new in decide((events or {}).get("lock_entity_events") or []):
            event_id = conn.execute(
                Q["append_event"],
                {
                    "entity_id": job["entity_id"],
                    "type": new.type,
                    "payload": Jsonb(new.payload),
                    "correlation_id": new.correlation_id,
                    "trace_id": new.trace_id,
                    "causation_id": new.causation_id,
                },
            ).fetchone()["append_event"]
            appended.append((new.type, event_id))
        return job, appended

    def _complete(
        self, conn: psycopg.Connection[Any], decided: list[tuple[dict[str, Any], list[Any]]]
    ) -> None:
        """Complete every decided job with one statement; each run records the first event it appended."""
        conn.execute(
            COMMON["complete_jobs"],
            {
                "job_ids": [job["job_id"] for job, _ in decided],
                "run_ids": [job["run_id"] for job, _ in decided],
                "results": [Jsonb({"appended": [t for t, _ in appended]}) for _, appended in decided],
                "result_event_ids": [appended[0][1] if appended else None for _, appended in decided],
            },
        )

    def _decide_alone(self, conn: psycopg.Connection[Any], job: dict[str, Any]) -> None:
        try:
            self._complete(conn, [self._decide(conn, job)])
            self.failpoints.hit("fase1.before_commit")
            conn.commit()
            self.jobs_done += 1
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            conn.rollback()
            log.warning("event=decision_failed job_id=%s error=%s", job["job_id"], exc)
            conn.execute(
                COMMON["fail_job"],
                {
                    "job_id": job["job_id"],
                    "run_id": job["run_id"],
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "retryable": True,
                },
            )
            conn.commit()
