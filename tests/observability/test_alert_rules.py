"""Each alert rule, in logical time (`evaluate_alerts(p_now)`), under the fast profile: its planted condition
makes it pending and then firing within `for` + two evaluation intervals, and healing resolves it. No
worker runs here, so worker_role_absent fires in the background of every test; each test looks at its own
rule only."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.observability.conftest import Conn, db_now, evaluate, history, labels_key, request


def rule_numbers(conn: Conn, rule: str) -> tuple[float, float, float]:
    """(interval, for_s, threshold) of a rule under the settings in force."""
    interval = float(conn.execute("SELECT pipeline_setting('monitor_interval_s')").fetchone()[0])
    for_s, threshold = conn.execute(
        "SELECT for_s, threshold FROM alert_rules_current WHERE name = %s", (rule,)
    ).fetchone()
    return interval, for_s, threshold


def check_life(
    conn: Conn,
    rule: str,
    plant: Callable[[], None],
    heal: Callable[[], None],
    *,
    holds_after_s: float = 0.0,
    heal_takes_s: float = 0.0,
    labels: dict[str, str] | None = None,
) -> list[tuple[float, str]]:
    """Plant, evaluate every interval from the moment the condition holds, heal, evaluate again.

    `holds_after_s`: logical seconds after planting until the condition is true (a Delta, an age);
    `heal_takes_s`: logical seconds after healing until the condition is false (a window rolling by)."""
    interval, for_s, _ = rule_numbers(conn, rule)
    t0 = db_now(conn)
    plant()
    steps = int((for_s + 2 * interval) / interval) + 1
    seen = []
    for k in range(steps):
        offset = holds_after_s + 0.001 + k * interval
        state = evaluate(conn, t0 + dt.timedelta(seconds=offset)).get(
            (rule, labels_key(labels)), ("absent",)
        )[0]
        seen.append((offset, state))
        if state == "firing":
            break
    states = [s for _, s in seen]
    assert "firing" in states, f"{rule} did not fire within for + 2 intervals: {seen}"
    assert "pending" in states and states.index("pending") < states.index("firing"), seen
    fired_offset = seen[states.index("firing")][0]
    assert fired_offset - holds_after_s <= for_s + 2 * interval + 0.01
    heal()
    later = t0 + dt.timedelta(seconds=fired_offset + heal_takes_s + interval)
    state = evaluate(conn, later).get((rule, labels_key(labels)), ("absent",))[0]
    assert state in ("inactive", "absent"), f"{rule} still {state} after healing"
    transitions = [(f, t) for f, t, _ in history(conn, rule, labels)]
    assert transitions == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")], (
        transitions
    )
    return seen


def test_core_trigger_disabled_fires_and_resolves(fast: Conn) -> None:
    check_life(
        fast,
        "core_trigger_disabled",
        lambda: fast.execute(
            "ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change"
        ),
        lambda: fast.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change"),
    )
    value = fast.execute("SELECT value FROM alert_history WHERE to_state = 'firing'").fetchone()[0]
    assert value == 0  # the triggering value is recorded with the transition


@pytest.mark.parametrize(
    ("ddl", "enabled"),
    [
        ("ALTER TABLE document_entities ENABLE REPLICA TRIGGER on_document_entity_events_change", 0),
        ("ALTER TABLE document_entities ENABLE ALWAYS TRIGGER on_document_entity_events_change", 1),
        ("DROP TRIGGER on_document_entity_events_change ON document_entities", 0),
    ],
)
def test_core_trigger_state_as_the_metric_sees_it(conn: Conn, ddl: str, enabled: int) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(ddl)
        assert conn.execute("SELECT core_trigger_enabled()").fetchone()[0] == enabled


def test_gap_breach_fires_for_a_replica_mode_writer_the_catalog_calls_enabled(fast: Conn) -> None:
    entity = request(fast)
    delta = float(fast.execute("SELECT gap_delta_s('protect')").fetchone()[0])

    def plant() -> None:  # a writer session that skips triggers while pg_trigger still says enabled
        with psycopg.connect(fast.info.dsn, autocommit=True) as writer:
            writer.execute("SET session_replication_role = replica")
            writer.execute("SELECT append_event(%s, 'job.protect.required', '{}')", (entity,))
        assert fast.execute("SELECT core_trigger_enabled()").fetchone()[0] == 1

    check_life(
        fast,
        "event_to_job_gap_breached",
        plant,
        lambda: fast.execute("SELECT replay_unmaterialized_events(600)"),
        holds_after_s=delta,
    )
    breach = fast.execute("SELECT value FROM alert_history WHERE to_state = 'firing'").fetchone()[0]
    assert breach == 1


def test_backlog_ready_jobs_fires_and_resolves(fast: Conn) -> None:
    _, _, threshold = rule_numbers(fast, "backlog_ready_jobs")

    def plant() -> None:
        with fast.cursor() as cur:
            cur.executemany(
                "SELECT request_protection(%s, 'doc')",
                [(str(uuid.uuid4()),) for _ in range(int(threshold) + 1)],
            )

    check_life(
        fast,
        "backlog_ready_jobs",
        plant,
        lambda: fast.execute(
            "UPDATE executor_jobs SET status = 'succeeded', finished_at = clock_timestamp()"
        ),
    )


def test_backlog_oldest_age_fires_and_resolves(fast: Conn) -> None:
    _, _, threshold = rule_numbers(fast, "backlog_oldest_age")
    check_life(
        fast,
        "backlog_oldest_age",
        lambda: request(fast),
        lambda: fast.execute(
            "UPDATE executor_jobs SET status = 'succeeded', finished_at = clock_timestamp()"
        ),
        holds_after_s=threshold + 0.1,
    )


def _failed_runs(conn: Conn, count: int, outcome: str = "failed") -> None:
    request(conn)
    job = conn.execute("SELECT id FROM executor_jobs ORDER BY id LIMIT 1").fetchone()[0]
    for attempt in range(count):
        conn.execute(
            "INSERT INTO executor_job_runs (job_id, attempt, worker, finished_at, outcome, error) "
            "VALUES (%s, %s, 'w', clock_timestamp(), %s, 'boom')",
            (job, attempt + 1, outcome),
        )


def window(conn: Conn, rule: str) -> float:
    return float(
        conn.execute("SELECT window_s FROM alert_rules_current WHERE name = %s", (rule,)).fetchone()[0]
    )


def test_retry_storm_fires_and_resolves_when_the_storm_passes(fast: Conn) -> None:
    _, _, threshold = rule_numbers(fast, "retry_storm")
    check_life(
        fast,
        "retry_storm",
        lambda: _failed_runs(fast, int(threshold) + 1, "lease_expired"),
        lambda: None,
        heal_takes_s=window(fast, "retry_storm"),
    )


def test_dead_jobs_fires_and_resolves_when_the_window_passes(fast: Conn) -> None:
    def plant() -> None:
        request(fast)
        fast.execute("UPDATE executor_jobs SET status = 'dead', finished_at = clock_timestamp()")

    check_life(fast, "dead_jobs", plant, lambda: None, heal_takes_s=window(fast, "dead_jobs"))


def test_compat_warnings_fire_and_resolve_when_the_window_passes(fast: Conn) -> None:
    entity = request(fast)

    def plant() -> None:  # a legacy direct insert, redirected by the guard in compat mode
        fast.execute(
            "INSERT INTO executor_jobs (job_type, kind, entity_id, dedupe_key, source_event_id, materialized_via) "
            "VALUES ('protect', 'execution', %s, 'legacy:x', gen_random_uuid(), 'legacy:test')",
            (entity,),
        )
        assert fast.execute("SELECT count(*) FROM compat_warnings").fetchone()[0] == 1

    check_life(
        fast,
        "compat_warnings_present",
        plant,
        lambda: None,
        heal_takes_s=window(fast, "compat_warnings_present"),
    )


def _beat(conn: Conn, role: str, last_seen: dt.datetime) -> None:
    conn.execute(
        "INSERT INTO worker_heartbeats (worker_id, role, pid, host, last_seen) VALUES (%s, %s, 1, 'h', %s)",
        (f"{role}@test", role, last_seen),
    )


def test_worker_role_absent_fires_per_role_and_resolves(fast: Conn) -> None:
    future = db_now(fast) + dt.timedelta(hours=1)  # live through every logical instant of the test
    for role in ("fase1-executor", "scheduler"):
        _beat(fast, role, future)
    check_life(
        fast,
        "worker_role_absent",
        lambda: None,
        lambda: _beat(fast, "orchestrator", future),
        labels={"role": "orchestrator"},
    )
    assert history(fast, "worker_role_absent", {"role": "scheduler"}) == []


def test_a_condition_gone_before_for_elapses_never_fires(fast: Conn) -> None:
    t0 = db_now(fast)
    fast.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    assert evaluate(fast, t0)[("core_trigger_disabled", "{}")][0] == "pending"
    fast.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
    assert evaluate(fast, t0 + dt.timedelta(seconds=60))[("core_trigger_disabled", "{}")][0] == "inactive"
    assert [(f, t) for f, t, _ in history(fast, "core_trigger_disabled")] == [
        ("inactive", "pending"),
        ("pending", "inactive"),
    ]


def test_for_zero_goes_straight_to_firing(fast: Conn) -> None:
    fast.execute("UPDATE pipeline_settings SET value = '0' WHERE key = 'alert.core_trigger_disabled.for_s'")
    fast.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    assert evaluate(fast, db_now(fast))[("core_trigger_disabled", "{}")][0] == "firing"
    assert [(f, t) for f, t, _ in history(fast, "core_trigger_disabled")] == [("inactive", "firing")]


def test_the_fast_profile_and_production_defaults(conn: Conn) -> None:
    def numbers() -> dict[str, Any]:
        return {r[0]: r[1:] for r in conn.execute("SELECT name, threshold, for_s FROM alert_rules_current")}

    production = numbers()
    assert production["core_trigger_disabled"] == (1, 30)
    assert conn.execute("SELECT gap_delta_s('protect')").fetchone()[0] == 60
    conn.execute("SELECT apply_alert_profile('fast')")
    fast = numbers()
    assert all(fast[name][1] <= production[name][1] or production[name][1] == 0 for name in production)
    assert all(for_s > 0 for _, for_s in fast.values())  # so every rule shows pending before firing
    assert conn.execute("SELECT pipeline_setting('alert_profile')").fetchone()[0] == "fast"
    conn.execute("INSERT INTO pipeline_settings (key, value) VALUES ('gap_delta_s.tsa', '7')")
    assert conn.execute("SELECT gap_delta_s('tsa'), gap_delta_s('protect')").fetchone() == (7, 2)
