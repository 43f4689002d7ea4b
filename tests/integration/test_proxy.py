"""The built-in Toxiproxy-compatible server, driven by the real `toxiproxy-python` client library.

What Toxiproxy 2.12 itself does is pinned in `test_proxy_conformance.py`, which runs against a real Toxiproxy
too; this module covers the rest: the client library, the built-in's own refusals and limits, its
lifecycle and command line, and the chain rewiring that no single API call shows.

Why through that client: the server exists so that scenario code written for a real Toxiproxy runs
unchanged against it, so the proof is that Toxiproxy's own client works here. Raw HTTP is used only where
the client hides what is checked (status codes and error bodies).

Upstreams are real servers: a TCP echo server started here (bidirectional, long-lived), an HTTP server,
and the session's embedded Postgres for the wire protocol the harness exists for. Timing assertions are
lower bounds only. No test sleeps: each wait is a blocking socket call with a deadline, since every state
change the API reports is already in force when its response arrives.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, ProxyExists

from harness.provision import EmbeddedPostgres
from harness.proxy import ProxyError, ProxyServer

DEADLINE = 5.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HTTP_BODY = b"hello through the proxy\n"


# --- upstream servers -------------------------------------------------------------------------------


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(HTTP_BODY)))
        self.end_headers()
        self.wfile.write(HTTP_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(server: socketserver.TCPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def echo_upstream() -> Iterator[str]:
    yield from _serve(_EchoServer(("127.0.0.1", 0), _EchoHandler))


@pytest.fixture
def http_upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HttpHandler)
    server.daemon_threads = True
    yield from _serve(server)


# --- our server and the client ----------------------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    with ProxyServer() as running:
        # toxiproxy-python reads its server address from these class attributes.
        monkeypatch.setattr(APIConsumer, "host", running.host)
        monkeypatch.setattr(APIConsumer, "port", running.port)
        yield running


@pytest.fixture
def client(server: ProxyServer) -> toxiproxy.Toxiproxy:
    return toxiproxy.Toxiproxy()


@pytest.fixture
def echo(client: toxiproxy.Toxiproxy, echo_upstream: str) -> toxiproxy.Proxy:
    return client.create(upstream=echo_upstream, name="echo")


def api(server: ProxyServer, method: str, path: str, body: object = None, raw: bytes | None = None):
    """One raw API call: (status, decoded JSON body or None)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.api_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, json.loads(payload) if payload else None


def address(proxy: toxiproxy.Proxy) -> tuple[str, int]:
    host, _, port = proxy.listen.rpartition(":")
    return host, int(port)


def connect(proxy: toxiproxy.Proxy) -> socket.socket:
    sock = socket.create_connection(address(proxy), timeout=DEADLINE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        data = sock.recv(size - len(received))
        if not data:
            raise AssertionError(f"connection closed after {len(received)} of {size} bytes")
        received += data
    return bytes(received)


def recv_until_closed(sock: socket.socket) -> bytes:
    received = bytearray()
    while data := sock.recv(65536):
        received += data
    return bytes(received)


def roundtrip(sock: socket.socket, data: bytes) -> float:
    """Send `data` through the echo proxy, read it back, return the seconds it took."""
    started = time.monotonic()
    sock.sendall(data)
    assert recv_exactly(sock, len(data)) == data
    return time.monotonic() - started


def closed_how(sock: socket.socket) -> str:
    """'eof' (FIN) or 'reset' (RST) once the proxy ends the connection; raises if data or nothing comes."""
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return "reset"
    assert data == b"", f"expected the connection to be closed, got data {data!r}"
    return "eof"


def assert_nothing_arrives(sock: socket.socket, window: float = 0.3) -> None:
    sock.settimeout(window)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return
    finally:
        sock.settimeout(DEADLINE)
    raise AssertionError(f"expected the data to be held, got {data!r}")


def refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=DEADLINE).close()
    except ConnectionRefusedError:
        return True
    return False


# --- API basics -------------------------------------------------------------------------------------


def test_version_and_empty_server(server: ProxyServer, client: toxiproxy.Toxiproxy) -> None:
    assert client.running()
    assert json.loads(client.version()) == {"version": "2.0.0+harness"}
    assert client.proxies() == {}
    assert api(server, "POST", "/reset") == (204, None)


