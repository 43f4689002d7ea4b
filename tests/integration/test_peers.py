"""The pgqueuer peer baseline of `harness bench` runs for real on the same server and leaves nothing behind."""

from __future__ import annotations

import psycopg
import pytest

from harness.perf.peers import pgqueuer_available, pgqueuer_drain
from harness.provision import EmbeddedPostgres

pytestmark = pytest.mark.skipif(
    not pgqueuer_available(), reason="the peers extra is not installed: pip install -e '.[peers]'"
)


def test_pgqueuer_drains_its_jobs_in_a_scratch_database_it_drops(pg: EmbeddedPostgres) -> None:
    for batch in (1, 10):
        drain = pgqueuer_drain(pg, jobs=400, batch=batch)  # it raises unless all 400 ran
        assert drain.jobs_per_s > 0
        assert drain.cpu_us_per_job is not None and drain.cpu_us_per_job > 0, drain
    with psycopg.connect(pg.admin_dsn()) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'harness_peer_%'").fetchall()
    assert left == []
