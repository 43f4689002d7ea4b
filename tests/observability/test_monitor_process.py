"""The real monitor process: it fires and resolves alerts in real time, serves /metrics on 127.0.0.1, and
stays silent during a steady run of normal load."""

from __future__ import annotations

import re
import threading
import urllib.request
from collections.abc import Callable

import pytest

from harness.history import History
from harness.records import Workload as WorkloadSpec
from harness.sut.adapter import SutSql
from harness.sut.config import reference_sut
from harness.sut.system import RunningSystem
from harness.wait import wait_until
from harness.workload import Workload as Load
from tests.observability.conftest import Conn

Start = Callable[..., RunningSystem]
ALL_ROLES = {"fase1-executor": 1, "orchestrator": 1, "scheduler": 1, "monitor": 1}


def metrics_url(system: RunningSystem) -> str:
    log = system.supervisor.get("monitor-0").log_path

    def find() -> str | None:
        match = re.search(r"listening on (\S+)", log.read_text(errors="replace"))
        return match.group(1) if match else None

    return wait_until(find, 20, "the monitor to print its /metrics URL")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def state(conn: Conn, rule: str) -> str | None:
    row = conn.execute("SELECT state FROM alert_state WHERE rule = %s AND labels = '{}'", (rule,)).fetchone()
    return row[0] if row else None


def test_monitor_fires_and_resolves_in_real_time_and_serves_metrics(
    fast: Conn, system_factory: Start
) -> None:
    system = system_factory(workers=ALL_ROLES)
    url = metrics_url(system)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    wait_until(lambda: state(fast, "core_trigger_disabled") == "inactive", 20, "a first evaluation")
    fast.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    wait_until(lambda: state(fast, "core_trigger_disabled") == "firing", 30, "core_trigger_disabled to fire")
    moves = fast.execute(
        "SELECT from_state, to_state FROM alert_history WHERE rule = 'core_trigger_disabled' ORDER BY id"
    ).fetchall()
    assert moves == [("inactive", "pending"), ("pending", "firing")]
    wait_until(lambda: "pipeline_core_trigger_enabled 0.0" in scrape(url), 10, "/metrics to show it disabled")
    text = scrape(url)
    assert re.search(r'pipeline_alert_state\{alertname="core_trigger_disabled",[^}]*\} 2\.0', text)
    for metric in fast.execute(
        "SELECT metric FROM alert_rules"
    ).fetchall():  # every rule's metric is exported
        assert f"\n{metric[0]}" in text, metric[0]
    assert 'pipeline_event_to_job_gap_events{status="breached"}' in text
    fast.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
    wait_until(lambda: state(fast, "core_trigger_disabled") == "inactive", 30, "the alert to resolve")
    last = fast.execute(
        "SELECT from_state, to_state FROM alert_history WHERE rule = 'core_trigger_disabled' ORDER BY id DESC"
    ).fetchone()
    assert last == ("firing", "resolved")
    wait_until(lambda: "pipeline_core_trigger_enabled 1.0" in scrape(url), 10, "/metrics to show it enabled")


def steady_run(conn: Conn, system_factory: Start, seconds: float) -> None:
    system_factory(workers=ALL_ROLES)
    started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    sql = SutSql.connect(reference_sut(), conn.info.dsn)
    load = Load(conn.info.dsn, WorkloadSpec(flows=int(seconds * 5), rate=5.0), History(), 1, sql)
    load.run(threading.Event())  # the load itself is the point: a steady run of this length
    ids = [r["entity_id"] for r in load.acknowledged]
    closed = sql.queries("system")["count_closed"]
    wait_until(
        lambda: conn.execute(closed, {"ids": ids}).fetchone()[0] == len(ids),
        30,
        "every flow of the steady run to close",
    )
    fired = conn.execute(
        "SELECT rule, labels, at, value FROM alert_history WHERE to_state = 'firing' AND at >= %s", (started,)
    ).fetchall()
    assert fired == [], f"alerts fired during a steady run: {fired}"
    evaluations = conn.execute("SELECT max(evaluated_at) - %s FROM alert_state", (started,)).fetchone()[0]
    assert evaluations.total_seconds() >= seconds - 2  # the monitor was evaluating all along
    assert len(load.acknowledged) >= seconds * 3


def test_no_rule_fires_during_a_short_steady_run(fast: Conn, system_factory: Start) -> None:
    steady_run(fast, system_factory, 12)


@pytest.mark.slow
def test_no_rule_fires_during_a_minute_of_steady_load(fast: Conn, system_factory: Start) -> None:
    steady_run(fast, system_factory, 60)
