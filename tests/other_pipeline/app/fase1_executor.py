"""fase1-executor: the decision worker. It decides; it never executes.

Each decision job names the event it was born from (a request, or an execution job's outcome). The worker
locks the entity's row, reads its whole history, and `decide` says which events (if any) come next; they
are appended and the job completed in that one transaction, so the decision and its consequences commit
together or not at all. Deciding again on the same history appends nothing, which is what makes a
duplicated request, a replayed event or a re-run decision harmless: one flow per document.

    python fase1_executor.py --dsn DSN [--batch N] [--poll S]
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from common import Lifecycle, first_line, listen, serve, setup
from psycopg.types.json import Jsonb

ROLE = "fase1-executor"
REQUEST = "document.protect.requested"
CLOSING = ("document.anchored", "document.failed")
NEXT_STEP = {"protect": "tsa", "tsa": "anchor"}
COMPAT_MARKER = "legacy_redirect"  # set by the gateway guard on a redirected legacy insert
OUTCOME = re.compile(r"^job\.([a-z0-9_]+)\.(completed|failed)$")
REQUIRED = re.compile(r"^job\.([a-z0-9_]+)\.required$")

Event = Mapping[str, Any]


def decide(history: Sequence[Event], source_id: str) -> list[dict[str, Any]]:
    """The events that follow from the event `source_id`, given the entity's whole history.

    The flow is the entity's first request: protect -> tsa -> anchor, then document.anchored; a dead step
    closes it as document.failed. A second request, an outcome of a job the compat guard redirected, an
    outcome on an entity with no request, or anything on a closed flow asks for nothing. A step already
    asked for is never asked for again."""
    seen: dict[str, Event] = {}
    for event in history:
        seen.setdefault(str(event.get("id")), event)
    events = list(seen.values())
    source = seen.get(source_id)
    request = next((e for e in events if e.get("type") == REQUEST), None)
    if source is None or request is None or any(e.get("type") in CLOSING for e in events):
        return []
    asked = {
        m.group(1)
        for e in events
        if (m := REQUIRED.match(str(e.get("type")))) and COMPAT_MARKER not in (e.get("payload") or {})
    }
    if source.get("type") == REQUEST:
        if str(source.get("id")) != str(request.get("id")) or "protect" in asked:
            return []
        return [
            _follow(
                source, "job.protect.required", {"document": (request.get("payload") or {}).get("document")}
            )
        ]
    match = OUTCOME.match(str(source.get("type")))
    if not match:
        return []
    cause = seen.get(str(source.get("causation_id")))
    if cause is not None and COMPAT_MARKER in (cause.get("payload") or {}):
        return []  # a side path: the legacy insert's job, not this flow's step
    step, outcome = match.groups()
    result = source.get("payload") or {}
    if outcome == "failed":
        return [_follow(source, "document.failed", {"step": step, "error": result.get("error")})]
    if step == "anchor":
        return [_follow(source, "document.anchored", {"receipt": result.get("receipt")})]
    following = NEXT_STEP.get(step)
    if following is None or following in asked:
        return []
    carried = {k: result[k] for k in ("digest", "token") if k in result}
    return [_follow(source, f"job.{following}.required", carried)]


def _follow(source: Event, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "correlation_id": source.get("correlation_id"),
        "trace_id": source.get("trace_id"),
        "causation_id": str(source.get("id")),
        "payload": payload,
    }


class DecisionWorker:
    def __init__(self, life: Lifecycle, batch: int) -> None:
        self.life = life
        self.batch = batch

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        jobs = conn.execute(
            "SELECT job_id, entity_id, attempt, max_attempts, source_event_id "
            "FROM claim_initial_decision_jobs(%s, %s)",
            (self.life.name, self.batch),
        ).fetchall()
        for index, (job_id, entity_id, attempt, max_attempts, source_event_id) in enumerate(jobs):
            if self.life.stop.is_set():
                for rest in jobs[index:]:
                    conn.execute("SELECT release_job(%s, %s, %s)", (rest[0], rest[2], self.life.name))
                break
            if attempt > max_attempts:
                self.fail(conn, job_id, attempt, f"gave up after {attempt - 1} attempts", permanent=True)
                continue
            try:
                with conn.transaction():
                    (history,) = conn.execute(
                        "SELECT events FROM document_entities WHERE id = %s FOR UPDATE", (entity_id,)
                    ).fetchone()
                    follow = decide(history, str(source_event_id))
                    (held,) = conn.execute(
                        "SELECT complete_job(%s, %s, %s, %s)",
                        (job_id, attempt, self.life.name, Jsonb(follow)),
                    ).fetchone()
                    if not held:
                        raise Fenced
            except Fenced:
                self.life.log.info("job %s: lease lost before completing attempt %s", job_id, attempt)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the lease brings the job back
            except Exception as exc:  # a decision that cannot be made now: retried with backoff
                self.life.log.exception("job %s attempt %s failed", job_id, attempt)
                self.fail(conn, job_id, attempt, first_line(exc), permanent=False)
        return bool(jobs)

    def fail(
        self, conn: psycopg.Connection[Any], job_id: int, attempt: int, error: str, permanent: bool
    ) -> None:
        conn.execute(
            "SELECT fail_job(%s, %s, %s, %s, %s)", (job_id, attempt, self.life.name, error, permanent)
        )


class Fenced(Exception):
    """The job is no longer ours (its lease expired and another attempt holds it): roll back."""


def main(argv: Sequence[str] | None = None) -> None:
    args = setup(ROLE, argv)
    life = Lifecycle(ROLE)
    listen(life, args.dsn, ["decision_jobs"])
    serve(life, args.dsn, args.poll, DecisionWorker(life, args.batch).step)
    life.log.info("stopped")


if __name__ == "__main__":
    main()
