"""fase1-executor: the decision worker. It decides; it never executes.

For a claimed batch of decision jobs it locks the entities' events (one statement), asks the pure state
machine (`pipeline.flow`) what comes next for each entity, then appends every decided event, completes every
job and commits in one pipeline: two round trips per batch, all in one transaction. The core trigger turns
an appended `job.<type>.required` into its job through the gateway. Two jobs of one entity in a batch are
decided once: the decision is a function of the events, and the second would find its answer already
appended.

A batch is decided by a background writer (`pipeline.worker.writers`) while the next is claimed. Two batches
in flight that share an entity are serialized by its row lock: the second reads the events the first
appended, so it decides on them, never beside them.
"""

from __future__ import annotations

import logging
import uuid
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
    writer_count = 2  # see pipeline.worker.writers for what was measured

    def step(self) -> bool:
        conn = self.work
        assert conn is not None
        jobs = self.claim(Q["claim"])
        if not jobs:
            return self.idle()
        self.failpoints.hit("fase1.after_claim")
        if self.stopping:
            for job in jobs:
                conn.execute(COMMON["release_job"], {"job_id": job["job_id"], "run_id": job["run_id"]})
            conn.commit()
            return self.idle()
        # The whole batch in one transaction (one commit instead of ten), entities locked in a fixed order so
        # two decision batches (two workers, or this worker's two writers) never deadlock.
        ordered = sorted(jobs, key=lambda job: (str(job["entity_id"]), job["job_id"]))
        return self.hand_off(lambda write: self._decide_batch(write, ordered), len(jobs) == self.config.batch)

    def _decide_batch(self, conn: psycopg.Connection[Any], jobs: list[dict[str, Any]]) -> int:
        """Decide a batch (a writer thread runs this); the number of jobs decided. If any decision fails, the
        batch is rolled back and replayed one job per transaction, so one bad job cannot hold the others back."""
        try:
            self._decide(conn, jobs)
            return len(jobs)
        except psycopg.OperationalError:
            raise
        except Exception:
            conn.rollback()
            return sum(self._decide_alone(conn, job) for job in jobs)

    def _decide(self, conn: psycopg.Connection[Any], jobs: list[dict[str, Any]]) -> None:
        """Decide a batch and commit it: lock and read, decide per entity, then append, complete and commit
        in one pipeline."""
        entity_ids = sorted({job["entity_id"] for job in jobs}, key=str)
        rows = conn.execute(Q["lock_entities_events"], {"entity_ids": entity_ids}).fetchall()
        events = {row["entity_id"]: row["events"] for row in rows}
        appended: dict[Any, list[tuple[str, uuid.UUID]]] = {}
        new_events = []
        for entity in entity_ids:
            for new in decide(events.get(entity) or []):
                event_id = uuid.uuid4()
                appended.setdefault(entity, []).append((new.type, event_id))
                new_events.append((entity, event_id, new))
        # The first job of each entity records what was appended; the others appended nothing.
        decided = [(job, appended.pop(job["entity_id"], [])) for job in jobs]
        with conn.pipeline():
            if new_events:
                conn.execute(
                    Q["append_events"],
                    {
                        "entity_ids": [entity for entity, _, _ in new_events],
                        "types": [new.type for _, _, new in new_events],
                        "payloads": [Jsonb(new.payload) for _, _, new in new_events],
                        "correlation_ids": [new.correlation_id for _, _, new in new_events],
                        "trace_ids": [new.trace_id for _, _, new in new_events],
                        "causation_ids": [new.causation_id for _, _, new in new_events],
                        "event_ids": [event_id for _, event_id, _ in new_events],
                    },
                )
            self._complete(conn, decided)
            self.failpoints.hit("fase1.before_commit")
            conn.commit()

    def _complete(
        self, conn: psycopg.Connection[Any], decided: list[tuple[dict[str, Any], list[Any]]]
    ) -> None:
        """Complete every decided job with one statement; each run records the first event it appended.

        No results are sent: complete_jobs keeps a result only for an execution job's completed event, never
        a decision's. Nor the event ids when no decision appended anything (a batch of no-op decisions). Each
        array costs the worker its dumping, per element (measured with cProfile: psycopg dumping the batch's
        arrays was the largest part of the worker's own CPU on no-op decisions)."""
        event_ids = [appended[0][1] if appended else None for _, appended in decided]
        conn.execute(
            COMMON["complete_jobs"],
            {
                "job_ids": [job["job_id"] for job, _ in decided],
                "run_ids": [job["run_id"] for job, _ in decided],
                "results": None,
                "result_event_ids": event_ids if any(event_ids) else None,
            },
        )

    def _decide_alone(self, conn: psycopg.Connection[Any], job: dict[str, Any]) -> int:
        try:
            self._decide(conn, [job])
            return 1
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
            return 0
