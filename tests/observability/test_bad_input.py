"""Bad observability input gives one clear error each (SQLSTATE PJ020), whoever writes the setting."""

from __future__ import annotations

import psycopg
import pytest

from tests.observability.conftest import Conn

CASES = {
    "threshold not a number": (
        "UPDATE pipeline_settings SET value = 'lots' WHERE key = 'alert.backlog_ready_jobs.threshold'",
        "invalid setting alert.backlog_ready_jobs.threshold = 'lots': the threshold of alert rule "
        "backlog_ready_jobs (it fires when pipeline_backlog_ready_jobs > threshold) must be a number, got 'lots'",
    ),
    "negative threshold": (
        "UPDATE pipeline_settings SET value = '-3' WHERE key = 'alert.retry_storm.threshold'",
        "must be a number >= 0, got '-3'",
    ),
    "infinite for": (
        "UPDATE pipeline_settings SET value = 'Infinity' WHERE key = 'alert.dead_jobs.for_s'",
        "the for duration (seconds) of alert rule dead_jobs must be a finite number, got 'Infinity'",
    ),
    "unknown rule": (
        "INSERT INTO pipeline_settings (key, value) VALUES ('alert.backlog.threshold', '5')",
        "unknown alert rule 'backlog' in alert.backlog.threshold (rules: backlog_oldest_age, backlog_ready_jobs,",
    ),
    "unknown attribute": (
        "INSERT INTO pipeline_settings (key, value) VALUES ('alert.dead_jobs.limit', '5')",
        "alert.dead_jobs.limit is not an alert setting; expected alert.<rule>.threshold|for_s|window_s",
    ),
    "window on a windowless rule": (
        "INSERT INTO pipeline_settings (key, value) VALUES ('alert.core_trigger_disabled.window_s', '5')",
        "alert rule core_trigger_disabled has no window",
    ),
    "zero Delta": (
        "UPDATE pipeline_settings SET value = '0' WHERE key = 'gap_delta_s_default'",
        "setting gap_delta_s_default must be a number > 0, got '0'",
    ),
    "Delta of an unknown job type": (
        "INSERT INTO pipeline_settings (key, value) VALUES ('gap_delta_s.notarize', '5')",
        "unknown job type 'notarize' in gap_delta_s.notarize (known: anchor, decide_outcome,",
    ),
    "unknown profile": (
        "SELECT apply_alert_profile('turbo')",
        "unknown alert profile 'turbo' (profiles: ",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_observability_input_is_one_clear_error(conn: Conn, case: str) -> None:
    statement, message = CASES[case]
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    assert caught.value.sqlstate == "PJ020"
    assert message in caught.value.diag.message_primary


def test_a_good_setting_is_accepted(conn: Conn) -> None:
    conn.execute(
        "UPDATE pipeline_settings SET value = '12.5' WHERE key = 'alert.backlog_oldest_age.threshold'"
    )
    assert conn.execute(
        "SELECT threshold, promql FROM alert_rules_current WHERE name = 'backlog_oldest_age'"
    ).fetchone() == (12.5, "pipeline_backlog_oldest_ready_age_seconds > 12.5")
