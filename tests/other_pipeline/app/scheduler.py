"""scheduler: only wakes the workers. It claims nothing, runs nothing, writes nothing but NOTIFY.

The gateway already NOTIFYs when it materializes a job. What no insert announces is time passing: a retry
whose backoff has run out, a lease that expired (its worker died), a ready job whose notification was lost
(its worker was reconnecting). The scheduler looks for those, NOTIFYs the channel of their kind, and sleeps
until the next one is due (at most a second). The workers also poll, so the pipeline survives without it;
with it, a due retry starts within milliseconds instead of a poll interval.

    python scheduler.py --dsn DSN
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from common import Lifecycle, serve, setup

ROLE = "scheduler"
MIN_SLEEP_S = 0.1
MAX_SLEEP_S = 1.0

DUE = """
SELECT t.kind,
       count(*) FILTER (WHERE (j.status = 'retrying' AND j.run_at <= clock_timestamp())
                           OR (j.status = 'running' AND j.lease_expires_at < clock_timestamp())
                           OR (j.status = 'queued' AND j.run_at < clock_timestamp() - interval '1 second')) AS due,
       extract(epoch FROM least(min(j.run_at) FILTER (WHERE j.status = 'retrying' AND j.run_at > clock_timestamp()),
                                min(j.lease_expires_at) FILTER (WHERE j.status = 'running'))
                          - clock_timestamp()) AS next_in_s
  FROM executor_jobs j JOIN job_types t ON t.name = j.job_type
 WHERE j.status IN ('queued', 'retrying', 'running')
 GROUP BY t.kind
"""


class Scheduler:
    def __init__(self, life: Lifecycle) -> None:
        self.life = life

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        pause = MAX_SLEEP_S
        for kind, due, next_in_s in conn.execute(DUE).fetchall():
            if due:
                conn.execute("SELECT pg_notify(%s, '')", (f"{kind}_jobs",))
                pause = min(pause, 0.2)  # not claimed yet (its worker may be down): look again soon
            if next_in_s is not None:
                pause = min(pause, max(float(next_in_s), 0.0))
        self.life.sleep(max(pause, MIN_SLEEP_S))
        return True


def main(argv: Sequence[str] | None = None) -> None:
    args = setup(ROLE, argv)
    life = Lifecycle(ROLE)
    serve(life, args.dsn, args.poll, Scheduler(life).step)
    life.log.info("stopped")


if __name__ == "__main__":
    main()
