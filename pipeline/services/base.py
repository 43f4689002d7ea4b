"""Shared machinery of the external services: an HTTP/1.1 server with fault knobs.

The reference pipeline calls a timestamp authority and an anchoring ledger over HTTP. The harness runs them
locally so that it can slow them down, make them fail or take them down like real ones, at run time, through
``/_admin/config``. Each service only implements ``Service.handle``; everything that is the same for both
(routing of the admin and health endpoints, fault injection, statistics, idempotency bookkeeping, the
signal-driven lifecycle) lives here so the two services behave identically under faults.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import signal
import socketserver
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from pipeline.supervised import orphaned

MAX_BODY_BYTES = 1 << 20
MAX_LATENCY_MS = 600_000
HEX64 = re.compile(r"[0-9a-f]{64}")
DIGEST_RULE = "expected 64 lowercase hex characters (a sha256 hexdigest)"


class FailurePoint(StrEnum):
    """Where an injected failure happens: before the request is applied, or after (the answer is lost)."""

    BEFORE = "before"
    AFTER = "after"


@dataclass(frozen=True)
class Knobs:
    """The runtime fault settings of one service; replaced as a whole so a request sees one consistent set.

    ``latency_ms`` is added to every API request, plus a uniform random ``0..jitter_ms`` (so ``latency_ms``
    is a lower bound). ``failure_rate`` is the probability that an API request answers 503; with
    ``failure_point='after'`` the request is applied first and only the answer is lost, which is the case
    idempotency keys exist for. ``down`` answers 503 to everything but ``/_admin``.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    failure_rate: float = 0.0
    failure_point: FailurePoint = FailurePoint.BEFORE
    down: bool = False
    seed: int = 0


KNOB_NAMES = tuple(Knobs.__dataclass_fields__)


