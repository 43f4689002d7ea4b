"""The dashboard's HTTP server: standard library only, bound to 127.0.0.1.

Routes: `/` the page (`?entity=ID` adds that entity's trace), `/panels` the refreshable panels as JSON,
`/healthz`. Every request reads the database afresh through the read-only role.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg

from harness.ops.dashboard.data import DashboardData
from harness.ops.dashboard.page import page, render_panels

log = logging.getLogger("harness.ops.dashboard")


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: DashboardData, port: int = 0, host: str = "127.0.0.1") -> None:
        self.data = data
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> DashboardServer:
        """Serve in a daemon thread (for `harness up` and tests)."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="dashboard")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer

    def do_GET(self) -> None:
        url = urlparse(self.path)
        given = parse_qs(url.query).get("entity")
        entity = given[0].strip() if given and given[0] else None
        try:
            if url.path == "/":
                snap = self.server.data.snapshot()
                trace = self.server.data.trace(entity) if entity else None
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", page(snap, entity, trace))
            elif url.path == "/panels":
                panels = {f"panel-{k}": v for k, v in render_panels(self.server.data.snapshot()).items()}
                self._send(HTTPStatus.OK, "application/json", json.dumps(panels))
            elif url.path == "/healthz":
                self._send(HTTPStatus.OK, "text/plain", "ok\n")
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", "not found\n")
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", f"database unavailable: {first}\n")

    def _send(self, status: HTTPStatus, kind: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("dashboard %s", format % args)
