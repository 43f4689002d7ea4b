"""Fakes of the two external services: the timestamp authority (tsa) and the anchoring ledger (ledger).

Each is idempotent per job: the orchestrator sends the job's idempotency key, and the answer is derived from
the key and the request (a token, a receipt), so a retried job gets the same answer even after the service
was killed and started again. What it issued (once per key, with the job id the caller names) is appended to
`--journal` before it answers, read back at start, and served at `/_admin/issued`, so the harness can count
side effects per job across a restart. `/_admin/config` (GET, POST JSON) takes `latency_ms`,
`failure_rate` and `down`, the harness's service faults; `/health` says 200 unless down. The first line on
stdout is `listening on http://127.0.0.1:PORT`.

    python fake_service.py tsa|ledger --port 0 [--journal FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROUTES = {
    "tsa": ("/timestamp", ("key", "digest"), "token"),
    "ledger": ("/anchor", ("key", "digest", "token"), "receipt"),
}


class State:
    def __init__(self, service: str, journal: Path | None) -> None:
        self.service = service
        self.journal = journal
        self.lock = threading.Lock()
        self.config: dict[str, Any] = {"latency_ms": 0, "failure_rate": 0.0, "down": False}
        self.issued: dict[str, dict[str, Any]] = {}  # idempotency key -> what was issued for it
        if journal is not None and journal.exists():
            for line in journal.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    self.issued[entry["key"]] = entry

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        _, fields, produced = ROUTES[self.service]
        if not all(isinstance(body.get(f), str) and body[f] for f in fields):
            return 400, {"error": f"expected non-empty strings {', '.join(fields)}"}
        request = {f: body[f] for f in fields}
        seed = "|".join([self.service, *request.values()]).encode()
        entry = {
            **request,
            "job_id": body.get("job_id"),
            produced: f"{self.service}-{hashlib.sha256(seed).hexdigest()[:32]}",
        }
        with self.lock:
            earlier = self.issued.get(body["key"])
            if earlier is None:
                self.issued[body["key"]] = earlier = entry
                if self.journal is not None:
                    with open(self.journal, "a") as journal:
                        journal.write(json.dumps(entry) + "\n")
                        journal.flush()
                        os.fsync(journal.fileno())
        if any(earlier.get(f) != request[f] for f in fields):
            return 409, {"error": f"key {body['key']} was used for another request"}
        return 200, {produced: earlier[produced], "key": body["key"]}


def handler_for(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                value = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}

        def admin(self) -> bool:
            if self.path == "/_admin/config":
                if self.command == "POST":
                    update = {k: v for k, v in self.body().items() if k in state.config}
                    with state.lock:
                        state.config.update(update)
                self.reply(200, dict(state.config))
                return True
            if self.path == "/_admin/issued":
                with state.lock:
                    self.reply(200, {"issued": list(state.issued.values())})
                return True
            return False

        def unavailable(self) -> bool:
            config = dict(state.config)
            if config["latency_ms"]:
                time.sleep(float(config["latency_ms"]) / 1000)
            if config["down"] or random.random() < float(config["failure_rate"]):
                self.reply(503, {"error": f"{state.service} unavailable"})
                return True
            return False

        def do_GET(self) -> None:
            if self.admin() or self.unavailable():
                return
            if self.path == "/health":
                self.reply(200, {"service": state.service, "ok": True})
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.admin() or self.unavailable():
                return
            if self.path != ROUTES[state.service][0]:
                self.reply(404, {"error": "not found"})
                return
            self.reply(*state.answer(self.body()))

    return Handler


def watch_supervisor(server: ThreadingHTTPServer) -> None:
    """Stop serving once the process that started us is gone (HARNESS_SUPERVISOR_PID)."""
    pid = os.environ.get("HARNESS_SUPERVISOR_PID", "")
    if not pid.isdigit():
        return
    while True:
        time.sleep(1.0)
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            server.shutdown()
            return
        except PermissionError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="fake_service")
    parser.add_argument("service", choices=sorted(ROUTES))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--journal", type=Path, help="where issued tokens or receipts are kept across restarts"
    )
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(State(args.service, args.journal)))
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=watch_supervisor, args=(server,), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
