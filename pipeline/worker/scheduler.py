"""scheduler: it only wakes. Jobs that become ready by time alone (a retry whose backoff ended, a lease that
expired) make no NOTIFY of their own, so the scheduler looks for them and notifies the role that claims them.
It never decides and never executes."""

from __future__ import annotations

from pipeline.sql import queries
from pipeline.worker.base import Worker

Q = queries("scheduler")


class Scheduler(Worker):
    role = "scheduler"
    default_db_role = "pipeline_scheduler"

    def step(self) -> bool:
        assert self.side is not None
        for row in self.side.execute(Q["due_kinds"]).fetchall():
            self.side.execute(Q["wake"], {"kind": row[0]})
        return False
