"""The single dashboard (RFC phase 3): recent events, jobs per entity, runs per job with errors, backlog,
the gap KPI over time, alerts and their history, and a search box for an entity's full trace.

`harness dashboard --postgres DSN` serves it for any database migrated with the pipeline's migrations;
`harness up` starts it beside the reference system. It listens on 127.0.0.1 only and reads through the
read-only role `pipeline_reader`.
"""

from __future__ import annotations

from harness.ops.dashboard.data import DashboardData
from harness.ops.dashboard.server import DashboardServer


def open_dashboard(dsn: str, port: int = 0) -> DashboardServer:
    """Check the database (BadInput, exit 3, when it lacks the schema) and bind the server; not yet serving."""
    data = DashboardData(dsn)
    data.check()
    return DashboardServer(data, port)


__all__ = ["DashboardData", "DashboardServer", "open_dashboard"]