def test_create_reports_the_real_listen_address_and_defaults(
    server: ProxyServer, client: toxiproxy.Toxiproxy, echo_upstream: str
) -> None:
    proxy = client.create(upstream=echo_upstream, name="echo", listen="127.0.0.1:0")
    host, port = address(proxy)
    assert (host, proxy.enabled, proxy.upstream) == ("127.0.0.1", True, echo_upstream)
    assert port != 0
    status, shown = api(server, "GET", "/proxies/echo")
    assert status == 200
    assert shown == {
        "name": "echo",
        "listen": f"127.0.0.1:{port}",
        "upstream": echo_upstream,
        "enabled": True,
        "toxics": [],
    }
    assert set(client.proxies()) == {"echo"}


def test_create_disabled_proxy_does_not_listen(server: ProxyServer, echo_upstream: str) -> None:
    status, created = api(
        server, "POST", "/proxies", {"name": "off", "upstream": echo_upstream, "enabled": False}
    )
    assert (status, created["enabled"], created["toxics"]) == (201, False, [])


def test_bytes_flow_both_ways_on_a_long_lived_connection(echo: toxiproxy.Proxy) -> None:
    payload = os.urandom(3 * 1024 * 1024)  # far larger than any socket buffer: backpressure both ways
    with connect(echo) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join()
        for _ in range(50):  # many small request/response exchanges, like a database session
            assert roundtrip(sock, b"SELECT 1;") >= 0


def test_http_through_the_proxy(client: toxiproxy.Toxiproxy, http_upstream: str) -> None:
    proxy = client.create(upstream=http_upstream, name="web")
    host, port = address(proxy)
    with urllib.request.urlopen(f"http://{host}:{port}/anything", timeout=DEADLINE) as response:
        assert response.read() == HTTP_BODY
    proxy.add_toxic(type="latency", attributes={"latency": 200})
    started = time.monotonic()
    with urllib.request.urlopen(f"http://{host}:{port}/slow", timeout=DEADLINE) as response:
        assert response.read() == HTTP_BODY
    assert time.monotonic() - started >= 0.2


def test_postgres_session_through_the_proxy(client: toxiproxy.Toxiproxy, pg: EmbeddedPostgres) -> None:
    """The wire protocol the harness exists for: a long-lived psycopg session, faults applied mid-session."""
    server = pg.info()
    proxy = client.create(upstream=f"{server.host}:{server.port}", name="postgres")
    host, port = address(proxy)
    dsn = psycopg.conninfo.make_conninfo(pg.admin_dsn(), host=host, port=port, connect_timeout=5)
    with psycopg.connect(dsn, autocommit=True) as conn:
        big = "x" * 200_000  # larger than a socket buffer, in each direction
        assert conn.execute("select %s::text = %s::text", (big, big)).fetchone() == (True,)
        rows = conn.execute("select repeat('y', 1000) from generate_series(1, 5000)").fetchall()
        assert len(rows) == 5000

        proxy.add_toxic(type="latency", attributes={"latency": 200})
        started = time.monotonic()
        assert conn.execute("select 1").fetchone() == (1,)
        assert time.monotonic() - started >= 0.2
        proxy.destroy_toxic("latency_downstream")

        proxy.disable()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")
    proxy.enable()
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("select 2").fetchone() == (2,)
        proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 3")


# --- toxics -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_a_live_connection(echo: toxiproxy.Proxy, stream: str) -> None:
    with connect(echo) as sock:
        roundtrip(sock, b"before")  # the connection exists before the toxic does
        echo.add_toxic(type="latency", stream=stream, attributes={"latency": 300, "jitter": 0})
        assert roundtrip(sock, b"after") >= 0.3
        assert roundtrip(sock, b"and again") >= 0.3
        echo.destroy_toxic(f"latency_{stream}")
        assert echo.toxics() == {}
        assert roundtrip(sock, b"healed") >= 0


def test_toxic_update_merges_attributes_and_applies(server: ProxyServer, echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="latency", name="slow", attributes={"latency": 50, "jitter": 0})
    status, updated = api(server, "POST", "/proxies/echo/toxics/slow", {"attributes": {"latency": 400}})
    assert status == 200
    assert updated == {
        "name": "slow",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 400, "jitter": 0},
    }
    assert api(server, "GET", "/proxies/echo/toxics/slow") == (200, updated)
    with connect(echo) as sock:
        assert roundtrip(sock, b"x") >= 0.4


