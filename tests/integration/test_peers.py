"""The pgqueuer peer baseline of `harness bench` runs for real on the same server and leaves nothing behind."""

from __future__ import annotations

import psycopg
import pytest

from harness.peers import pgqueuer_available, pgqueuer_rates
from harness.provision import EmbeddedPostgres

pytestmark = pytest.mark.skipif(
    not pgqueuer_available(), reason="the peers extra is not installed: pip install -e '.[peers]'"
)


def test_pgqueuer_drains_its_jobs_in_a_scratch_database_it_drops(pg: EmbeddedPostgres) -> None:
    rates = pgqueuer_rates(pg, jobs=200, batches=(1, 10))
    assert set(rates) == {1, 10}
    assert all(rate > 0 for rate in rates.values())
    with psycopg.connect(pg.admin_dsn()) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'harness_peer_%'").fetchall()
    assert left == []
