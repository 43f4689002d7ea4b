"""As a new user would: `harness up`, open the dashboard, disable the core trigger by hand, see the alert fire
within the fast profile's window, re-enable it, see it resolve, Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import psycopg

from harness.wait import wait_until


def panels(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url + "panels", timeout=10) as response:
        return json.loads(response.read())


def test_harness_up_dashboard_shows_the_trigger_alert_fire_and_resolve() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", "--dashboard-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: any(line.startswith("running;") for line in lines), 90, "harness up to start")
        text = "".join(lines)
        dsn = re.search(r"^DSN\s+(.+)$", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
        url = re.search(r"^dashboard (http://127\.0\.0\.1:\d+/)$", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
        assert re.search(r"^metrics\s+http://127\.0\.0\.1:\d+/metrics$", text, re.MULTILINE)
        assert "alerts    fast profile: " in text
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
            wait_until(
                lambda: "FIRING" in panels(url)["panel-alerts"], 30, "the dashboard to show the alert firing"
            )
            assert "core_trigger_disabled" in panels(url)["panel-alerts"]
            conn.execute("ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change")
            wait_until(lambda: "FIRING" not in panels(url)["panel-alerts"], 30, "the alert to resolve")
            assert "resolved" in panels(url)["panel-alert_history"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
        reader.join(timeout=10)  # it stops at the end of the output
        if not reader.is_alive():
            proc.stdout.close()
    assert code == 0, "".join(lines)