def test_timeout_closes_the_connection_after_its_delay(echo: toxiproxy.Proxy) -> None:
    with connect(echo) as sock:
        roundtrip(sock, b"warm")
        started = time.monotonic()
        echo.add_toxic(type="timeout", attributes={"timeout": 200})
        sock.sendall(b"never echoed")
        assert closed_how(sock) == "eof"
        assert time.monotonic() - started >= 0.2


def test_reset_peer_resets_the_connection(echo: toxiproxy.Proxy) -> None:
    """A connection made while the toxic is set is reset on its first data (one added to a live connection
    closes it normally: see test_proxy_conformance)."""
    echo.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with connect(echo) as sock:
        sock.sendall(b"boom")
        assert closed_how(sock) == "reset"


def test_limit_data_passes_the_first_bytes_then_closes(echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="limit_data", attributes={"bytes": 10})
    with connect(echo) as sock:
        sock.sendall(bytes(range(100)))
        assert recv_until_closed(sock) == bytes(range(10))


def test_bandwidth_limits_the_rate(echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="bandwidth", attributes={"rate": 20})  # 20 KB/s: 10,000 bytes take 0.5 s
    with connect(echo) as sock:
        assert roundtrip(sock, os.urandom(10_000)) >= 0.5


def test_slow_close_delays_the_close(echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="slow_close", attributes={"delay": 400})
    with connect(echo) as sock:
        roundtrip(sock, b"data still flows")
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)  # the echo server closes in turn; that close is what gets delayed
        assert recv_until_closed(sock) == b""
        assert time.monotonic() - started >= 0.4


def test_slicer_cuts_data_into_small_pieces(echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="slicer", attributes={"average_size": 100, "size_variation": 0, "delay": 200_000})
    payload = os.urandom(300)
    with connect(echo) as sock:
        sock.sendall(payload)
        pieces = []
        while sum(map(len, pieces)) < len(payload):
            pieces.append(sock.recv(65536))
            assert pieces[-1], "connection closed early"
    assert b"".join(pieces) == payload
    assert max(map(len, pieces)) <= 100, [len(piece) for piece in pieces]


def test_toxicity_zero_never_applies(echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="timeout", toxicity=0.0, attributes={"timeout": 0})
    assert echo.toxics()["timeout_downstream"].toxicity == 0.0
    with connect(echo) as sock:
        sock.sendall(b"passes")
        assert recv_exactly(sock, 6) == b"passes"


def test_toxic_churn_keeps_the_byte_stream_whole(server: ProxyServer, echo: toxiproxy.Proxy) -> None:
    """Adding, updating and removing toxics rewires every live connection's chains while bytes are in them
    (held by a latency toxic, half sliced, queued in a buffer). Whatever the timing, every byte must come
    out once and in order: a proxy that lost or reordered bytes would fail a chaos run for its own sake."""
    changes = [
        ("POST", "/proxies/echo/toxics", {"name": "lat_up", "type": "latency", "stream": "upstream"}),
        ("POST", "/proxies/echo/toxics/lat_up", {"attributes": {"latency": 3}}),
        (
            "POST",
            "/proxies/echo/toxics",
            {"name": "cut", "type": "slicer", "attributes": {"average_size": 1500}},
        ),
        ("POST", "/proxies/echo/toxics", {"name": "bw", "type": "bandwidth", "attributes": {"rate": 50_000}}),
        (
            "POST",
            "/proxies/echo/toxics",
            {"name": "lat_down", "type": "latency", "attributes": {"latency": 2}},
        ),
        ("DELETE", "/proxies/echo/toxics/cut", None),
        ("POST", "/proxies/echo/toxics/lat_down", {"toxicity": 0.5}),
        ("DELETE", "/proxies/echo/toxics/lat_up", None),
        ("DELETE", "/proxies/echo/toxics/bw", None),
        ("DELETE", "/proxies/echo/toxics/lat_down", None),
    ]
    payload = os.urandom(4 * 1024 * 1024)
    received = bytearray()
    with connect(echo) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        step = 0
        while len(received) < len(payload):
            if len(received) >= step * 64 * 1024:  # a change every 64 KiB that comes back
                method, path, body = changes[step % len(changes)]
                assert api(server, method, path, body)[0] in {200, 204}
                step += 1
            data = sock.recv(65536)
            assert data, f"closed after {len(received)} bytes"
            received += data
        sender.join()
    assert step >= len(changes)  # every change happened while bytes flowed
    assert bytes(received) == payload