def knob_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be the setting ``name``, in one clause; None when it can."""
    if name not in KNOB_NAMES:
        return f"{name}: unknown setting; expected one of: {', '.join(KNOB_NAMES)}"
    if name == "down":
        return None if isinstance(value, bool) else f"down: {value!r} is not allowed; expected true or false"
    if name == "seed":
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"seed: {value!r} is not allowed; expected an integer"
    if name == "failure_point":
        if value in tuple(FailurePoint):
            return None
        return f"failure_point: {value!r} is not allowed; expected one of: {', '.join(FailurePoint)}"
    high = 1 if name == "failure_rate" else MAX_LATENCY_MS
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= high:
        return None  # NaN fails the comparison too
    return f"{name}: {value!r} is not allowed; expected a number from 0 to {high}"


def updated_knobs(current: Knobs, changes: Mapping[str, object]) -> Knobs:
    """Return ``current`` with ``changes`` applied, or raise ``ValueError`` naming every bad field at once.

    Used by both ``POST /_admin/config`` and the command line, so a value is judged the same way wherever
    it comes from.
    """
    problems = [problem for name, value in changes.items() if (problem := knob_problem(name, value))]
    if problems:
        raise ValueError("; ".join(problems))
    values: dict[str, Any] = dict(changes)
    for name in ("latency_ms", "jitter_ms", "failure_rate"):
        if name in values:
            values[name] = float(values[name])
    if "failure_point" in values:
        values["failure_point"] = FailurePoint(values["failure_point"])
    return replace(current, **values)


class Reject(Exception):
    """A 4xx answer raised by a service handler; the server turns it into ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request, as a service handler sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json_object(self) -> dict[str, Any]:
        """Decode the body as a JSON object, or reject with 400 saying what was wrong."""
        if not self.body:
            raise Reject(400, "body: empty; expected a JSON object")
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Reject(400, f"body: invalid JSON ({exc}); expected a JSON object") from None
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
                type(value), "a number"
            )
            raise Reject(400, f"body: JSON {kind}; expected a JSON object")
        return value

    def idempotency_key(self, problems: list[str]) -> str:
        """The required ``Idempotency-Key`` header (it is what makes a retried call safe); "" if bad."""
        key = (self.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 200:
            problems.append(
                "header Idempotency-Key: missing or longer than 200 characters; "
                "expected a non-empty string naming the request (e.g. the job's dedupe key)"
            )
            return ""
        return key


@dataclass(frozen=True)
class Response:
    """An answer ready to send: status and a JSON body already encoded (so replays are byte-identical)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())


def canonical_json(value: object) -> bytes:
    """The one byte form of a value: sorted keys, no spaces, ASCII only; what gets signed and sent."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def json_response(status: int, value: object) -> Response:
    return Response(status, canonical_json(value))


def utc_now() -> str:
    """Current UTC time as ISO-8601 with microseconds and a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def job_id_of(body: dict[str, Any], problems: list[str]) -> str | int | None:
    """The optional ``job_id`` (kept for tracing only): a string or an integer."""
    job_id = body.get("job_id")
    if job_id is None or (
        isinstance(job_id, int | str) and not isinstance(job_id, bool) and len(str(job_id)) <= 200
    ):
        return job_id
    problems.append(
        f"job_id: {job_id!r}; expected a string or an integer (at most 200 characters), or omitted"
    )
    return None


def hex64_of(body: dict[str, Any], name: str, problems: list[str], rule: str = DIGEST_RULE) -> str:
    value = body.get(name)
    if value is None:
        problems.append(f"{name}: missing; {rule}")
    elif not isinstance(value, str) or not HEX64.fullmatch(value):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        problems.append(f"{name}: {shown!r} is not valid; {rule}")
    return value if isinstance(value, str) else ""


def check_fields(body: dict[str, Any], allowed: tuple[str, ...], problems: list[str]) -> None:
    """Unknown fields are rejected so that a typo (``digets``) is not silently ignored."""
    for name in body:
        if name not in allowed:
            problems.append(f"{name}: unknown field; expected only: {', '.join(allowed)}")


class Journal:
    """Append-only JSON lines a service replays when it starts, so a restarted service remembers what it
    issued, as a real one with storage does (without one, a service killed mid-run forgets, and a retried
    request after the restart gets a second token where the first was already issued)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def lines(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill mid-write: that answer was never sent either
        return found

    def append(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self._lock, self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(record, sort_keys=True) + "\n")


class IdempotencyStore:
    """Answers remembered per ``Idempotency-Key``, so a replayed key gets the byte-identical answer.

    One lock guards both the lookup and the production of a new answer: two concurrent requests with the
    same key can never both apply their side effect. Every answer produced is a side effect issued, kept
    (with its job id) for ``GET /_admin/issued`` and written to the journal when there is one.
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[str, bytes]] = {}
        self._issued: list[dict[str, Any]] = []
        self.replays = 0
        self.journal = journal or Journal(None)
        for line in self.journal.lines():
            if line.get("kind") == "answer":
                self._answers[line["key"]] = (line["fingerprint"], line["body"].encode())
                self._issued.append({k: line.get(k) for k in ("key", "job_id", "at")})

    def issued(self) -> list[dict[str, Any]]:
        """Every side effect this service applied: key, job id, time; a replayed key is not a new one."""
        with self._lock:
            return [dict(item) for item in self._issued]

    def answer(
        self, key: str, fingerprint: str, produce: Callable[[], bytes], job_id: str | int | None = None
    ) -> Response:
        """The stored answer for ``key``, or store and return ``produce()``; 409 on a conflicting reuse."""
        with self._lock:
            stored = self._answers.get(key)
            if stored is None:
                body = produce()
                self._answers[key] = (fingerprint, body)
                item = {"key": key, "job_id": job_id, "at": utc_now()}
                self._issued.append(item)
                self.journal.append(
                    {"kind": "answer", "fingerprint": fingerprint, "body": body.decode(), **item}
                )
                return Response(200, body)
            if stored[0] != fingerprint:
                raise Reject(
                    409,
                    f"Idempotency-Key {key!r}: already used for {stored[0]}, not {fingerprint}; "
                    "one key names one request, use a new key for a different request",
                )
            self.replays += 1
            return Response(200, stored[1], (("Idempotent-Replay", "true"),))

    def distinct_keys(self) -> int:
        with self._lock:
            return len(self._answers)


class Service(ABC):
    """What a concrete service supplies: its name, its API routes and its idempotency store."""

    name: str
    store: IdempotencyStore

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one API request (anything outside ``/health`` and ``/_admin``); raise ``Reject`` for 4xx."""

    def stats(self) -> dict[str, int]:
        """Service-specific counters added to ``GET /_admin/stats``."""
        return {}


class ServiceServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 keep-alive server for one ``Service``, with fault knobs changeable at run time."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, service: Service, address: tuple[str, int], knobs: Knobs | None = None) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._knobs = knobs or Knobs(seed=random.randrange(2**31))
        self._rng = random.Random(self._knobs.seed)
        self._counts = {"requests": 0, "failures_injected": 0, "rejected": 0, "errors": 0}
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall start-up; skip it.
        socketserver.TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = str(host)  # AF_INET: already a str

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def configure(self, changes: Mapping[str, object]) -> Knobs:
        """Apply knob changes atomically (``ValueError`` names every bad one); a new seed reseeds the RNG."""
        with self._lock:
            self._knobs = updated_knobs(self._knobs, changes)
            if "seed" in changes:
                self._rng = random.Random(self._knobs.seed)
            return self._knobs

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def draw(self) -> tuple[Knobs, float, bool]:
        """One consistent draw for a request: the knobs, its delay in seconds, and whether it fails."""
        with self._lock:
            knobs = self._knobs
            delay = knobs.latency_ms + (self._rng.uniform(0, knobs.jitter_ms) if knobs.jitter_ms else 0.0)
            fail = bool(knobs.failure_rate) and self._rng.random() < knobs.failure_rate
            self._counts["requests"] += 1
            if fail:
                self._counts["failures_injected"] += 1
            return knobs, delay / 1000, fail

    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
        counts["idempotent_replays"] = self.service.store.replays
        counts["distinct_keys"] = self.service.store.distinct_keys()
        return counts | self.service.stats()

    def dispatch(self, request: Request) -> Response:
        """Route one request: admin and health first, then faults, then the service itself."""
        if request.path.startswith("/_admin/"):
            return self._admin(request)
        knobs, delay, fail = self.draw()
        name = self.service.name
        if knobs.down:
            return json_response(
                503,
                {
                    "error": f"{name} is down (injected: down=true); "
                    'POST /_admin/config {"down": false} to bring it back'
                },
            )
        if request.path == "/health":
            return json_response(200, {"status": "ok", "service": name})
        if delay > 0:
            time.sleep(delay)
        if not fail:
            return self.service.handle(request)
        if knobs.failure_point is FailurePoint.AFTER:
            with contextlib.suppress(Reject):
                self.service.handle(request)  # applied, but its answer is lost
        point, rate = knobs.failure_point, knobs.failure_rate
        message = f"{name}: injected failure (failure_rate={rate:g}, failure_point={point}); retry"
        return json_response(503, {"error": message})

    def _admin(self, request: Request) -> Response:
        if request.path == "/_admin/issued" and request.method == "GET":
            return json_response(200, {"service": self.service.name, "issued": self.service.store.issued()})
        if request.path == "/_admin/stats" and request.method == "GET":
            return json_response(200, self.stats())
        if request.path == "/_admin/config" and request.method == "GET":
            return json_response(200, asdict(self.knobs))
        if request.path == "/_admin/config" and request.method == "POST":
            try:
                knobs = self.configure(request.json_object())
            except ValueError as exc:
                raise Reject(400, str(exc)) from None
            return json_response(200, asdict(knobs))
        raise Reject(
            404,
            f"{request.method} {request.path}: no such admin endpoint; expected "
            "GET /_admin/stats, GET /_admin/issued, GET /_admin/config or POST /_admin/config",
        )


class _Handler(BaseHTTPRequestHandler):
    """Turns sockets into ``Request``s and ``Response``s into bytes; all behaviour is in the server."""

    server: ServiceServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers and body leave in one write, flushed by handle_one_request
    timeout = 120  # an idle keep-alive connection is closed after this; clients reconnect

    def log_message(self, format: str, *args: Any) -> None:
        """Request logging is off: it costs time at hundreds of requests per second."""

    def address_string(self) -> str:
        return str(self.client_address[0])

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            response = self.server.dispatch(self._read_request())
        except OSError:  # the client went away or stalled mid-body: nobody to answer
            self.close_connection = True
            return
        except Reject as exc:
            self.server.count("rejected")
            response = json_response(exc.status, {"error": exc.message})
        except Exception as exc:  # a bug in a service must not kill the connection thread silently
            self.server.count("errors")
            traceback.print_exc(file=sys.stderr)
            response = json_response(500, {"error": f"{self.server.service.name}: internal error: {exc!r}"})
        self._send(response)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Reject(411, "Transfer-Encoding is not supported; send the body with a Content-Length")
        length_text = self.headers.get("Content-Length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            self.close_connection = True
            raise Reject(
                413 if length_text.isdigit() else 400,
                f"Content-Length: {length_text!r}; expected an integer up to {MAX_BODY_BYTES}",
            )
        body = self.rfile.read(int(length_text)) if length_text != "0" else b""
        headers = {name.title(): value for name, value in self.headers.items()}
        return Request(self.command, parts.path, dict(parse_qsl(parts.query)), headers, body)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)


def serve(
    service: Service,
    host: str = "127.0.0.1",
    port: int = 0,
    knobs: Knobs | None = None,
    out: TextIO | None = None,
    supervisor: int | None = None,
) -> int:
    """Run ``service`` until SIGTERM or SIGINT (or, with ``supervisor``, until that parent process is gone:
    see pipeline.supervised) and return exit code 0.

    Prints exactly one line, ``listening on http://HOST:PORT``, once the socket accepts connections: the
    harness reads it to learn the port (``port=0`` picks a free one), so nothing else goes to stdout.
    """
    server = ServiceServer(service, (host, port), knobs)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = threading.Thread(
        target=server.serve_forever, args=(0.1,), name=f"{service.name}-server", daemon=True
    )
    worker.start()
    try:
        print(f"listening on {server.url}", file=out or sys.stdout, flush=True)
        while not stop.wait(0.5):
            if orphaned(supervisor):
                break
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
