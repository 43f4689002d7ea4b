"""A Toxiproxy-compatible server: the Toxiproxy v2 HTTP API over our own asyncio TCP proxies.

Why our own: the harness injects network faults through the Toxiproxy HTTP API (driven with
`toxiproxy-python`), but Toxiproxy is a Go binary that no registry we can reach ships (not PyPI, not Debian),
and there is no Docker to run its image. Speaking the same API keeps one code path: a scenario drives a real
Toxiproxy where one exists and this server everywhere else, and the harness never knows which.

Two threads: an asyncio loop owns every proxy, connection and toxic; a standard-library HTTP server answers
the API and hands each request to the loop, waiting for the answer. State is only touched on the loop, so
it needs no locks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote, urlsplit

from harness.proxy.errors import (
    BadRequestBody,
    MethodNotAllowed,
    MissingField,
    ProxyError,
    ProxyExists,
    ProxyNotFound,
    RouteNotFound,
    ServerStartFailed,
    ToxicExists,
    ToxicNotFound,
)
from harness.proxy.link import Address, Proxy
from harness.proxy.request import Body, read_json
from harness.proxy.toxic import Toxic, make_toxic, parse_spec, update_spec

log = logging.getLogger(__name__)

#: Semver-valid: the Toxiproxy API generation we speak, and who we are.
VERSION = "2.0.0+harness"
DEFAULT_LISTEN = "127.0.0.1:0"  # Toxiproxy's empty default means every interface; a test harness should not
REQUEST_TIMEOUT = 30.0
MAX_REQUEST_LINE = 1024 * 1024 + 4096  # Go's http.DefaultMaxHeaderBytes and its slack

Reply = tuple[int, object | None]


@dataclass(frozen=True)
class ProxyFields:
    """The fields of a create or populate body, validated."""

    name: str
    listen: Address
    upstream: Address
    enabled: bool


def parse_proxy_fields(body: object, where: str = "") -> ProxyFields:
    """Validate a proxy body; `where` locates it in a populate list (`at proxy 2`)."""
    if not isinstance(body, dict):
        raise BadRequestBody(f"proxy{where} must be a JSON object, got {type(body).__name__}")
    name, upstream = body.get("name"), body.get("upstream")
    if not name:
        raise MissingField(f"name{where}")
    if not isinstance(name, str):
        raise BadRequestBody(f"name{where} must be a string, got {json.dumps(name)}")
    if not upstream:
        raise MissingField(f"upstream{where}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequestBody(f"enabled{where} must be true or false, got {json.dumps(enabled)}")
    return ProxyFields(
        name=name,
        listen=Address.parse(body.get("listen") or DEFAULT_LISTEN, f"listen{where}", allow_port_zero=True),
        upstream=Address.parse(upstream, f"upstream{where}", allow_port_zero=False),
        enabled=enabled,
    )


class Registry:
    """Every proxy by name, and the API operations on them. Runs on the event loop only."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}

    def _proxy(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ProxyNotFound() from None

    async def _add(self, fields: ProxyFields) -> Proxy:
        proxy = Proxy(fields.name, fields.listen, fields.upstream)
        if fields.enabled:
            await proxy.start()
        self.proxies[fields.name] = proxy
        return proxy

    async def version(self) -> Reply:
        return 200, {"version": VERSION}

    async def reset(self) -> Reply:
        """Every proxy enabled again and stripped of its toxics (removing a `timeout` closes the
        connections it was on, as removing it one by one would)."""
        for proxy in self.proxies.values():
            await proxy.start()
            await proxy.clear_toxics()
        return 204, None

    async def index(self) -> Reply:
        return 200, {name: proxy.to_json() for name, proxy in self.proxies.items()}

    async def create(self, body: object) -> Reply:
        fields = parse_proxy_fields(body)
        if fields.name in self.proxies:
            raise ProxyExists()
        return 201, (await self._add(fields)).to_json()

    async def populate(self, body: object) -> Reply:
        """Create or replace a list of proxies; one with the same listen and upstream is kept as it is."""
        if not isinstance(body, list):
            raise BadRequestBody(f"populate expects a JSON list of proxies, got {type(body).__name__}")
        wanted = [parse_proxy_fields(item, f" at proxy {i}") for i, item in enumerate(body, start=1)]
        done: list[dict[str, object]] = []
        for fields in wanted:
            existing = self.proxies.get(fields.name)
            try:
                if existing and (existing.listen, existing.upstream) == (fields.listen, fields.upstream):
                    done.append(existing.to_json())
                    continue
                if existing:
                    await existing.stop()
                    del self.proxies[fields.name]
                done.append((await self._add(fields)).to_json())
            except ProxyError as exc:
                return exc.status, {**exc.to_json(), "proxies": done}
        return 201, {"proxies": done}

    async def show(self, proxy: str) -> Reply:
        return 200, self._proxy(proxy).to_json()

    async def update(self, proxy: str, body: object) -> Reply:
        target = self._proxy(proxy)
        if not isinstance(body, dict):
            raise BadRequestBody(f"proxy update must be a JSON object, got {type(body).__name__}")
        current = {"listen": str(target.listen), "upstream": str(target.upstream), "enabled": target.enabled}
        given = {key: value for key, value in body.items() if value is not None}  # null keeps the value
        fields = parse_proxy_fields({**current, **given, "name": target.name})
        await target.update(listen=fields.listen, upstream=fields.upstream, enabled=fields.enabled)
        return 200, target.to_json()

    async def delete(self, proxy: str) -> Reply:
        target = self._proxy(proxy)
        await target.stop()
        del self.proxies[proxy]
        return 204, None

    async def toxic_index(self, proxy: str) -> Reply:
        return 200, [toxic.spec.to_json() for toxic in self._proxy(proxy).toxics]

    async def toxic_create(self, proxy: str, body: object) -> Reply:
        target = self._proxy(proxy)
        spec = parse_spec(body)
        if target.find_toxic(spec.name) is not None:
            raise ToxicExists()
        await target.add_toxic(make_toxic(spec))
        return 200, spec.to_json()

    async def toxic_show(self, proxy: str, toxic: str) -> Reply:
        return 200, self._toxic(proxy, toxic)[1].spec.to_json()

    async def toxic_update(self, proxy: str, toxic: str, body: object) -> Reply:
        target, current = self._toxic(proxy, toxic)
        spec = update_spec(current.spec, body)
        await target.update_toxic(current, spec)
        return 200, spec.to_json()

    async def toxic_delete(self, proxy: str, toxic: str) -> Reply:
        target, current = self._toxic(proxy, toxic)
        await target.remove_toxic(current)
        return 204, None

    def _toxic(self, proxy: str, toxic: str) -> tuple[Proxy, Toxic]:
        target = self._proxy(proxy)
        found = target.find_toxic(toxic)
        if found is None:
            raise ToxicNotFound()
        return target, found

    async def close_all(self) -> None:
        for proxy in self.proxies.values():
            await proxy.stop()
        self.proxies.clear()


_NAME = "(?P<proxy>[^/]+)"
_TOXIC = "(?P<toxic>[^/]+)"
# (path pattern, {method: (handler name, takes a JSON body)})
_ROUTES: list[tuple[re.Pattern[str], dict[str, tuple[str, bool]]]] = [
    (re.compile(pattern), methods)
    for pattern, methods in (
        ("/version", {"GET": ("version", False)}),
        ("/reset", {"POST": ("reset", False)}),
        ("/populate", {"POST": ("populate", True)}),
        ("/proxies", {"GET": ("index", False), "POST": ("create", True)}),
        (
            f"/proxies/{_NAME}",
            {
                "GET": ("show", False),
                "POST": ("update", True),
                "PATCH": ("update", True),
                "DELETE": ("delete", False),
            },
        ),
        (f"/proxies/{_NAME}/toxics", {"GET": ("toxic_index", False), "POST": ("toxic_create", True)}),
        (
            f"/proxies/{_NAME}/toxics/{_TOXIC}",
            {
                "GET": ("toxic_show", False),
                "POST": ("toxic_update", True),
                "PATCH": ("toxic_update", True),
                "DELETE": ("toxic_delete", False),
            },
        ),
    )
]


@dataclass(frozen=True)
class Call:
    """A routed request: the registry method to run, its URL arguments, whether it takes a JSON body."""

    handler: str
    args: tuple[str, ...]
    takes_body: bool


def route(method: str, path: str) -> Call:
    for pattern, methods in _ROUTES:
        match = pattern.fullmatch(path.rstrip("/") or "/")
        if match is None:
            continue
        if method not in methods:
            raise MethodNotAllowed(f"{method} {path}; allowed: {', '.join(methods)}")
        handler, takes_body = methods[method]
        return Call(handler, tuple(unquote(value) for value in match.groups()), takes_body)
    raise RouteNotFound(f"{method} {path}")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], dispatch: Callable[[Call, object], Reply]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.dispatch = dispatch
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the host we do not need; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = 15  # Toxiproxy's read timeout: an idle client must not hold a handler thread forever
    server_version = f"harness-toxiproxy/{VERSION}"

    def handle_one_request(self) -> None:
        """http.server's request loop step, with Go's limit on the request line (its 1 MiB of headers plus
        4 KiB of slack) instead of 64 KiB: a proxy named with a megabyte can still be shown and deleted."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve()
            self.wfile.flush()
        except TimeoutError as exc:
            self.log_error("request timed out: %r", exc)
            self.close_connection = True

    def _serve(self) -> None:
        try:
            call = route(self.command, urlsplit(self.path).path)
        except ProxyError as exc:
            self.close_connection = True  # the body, if any, is left unread
            self._reply(exc.status, exc.to_json())
            return
        if self.headers.get("User-Agent", "").startswith("Mozilla/"):
            # Toxiproxy refuses browsers, so that a web page cannot reconfigure a proxy on localhost.
            self.close_connection = True
            self._reply_text(HTTPStatus.FORBIDDEN, "User agent not allowed")
            return
        reply: object | None  # a JSON value; None for no body
        try:
            body = Body(self.rfile, self.headers)
            payload = read_json(body) if call.takes_body else None
        except TimeoutError:
            error = BadRequestBody(f"no more of the body came for {self.timeout} s")
            status, reply = error.status, error.to_json()
            body = None
        except ProxyError as exc:
            status, reply = exc.status, exc.to_json()
            body = None
        else:
            status, reply = self.server.dispatch(call, payload)
        if body is None or not body.complete:
            self.close_connection = True
        self._reply(status, reply)

    def _reply(self, status: int, body: object | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode() + b"\n"
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _reply_text(self, status: int, text: str) -> None:
        payload = text.encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("api %s " + format, self.address_string(), *args)


class ProxyServer:
    """The Toxiproxy-compatible server, run in background threads; a context manager.

    `with ProxyServer() as server:` then point a Toxiproxy client at `server.api_url`. Leaving the block
    closes the API socket, every proxy listener and every proxied connection.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._requested = (host, port)
        self._registry = Registry()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._http: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._bound()[0]

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def api_url(self) -> str:
        host, port = self._bound()
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _bound(self) -> tuple[str, int]:
        if self._http is None:
            raise ProxyError("the proxy server is not running; call start() or use it as a context manager")
        host, port = self._http.server_address[:2]
        return str(host), int(port)

    def start(self) -> ProxyServer:
        if self._http is not None:
            return self
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._run_loop, name="proxy-loop", daemon=True)
        self._loop_thread.start()
        try:
            self._http = _HTTPServer(self._requested, self._dispatch)
        except (OSError, OverflowError) as exc:
            self.stop()
            host, port = self._requested
            raise ServerStartFailed(f"cannot serve the API on {host}:{port}: {exc}") from exc
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="proxy-api", daemon=True
        )
        self._http_thread.start()
        log.info("toxiproxy-compatible API on %s", self.api_url)
        return self

    def stop(self) -> None:
        """Close the API, every proxy and every connection; idempotent."""
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._http_thread is not None:
            self._http_thread.join()
            self._http_thread = None
        loop, self._loop = self._loop, None
        if loop is not None and self._loop_thread is not None:
            asyncio.run_coroutine_threadsafe(self._registry.close_all(), loop).result(REQUEST_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
            self._loop_thread.join()
            self._loop_thread = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run_loop(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # The aborted transports' connection_lost callbacks (which close the sockets) run here too.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def _dispatch(self, call: Call, payload: object) -> Reply:
        """Run one routed request (from an HTTP thread) on the loop; errors become Toxiproxy's JSON."""
        try:
            loop = self._loop
            if loop is None:
                raise ProxyError("the proxy server is stopping")
            handler: Callable[..., Coroutine[object, object, Reply]] = getattr(self._registry, call.handler)
            args: list[object] = [*call.args, payload] if call.takes_body else [*call.args]
            return asyncio.run_coroutine_threadsafe(handler(*args), loop).result(REQUEST_TIMEOUT)
        except ProxyError as exc:
            return exc.status, exc.to_json()
        except Exception as exc:  # a bug of ours: answer 500 like Toxiproxy, and keep serving
            log.exception("proxy API %s failed", call.handler)
            return 500, {"error": f"internal error: {exc!r}", "status": 500}


__all__ = ["VERSION", "ProxyServer", "Registry"]