def test_toxic_changes_never_wait_for_a_stalled_client(server: ProxyServer, echo: toxiproxy.Proxy) -> None:
    """A client that stops reading stalls its connection all the way back to the proxy. Toxiproxy then
    blocks toxic API calls until that client reads again (an interrupted toxic must finish its stuck write
    first); here the calls return at once, and once the client reads, every byte arrives in order."""
    payload = os.urandom(32 * 1024 * 1024)  # more than every buffer on the way can hold
    with connect(echo) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        sender.join(timeout=2)
        assert sender.is_alive(), "the payload fit in the buffers: nothing stalled"
        body = {"name": "late", "type": "latency", "attributes": {"latency": 5}}
        assert api(server, "POST", "/proxies/echo/toxics", body)[0] == 200
        assert api(server, "POST", "/proxies/echo/toxics/late", {"attributes": {"latency": 1}})[0] == 200
        assert api(server, "DELETE", "/proxies/echo/toxics/late")[0] == 204
        assert recv_exactly(sock, len(payload)) == payload
        sender.join()


# --- partitions and reset ---------------------------------------------------------------------------


def test_disable_cuts_and_refuses_then_enable_restores(
    client: toxiproxy.Toxiproxy, echo: toxiproxy.Proxy
) -> None:
    host, port = address(echo)
    with connect(echo) as open_before:
        roundtrip(open_before, b"alive")
        echo.disable()
        assert closed_how(open_before) in {"eof", "reset"}
    assert refuses_connections(host, port)
    assert client.get_proxy("echo").enabled is False

    echo.enable()
    shown = client.get_proxy("echo")
    assert (shown.enabled, shown.listen) == (True, f"{host}:{port}")  # same port again
    with connect(echo) as sock:
        assert roundtrip(sock, b"back") >= 0


def test_disable_right_after_connect_never_leaves_a_client_hanging(echo: toxiproxy.Proxy) -> None:
    """A client accepted moments before the partition must be cut too, not left connected to nothing."""
    for attempt in range(100):
        with connect(echo) as sock:
            echo.disable()
            try:
                closed_how(sock)
            except TimeoutError:
                raise AssertionError(f"attempt {attempt}: the client was never closed") from None
            echo.enable()


def test_down_context_manager_partitions_for_its_block(echo: toxiproxy.Proxy) -> None:
    with echo.down():
        assert refuses_connections(*address(echo))
    with connect(echo) as sock:
        roundtrip(sock, b"healed")


def test_reset_removes_toxics_reenables_and_closes_what_a_timeout_held(
    client: toxiproxy.Toxiproxy, echo: toxiproxy.Proxy, http_upstream: str
) -> None:
    web = client.create(upstream=http_upstream, name="web")
    web.add_toxic(type="latency", attributes={"latency": 1000})
    web.disable()
    with connect(echo) as sock:
        roundtrip(sock, b"warm")
        echo.add_toxic(type="timeout", attributes={"timeout": 0})
        echo.add_toxic(type="latency", stream="upstream", attributes={"latency": 100})
        sock.sendall(b"held")
        assert_nothing_arrives(sock)
        assert client.reset()
        assert closed_how(sock) in {"eof", "reset"}  # and the held bytes never came
    proxies = client.proxies()
    assert {name: (p.enabled, p.toxics()) for name, p in proxies.items()} == {
        "echo": (True, {}),
        "web": (True, {}),
    }
    host, port = address(web)
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=DEADLINE) as response:
        assert response.read() == HTTP_BODY
    with connect(echo) as sock:
        assert roundtrip(sock, b"healed") < 1  # no toxic left: no latency


def test_update_upstream_redirects_new_connections(
    server: ProxyServer, echo: toxiproxy.Proxy, http_upstream: str
) -> None:
    status, updated = api(server, "PATCH", "/proxies/echo", {"upstream": http_upstream})
    assert (status, updated["upstream"], updated["listen"]) == (200, http_upstream, echo.listen)
    host, port = address(echo)
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=DEADLINE) as response:
        assert response.read() == HTTP_BODY


