"""The KPI event_to_job_gap in SQL against the same gaps computed independently, in Python, from raw rows:
every entity's events and every job, with no pruning and no index (so the SQL's updated_at pruning and its
dedupe-key join are checked too)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import psycopg

from tests.observability.conftest import Conn, db_now, request

REQUIRED = re.compile(r"^job\.([a-z][a-z0-9_]*)\.required$")


def replica_append(conn: Conn, entity: str, event_type: str) -> None:
    """Append the way a writer with session_replication_role = replica does: no trigger, so no job."""
    with psycopg.connect(conn.info.dsn, autocommit=True) as writer:
        writer.execute("SET session_replication_role = replica")
        writer.execute("SELECT append_event(%s, %s, '{}')", (entity, event_type))


def gaps_in_python(conn: Conn, now: dt.datetime, window_s: float) -> set[tuple[Any, ...]]:
    settings = dict(conn.execute("SELECT key, value FROM pipeline_settings").fetchall())
    jobs = {
        key: (job_id, created)
        for key, job_id, created in conn.execute("SELECT dedupe_key, id, created_at FROM executor_jobs")
    }
    found = set()
    for entity, events in conn.execute("SELECT id, events FROM document_entities").fetchall():
        seen: set[str] = set()
        for event in events:
            match = REQUIRED.match(event["type"])
            if not match or event["id"] in seen:
                continue
            seen.add(event["id"])
            at = dt.datetime.fromisoformat(event["at"])
            if not (now - dt.timedelta(seconds=window_s) < at <= now):
                continue
            job_type = match.group(1)
            delta = float(settings.get(f"gap_delta_s.{job_type}", settings["gap_delta_s_default"]))
            job_id, created = jobs.get(f"{entity}:{job_type}:{event['id']}", (None, None))
            if created is not None and created > now:
                job_id, created = None, None
            if created is not None:
                gap = (created - at).total_seconds()
                status = "late" if gap > delta else "materialized"
            else:
                gap = None
                status = "breached" if (now - at).total_seconds() > delta else "pending"
            found.add(
                (str(entity), event["id"], job_type, job_id, None if gap is None else round(gap, 6), status)
            )
    return found


def gaps_in_sql(conn: Conn, now: dt.datetime, window_s: float) -> set[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT entity_id, event_id, job_type, job_id, gap_s, status FROM event_to_job_gaps(%s, %s)",
        (window_s, now),
    ).fetchall()
    return {(str(e), str(ev), t, j, None if g is None else round(g, 6), s) for e, ev, t, j, g, s in rows}


def percentile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_gap_view_matches_gaps_computed_from_raw_rows(fast: Conn) -> None:
    fast.execute("INSERT INTO pipeline_settings (key, value) VALUES ('gap_delta_s.tsa', '30')")
    entities = [request(fast) for _ in range(6)]
    for entity in entities[:3]:  # materialized by the core trigger, within Delta
        fast.execute("SELECT append_event(%s, 'job.protect.required', '{}')", (entity,))
    replica_append(fast, entities[3], "job.protect.required")  # never materialized: a breach once old enough
    replica_append(fast, entities[4], "job.tsa.required")  # never materialized, but tsa's Delta is 30 s
    replica_append(fast, entities[5], "job.anchor.required")  # materialized late, by the replay
    assert fast.execute("SELECT replay_unmaterialized_events(600)").fetchone()[0] >= 3
    fast.execute(  # undo the replay for entities 3 and 4, and make 5's job late
        "DELETE FROM executor_jobs WHERE materialized_via = 'replay' AND entity_id = ANY(%s::uuid[])",
        (entities[3:5],),
    )
    fast.execute(
        "UPDATE executor_jobs SET created_at = created_at + interval '5 s' "
        "WHERE materialized_via = 'replay' AND job_type = 'anchor'"
    )
    now = db_now(fast)
    for offset, window in ((0.0, 60.0), (3.0, 60.0), (6.0, 60.0), (40.0, 60.0), (6.0, 0.5), (120.0, 60.0)):
        at = now + dt.timedelta(seconds=offset)
        expected = gaps_in_python(fast, at, window)
        assert gaps_in_sql(fast, at, window) == expected, (offset, window)
    at = now + dt.timedelta(seconds=6)
    statuses = sorted(row[-1] for row in gaps_in_python(fast, at, 60))
    assert statuses == ["breached", "late", "materialized", "materialized", "materialized", "pending"]
    gaps = [row[4] for row in gaps_in_python(fast, at, 60) if row[4] is not None]
    stats = fast.execute(
        "SELECT p50_s, p95_s, p99_s, max_s, breached, late FROM event_to_job_gap_stats(60, %s)", (at,)
    ).fetchone()
    for got, q in zip(stats[:3], (0.5, 0.95, 0.99), strict=True):
        assert abs(got - percentile_cont(gaps, q)) < 1e-5
    assert abs(stats[3] - max(gaps)) < 1e-5
    assert stats[4:] == (1, 1)
    breaches = fast.execute("SELECT entity_id::text FROM event_to_job_gap_breaches(60, %s)", (at,)).fetchall()
    assert breaches == [(entities[3],)]


def test_gap_series_buckets_cover_the_window(fast: Conn) -> None:
    entity = request(fast)
    fast.execute("SELECT append_event(%s, 'job.protect.required', '{}')", (entity,))
    rows = fast.execute("SELECT bucket_start, events FROM event_to_job_gap_series(60, 10)").fetchall()
    assert 6 <= len(rows) <= 7
    assert sum(r[1] for r in rows) == 1
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
