"""The HTTP client the orchestrator uses to call the external services.

Every failure becomes one of two exceptions, because the orchestrator only has two decisions to make:
``ServiceUnavailable`` (retry later with the same ``Idempotency-Key``) or ``ServiceRejected`` (the request
itself is wrong; retrying cannot help). Raw socket and ``http.client`` errors never escape.

One keep-alive connection per client: at hundreds of calls per second a new TCP connection per call costs
more than the call. A connection that was idle may have been closed by the server or cut by the harness's
proxy, so a call that fails on a reused connection is sent once more on a fresh one; that is safe because
the services apply each ``Idempotency-Key`` once.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

_STALE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.BadStatusLine)


class ServiceError(Exception):
    """An external service call failed; the message names the service URL and what to do."""

    def __init__(self, message: str | None = None, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message or self.__doc__)
        self.url = url
        self.status = status


class ServiceUnavailable(ServiceError):
    """The service was unreachable, too slow, or answered 5xx; retry later with the same Idempotency-Key."""

    retryable = True

    def __init__(
        self,
        message: str | None = None,
        *,
        url: str = "",
        status: int | None = None,
        maybe_applied: bool = True,
    ) -> None:
        super().__init__(message, url=url, status=status)
        #: False only when the request certainly never reached the service (connection refused or not
        #: made); a history records a call with ``maybe_applied`` as indeterminate, not as failed.
        self.maybe_applied = maybe_applied


class ServiceRejected(ServiceError):
    """The service rejected the request (4xx); fix the request, retrying it unchanged cannot help."""

    retryable = False

    def __init__(
        self, message: str | None = None, *, url: str = "", status: int = 400, detail: str = ""
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.detail = detail


class ServiceClient:
    """JSON over one persistent HTTP/1.1 connection to ``base_url`` (e.g. ``http://127.0.0.1:8123``).

    ``timeout_s`` bounds each socket operation (connect, send, each read), not the whole call. Calls from
    several threads on one client are serialized; give each worker thread its own client for parallelism.
    """

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"base_url {base_url!r}: expected http://HOST:PORT (only plain http is supported)"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def post_json(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        """POST ``body`` as JSON under ``idempotency_key`` (None: for ``/_admin``); the answer of a 2xx."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._call("POST", path, payload, headers)

    def get_json(self, path: str) -> dict[str, Any]:
        """GET ``path`` (query string included); the decoded JSON answer of a 2xx."""
        return self._call("GET", path, None, {})

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self, method: str, url: str, maybe_applied: bool) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            reason = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise ServiceUnavailable(
                f"{method} {url}: cannot connect ({reason}: {exc}); check the service is running at "
                f"{self.base_url}, then retry with the same Idempotency-Key",
                url=url,
                maybe_applied=maybe_applied,
            ) from exc
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _call(self, method: str, path: str, payload: bytes | None, headers: dict[str, str]) -> dict[str, Any]:
        url = self.base_url + path
        with self._lock:
            for attempt in (1, 2):
                reused = self._conn is not None
                if self._conn is None:
                    # On the second attempt the first one may have reached the service before the cut.
                    self._conn = self._connect(method, url, maybe_applied=attempt == 2)
                try:
                    self._conn.request(method, self._prefix + path, body=payload, headers=headers)
                    response = self._conn.getresponse()
                    data = response.read()
                except TimeoutError as exc:
                    self._drop()
                    raise ServiceUnavailable(
                        f"{method} {url}: no answer within {self.timeout_s:g} s; retry with the same "
                        "Idempotency-Key, or raise timeout_s if the service is only slow",
                        url=url,
                    ) from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    if reused and attempt == 1 and isinstance(exc, _STALE):
                        continue  # the idle connection was closed under us: send once more on a fresh one
                    raise ServiceUnavailable(
                        f"{method} {url}: connection lost ({type(exc).__name__}: {exc}); retry with the same "
                        "Idempotency-Key",
                        url=url,
                    ) from exc
                if response.will_close:
                    self._drop()
                return _decode(method, url, response.status, data)
        raise AssertionError("unreachable: the loop returns or raises")


def _decode(method: str, url: str, status: int, data: bytes) -> dict[str, Any]:
    """Map an HTTP answer to a dict or to one of the two exceptions."""
    try:
        value = json.loads(data) if data else None
    except (ValueError, UnicodeDecodeError):
        value = None
    if 200 <= status < 300:
        if isinstance(value, dict):
            return value
        raise ServiceUnavailable(
            f"{method} {url}: answered {status} with a body that is not a JSON object ({data[:80]!r}); "
            "retry with the same Idempotency-Key",
            url=url,
            status=status,
        )
    detail = value.get("error") if isinstance(value, dict) else None
    detail = " ".join(str(detail or data[:200].decode("utf-8", "replace")).split()) or "no detail"
    if status >= 500:
        raise ServiceUnavailable(
            f"{method} {url}: {status} {detail}; retry later with the same Idempotency-Key",
            url=url,
            status=status,
        )
    raise ServiceRejected(
        f"{method} {url}: rejected with {status}: {detail}; fix the request (a retry cannot help)",
        url=url,
        status=status,
        detail=detail,
    )