def test_populate_creates_and_replaces(server: ProxyServer, echo_upstream: str, http_upstream: str) -> None:
    wanted = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": echo_upstream},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": http_upstream, "enabled": False},
    ]
    status, body = api(server, "POST", "/populate", wanted)
    assert status == 201
    assert [(p["name"], p["upstream"], p["enabled"]) for p in body["proxies"]] == [
        ("a", echo_upstream, True),
        ("b", http_upstream, False),
    ]
    same = [{"name": "a", "listen": body["proxies"][0]["listen"], "upstream": echo_upstream}]
    assert api(server, "POST", "/populate", same) == (201, {"proxies": [body["proxies"][0]]})
    assert sorted(api(server, "GET", "/proxies")[1]) == ["a", "b"]


def test_delete_proxy_stops_it(
    server: ProxyServer, client: toxiproxy.Toxiproxy, echo: toxiproxy.Proxy
) -> None:
    with connect(echo) as sock:
        assert client.destroy(echo)
        assert closed_how(sock) in {"eof", "reset"}
    assert refuses_connections(*address(echo))
    assert client.proxies() == {}


# --- errors -----------------------------------------------------------------------------------------


def test_not_found_and_conflict_errors_match_toxiproxy(
    server: ProxyServer, client: toxiproxy.Toxiproxy, echo: toxiproxy.Proxy, echo_upstream: str
) -> None:
    proxy_missing = (404, {"error": "proxy not found", "status": 404})
    toxic_missing = (404, {"error": "toxic not found", "status": 404})
    assert api(server, "GET", "/proxies/nope") == proxy_missing
    assert api(server, "DELETE", "/proxies/nope") == proxy_missing
    assert api(server, "POST", "/proxies/nope", {"enabled": False}) == proxy_missing
    assert api(server, "GET", "/proxies/nope/toxics") == proxy_missing
    assert api(server, "GET", "/proxies/echo/toxics/nope") == toxic_missing
    assert api(server, "DELETE", "/proxies/echo/toxics/nope") == toxic_missing
    assert api(server, "POST", "/proxies/echo/toxics/nope", {"toxicity": 0.5}) == toxic_missing
    assert client.get_proxy("nope") is None

    duplicate = {"name": "echo", "upstream": echo_upstream}
    assert api(server, "POST", "/proxies", duplicate) == (
        409,
        {"error": "proxy already exists", "status": 409},
    )
    echo.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(ProxyExists, match="toxic already exists"):  # the client maps every 409 to this
        echo.add_toxic(type="latency", attributes={"latency": 2})
    assert echo.toxics()["latency_downstream"].attributes == {"latency": 1, "jitter": 0}


