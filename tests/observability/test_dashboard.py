"""The dashboard in a real headless Chromium (Debian package `chromium`, driven by Playwright with
`executable_path`): every panel shows rows from a real run, the search box shows an entity's full trace, the
page loads nothing from outside 127.0.0.1, and a screenshot is saved in the test's report folder. Also: it
reads through a read-only role, and a database without the schema is one clear error (exit 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.ops.dashboard import DashboardServer, open_dashboard
from harness.sut.system import RunningSystem
from harness.wait import wait_until
from tests.observability.conftest import Conn

Start = Callable[..., RunningSystem]
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PANELS = [
    "alerts",
    "alert_history",
    "backlog",
    "recent_events",
    "jobs_per_entity",
    "job_runs",
    "runs_with_errors",
    "workers",
]


def chromium() -> str | None:
    for candidate in (
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def dashboard(dsn: str) -> Iterator[DashboardServer]:
    server = open_dashboard(dsn, 0).start()
    yield server
    server.stop()


def real_run(conn: Conn, system_factory: Start) -> list[str]:
    """Flows that complete, one run that fails and is retried, and an alert that fires and resolves."""
    conn.execute("SELECT apply_alert_profile('fast')")
    conn.execute("UPDATE pipeline_settings SET value = '50' WHERE key = 'retry_base_ms'")
    conn.execute(
        "SELECT arm_failpoint('orchestrator.after_side_effect', '1*raise(injected for the dashboard)')"
    )
    system_factory(workers={"fase1-executor": 1, "orchestrator": 1, "scheduler": 1, "monitor": 1})
    entities = [str(uuid.uuid4()) for _ in range(6)]
    for entity in entities:
        conn.execute("SELECT request_protection(%s, 'doc')", (entity,))
    wait_until(
        lambda: (
            conn.execute("SELECT count(*) FROM user_documents WHERE status = 'anchored'").fetchone()[0]
            == len(entities)
        ),
        30,
        "the flows to close",
    )
    conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
    wait_until(
        lambda: conn.execute(
            "SELECT count(*) FROM alert_state WHERE state = 'firing' AND rule = 'core_trigger_disabled'"
        ).fetchone()[0],
        30,
        "the alert to fire",
    )
    return entities


def test_every_panel_shows_a_real_run_in_chromium(
    conn: Conn, system_factory: Start, dashboard: DashboardServer, tmp_path: Path
) -> None:
    browser_path = chromium()
    if browser_path is None:
        pytest.skip("Chromium not installed: Debian package `chromium` (apt-get install -y chromium)")
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright not installed: PyPI package `playwright` (test extra)"
    )
    entities = real_run(conn, system_factory)
    report = tmp_path / "report"
    report.mkdir()
    outside: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on(
                "request", lambda r: None if r.url.startswith("http://127.0.0.1:") else outside.append(r.url)
            )
            page.goto(dashboard.url)
            for panel in PANELS:
                rows = page.locator(f"#panel-{panel} table tr").count()
                assert rows >= 2, f"panel {panel} shows no rows"
            assert page.locator("#panel-alerts tr.firing").count() >= 1
            assert "core_trigger_disabled" in page.locator("#panel-alerts tr.firing").first.inner_text()
            assert "injected for the dashboard" in page.locator("#panel-runs_with_errors").inner_text()
            assert page.locator("#gap-chart polyline.p50_s, #gap-chart circle.p50_s").count() >= 1
            assert "DISABLED" in page.locator("#panel-header").inner_text()
            page.fill("input[name=entity]", entities[0])
            page.click("button[type=submit]")
            page.wait_for_selector("#trace-text")
            trace = page.locator("#trace-text").inner_text()
            assert entities[0] in trace and "job.anchor.completed" in trace and "document.anchored" in trace
            assert page.locator("#trace-verdict").inner_text() == "trace complete"
            conn.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
            page.wait_for_function(
                "document.querySelectorAll('#panel-alerts tr.firing').length === 0", timeout=30_000
            )  # the live refresh shows the alert resolved
            page.screenshot(path=str(report / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert outside == [], f"the page loaded from outside 127.0.0.1: {outside}"
    assert (report / "dashboard.png").stat().st_size > 10_000


def test_trace_search_with_a_bad_id_says_so(dashboard: DashboardServer) -> None:
    import urllib.request

    with urllib.request.urlopen(dashboard.url + "?entity=not-a-uuid", timeout=10) as response:
        assert "&#x27;not-a-uuid&#x27; is not an entity id (a uuid)" in response.read().decode()
    with urllib.request.urlopen(dashboard.url + f"?entity={uuid.uuid4()}", timeout=10) as response:
        assert "no entity" in response.read().decode()


def test_the_dashboard_reads_through_a_read_only_role(dashboard: DashboardServer) -> None:
    with dashboard.data.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "pipeline_reader"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE pipeline_settings SET value = 'strict' WHERE key = 'gateway_mode'")


def test_a_database_without_the_schema_is_one_clear_error_exit_3(pg: Any) -> None:
    name = f"empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = psycopg.conninfo.make_conninfo(pg.admin_dsn(), dbname=name)
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "dashboard", "--postgres", dsn, "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 3
        assert done.stderr.count("error:") == 1
        assert "the database has no pipeline observability schema (missing: document_entities" in done.stderr
    finally:
        with psycopg.connect(pg.admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}"')