# id -> (method, path, request body bytes, status, exact error message)
BROKEN_REQUESTS = {
    "invalid-json": (
        "POST",
        "/proxies",
        b'{"name": ',
        400,
        "bad request body: invalid JSON: Expecting value at line 1 column 10",
    ),
    "empty-body": ("POST", "/proxies", b"", 400, "bad request body: the body is empty; send a JSON object"),
    "nan": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "toxicity": NaN}',
        400,
        "bad request body: invalid JSON: NaN is not valid JSON",
    ),
    "proxy-not-object": (
        "POST",
        "/proxies",
        b"[1]",
        400,
        "bad request body: proxy must be a JSON object, got list",
    ),
    "missing-name": ("POST", "/proxies", b'{"upstream": "127.0.0.1:1"}', 400, "missing required field: name"),
    "missing-upstream": ("POST", "/proxies", b'{"name": "x"}', 400, "missing required field: upstream"),
    "upstream-no-port": (
        "POST",
        "/proxies",
        b'{"name": "x", "upstream": "db"}',
        400,
        "bad request body: upstream must be a string like 'host:port', got 'db'",
    ),
    "upstream-port-zero": (
        "POST",
        "/proxies",
        b'{"name": "x", "upstream": "db:0"}',
        400,
        "bad request body: upstream port must be a number from 1 to 65535, got 'db:0'",
    ),
    "listen-port-too-big": (
        "POST",
        "/proxies",
        b'{"name": "x", "upstream": "db:1", "listen": "127.0.0.1:70000"}',
        400,
        "bad request body: listen port must be a number from 0 to 65535, got '127.0.0.1:70000'",
    ),
    "enabled-not-bool": (
        "POST",
        "/proxies",
        b'{"name": "x", "upstream": "db:1", "enabled": "yes"}',
        400,
        'bad request body: enabled must be true or false, got "yes"',
    ),
    "update-enabled-not-bool": (
        "POST",
        "/proxies/echo",
        b'{"enabled": 1}',
        400,
        "bad request body: enabled must be true or false, got 1",
    ),
    "unknown-toxic-type": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latancy"}',
        400,
        'invalid toxic type: "latancy"; expected one of: bandwidth, latency, limit_data, noop, reset_peer, '
        "slicer, slow_close, timeout",
    ),
    "missing-toxic-type": (
        "POST",
        "/proxies/echo/toxics",
        b'{"attributes": {}}',
        400,
        "invalid toxic type: null; expected one of: bandwidth, latency, limit_data, noop, reset_peer, slicer, "
        "slow_close, timeout",
    ),
    "bad-stream": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "stream": "sideways"}',
        400,
        'stream was invalid, can be either upstream or downstream: got "sideways"',
    ),
    "negative-latency": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "attributes": {"latency": -5}}',
        400,
        "bad request body: latency.latency must be a whole number >= 0 (milliseconds), got -5",
    ),
    "string-latency": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "attributes": {"latency": "100"}}',
        400,
        'bad request body: latency.latency must be a whole number >= 0 (milliseconds), got "100"',
    ),
    "fractional-rate": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "bandwidth", "attributes": {"rate": 1.5}}',
        400,
        "bad request body: bandwidth.rate must be a whole number >= 0 (KB/s), got 1.5",
    ),
    "misspelt-attribute": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "attributes": {"latancy": 5}}',
        400,
        'bad request body: latency toxic has no attribute "latancy"; expected one of: latency, jitter',
    ),
    "whole-float-rate": (  # Go reads attributes as integers: 1.0 is refused there too
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "bandwidth", "attributes": {"rate": 1.0}}',
        400,
        "bad request body: bandwidth.rate must be a whole number >= 0 (KB/s), got 1.0",
    ),
    "latency-beyond-int64": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "attributes": {"latency": 9223372036854775808}}',
        400,
        "bad request body: latency.latency must be below 2**63 (Toxiproxy reads a 64-bit integer), "
        "got 9223372036854775808",
    ),
    "toxicity-not-a-number": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "toxicity": "high"}',
        400,
        'bad request body: toxicity must be a number (a probability; Toxiproxy reads a 32-bit float), got "high"',
    ),
    "toxicity-beyond-float32": (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "latency", "toxicity": 1e39}',
        400,
        "bad request body: toxicity must be a number (a probability; Toxiproxy reads a 32-bit float), got 1e+39",
    ),
    "slicer-without-size": (  # Toxiproxy accepts it, then recurses without end on the first data
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "slicer"}',
        400,
        "bad request body: slicer.average_size must be at least 1 byte, got 0 "
        "(Toxiproxy accepts 0 and then crashes on the first data)",
    ),
    "slicer-variation-above-size": (  # Toxiproxy accepts it, then can cut at a negative offset and panic
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "slicer", "attributes": {"average_size": 10, "size_variation": 11}}',
        400,
        "bad request body: slicer.size_variation must be at most average_size (10), got 11 "
        "(Toxiproxy accepts more and then can crash on data)",
    ),
    "populate-not-list": (
        "POST",
        "/populate",
        b"{}",
        400,
        "bad request body: populate expects a JSON list of proxies, got dict",
    ),
    "populate-missing-upstream": (
        "POST",
        "/populate",
        b'[{"name": "p1", "upstream": "db:1"}, {"name": "p2"}]',
        400,
        "missing required field: upstream at proxy 2",
    ),
    "unknown-route": ("GET", "/toxics", None, 404, "no such endpoint in the Toxiproxy API: GET /toxics"),
    "wrong-method": ("PUT", "/proxies", b"{}", 405, "method not allowed: PUT /proxies; allowed: GET, POST"),
}


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "message"),
    [pytest.param(*case, id=name) for name, case in BROKEN_REQUESTS.items()],
)
def test_broken_requests_get_a_clear_error(
    server: ProxyServer,
    echo: toxiproxy.Proxy,
    method: str,
    path: str,
    raw: bytes | None,
    status: int,
    message: str,
) -> None:
    assert api(server, method, path, raw=raw) == (status, {"error": message, "status": status})
    # Nothing was half-applied: the only proxy is still the echo proxy, enabled and without toxics.
    proxies = api(server, "GET", "/proxies")[1]
    assert list(proxies) == ["echo"]
    assert (proxies["echo"]["enabled"], proxies["echo"]["toxics"]) == (True, [])


def test_chunked_and_unreadable_bodies(server: ProxyServer, echo_upstream: str) -> None:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=DEADLINE)
    body = json.dumps({"name": "chunked", "upstream": echo_upstream}).encode()
    connection.request("POST", "/proxies", body=iter([body[:10], body[10:]]), encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["name"]) == (201, "chunked")
    connection.close()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=DEADLINE)
    connection.request("POST", "/proxies", body=b"{}", headers={"Content-Length": "lots"})
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"].startswith("bad request body: unreadable HTTP body")
    connection.close()


def test_client_raises_invalid_toxic_on_bad_input(echo: toxiproxy.Proxy) -> None:
    with pytest.raises(InvalidToxic, match="invalid toxic type"):
        echo.add_toxic(type="nonsense")
    with pytest.raises(InvalidToxic, match=re.escape("latency.jitter must be a whole number >= 0")):
        echo.add_toxic(type="latency", attributes={"latency": 10, "jitter": -1})
    assert echo.toxics() == {}


def test_bad_toxic_update_keeps_the_old_toxic(server: ProxyServer, echo: toxiproxy.Proxy) -> None:
    echo.add_toxic(type="latency", name="slow", attributes={"latency": 10})
    status, body = api(server, "POST", "/proxies/echo/toxics/slow", {"attributes": {"latency": -1}})
    assert status == 400
    assert (
        body["error"]
        == "bad request body: latency.latency must be a whole number >= 0 (milliseconds), got -1"
    )
    assert echo.toxics()["slow"].attributes == {"latency": 10, "jitter": 0}


# --- lifecycle --------------------------------------------------------------------------------------


def _proxy_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in {"proxy-loop", "proxy-api"}]


def test_stop_closes_every_socket_and_thread(echo_upstream: str) -> None:
    with ProxyServer() as running:
        api_address = (running.host, running.port)
        status, created = api(running, "POST", "/proxies", {"name": "p", "upstream": echo_upstream})
        assert status == 201
        host, _, port = created["listen"].rpartition(":")
        live = socket.create_connection((host, int(port)), timeout=DEADLINE)
        live.sendall(b"ping")
        assert recv_exactly(live, 4) == b"ping"
    with live:
        assert closed_how(live) in {"eof", "reset"}
    assert refuses_connections(*api_address)
    assert refuses_connections(host, int(port))
    assert _proxy_threads() == []
    with pytest.raises(ProxyError, match="not running"):
        running.api_url  # noqa: B018


def test_start_failure_is_a_proxy_error_and_leaves_nothing(server: ProxyServer) -> None:
    with pytest.raises(ProxyError, match=f"cannot serve the API on 127.0.0.1:{server.port}"):
        ProxyServer(port=server.port).start()
    assert sorted(_proxy_threads()) == ["proxy-api", "proxy-loop"]  # only the fixture's server


def test_listen_on_a_taken_port_is_an_error(server: ProxyServer, echo_upstream: str) -> None:
    status, body = api(
        server,
        "POST",
        "/proxies",
        {"name": "clash", "listen": f"127.0.0.1:{server.port}", "upstream": echo_upstream},
    )
    assert status == 500
    assert body["error"].startswith(f"could not listen on the requested address: 127.0.0.1:{server.port}: ")
    assert api(server, "GET", "/proxies") == (200, {})


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_until_signalled(stop_signal: signal.Signals) -> None:
    command = [sys.executable, "-m", "harness.proxy", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"no API address in the first line: {line!r}"
        with urllib.request.urlopen(f"{match.group(0)}/version", timeout=DEADLINE) as response:
            assert json.loads(response.read()) == {"version": "2.0.0+harness"}
        process.send_signal(stop_signal)
        assert process.wait(timeout=DEADLINE) == 0
        assert refuses_connections("127.0.0.1", int(match.group(1)))
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("argv", [["--port", "nope"], ["--port", "70000"], ["--bogus"]])
def test_command_line_bad_arguments_exit_3(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.proxy", *argv], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 3, done.stderr
    assert "error:" in done.stderr


def test_command_line_port_taken_exits_4(server: ProxyServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.proxy", "--port", str(server.port)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 4, done.stderr
    assert (
        f"error: the proxy server could not start: cannot serve the API on 127.0.0.1:{server.port}"
        in done.stderr
    )
