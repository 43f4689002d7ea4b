"""Toxiproxy 2.12 conformance: the same API calls and byte-level checks against any Toxiproxy server.

Why: the harness injects network faults through the Toxiproxy API and runs its built-in server
(`harness.proxy`) wherever no real Toxiproxy exists. A chaos scenario is only worth what its faults do, so the
built-in server must do what Toxiproxy does, down to how a connection ends. Each test here pins one behaviour
read from Toxiproxy 2.12's source (`toxics/*.go`, `link.go`, `toxic_collection.go`, `api.go`), and every
test passes against a real Toxiproxy as well as against ours:

    HARNESS_TOXIPROXY=127.0.0.1:8474 python -m pytest tests/integration/test_proxy_conformance.py

Without the variable the suite starts the built-in server. The upstreams are real servers this test process
starts on 127.0.0.1, so the Toxiproxy must run on this machine. The suite creates proxies named
`conformance_*` and deletes them, and one test calls `POST /reset`: do not point it at a server others use.

Timing assertions are lower bounds, or a generous range where the point is that a delay does not grow; every
wait is a socket call or `select` with a deadline, never a bare sleep.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import socket
import socketserver
import statistics
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from harness.proxy import ProxyServer

DEADLINE = 5.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


# --- upstream servers -------------------------------------------------------------------------------


class _Upstream(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class EchoHandler(socketserver.BaseRequestHandler):
    """Sends back every byte as it comes: bidirectional and long-lived, like a database session."""

    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class ReplyAfterEofHandler(socketserver.BaseRequestHandler):
    """Reads the request until the client half-closes, then answers: a protocol that relies on half-close."""

    def handle(self) -> None:
        try:
            while self.request.recv(65536):
                pass
            self.request.sendall(b"reply")
        except OSError:
            pass


class CloseAtOnceHandler(socketserver.BaseRequestHandler):
    """Accepts and closes without a word: the upstream ends the connection first."""

    def handle(self) -> None:
        pass


def serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[str]:
    server = _Upstream(("127.0.0.1", 0), handler)
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
    yield from serve(EchoHandler)


# --- the Toxiproxy under test -----------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """Raw HTTP calls to a Toxiproxy API: the status and the decoded body, nothing hidden by a client."""

    host: str
    port: int

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, object]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=DEADLINE)
        try:
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(payload) if payload else None
        except ValueError:
            return response.status, payload.decode(errors="replace")


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    external = os.environ.get("HARNESS_TOXIPROXY")
    if external:
        host, _, port = external.rpartition(":")
        yield Api(host or "127.0.0.1", int(port))
        return
    with ProxyServer() as server:
        yield Api(server.host, server.port)


@dataclass(frozen=True)
class Proxy:
    name: str
    host: str
    port: int

    def toxics_path(self, toxic: str = "") -> str:
        return f"/proxies/{self.name}/toxics" + (f"/{toxic}" if toxic else "")


@pytest.fixture
def make_proxy(api: Api, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Proxy]]:
    """Create proxies named after the test, and delete them afterwards."""
    base = "conformance_" + re.sub(r"\W+", "_", request.node.name).strip("_")
    made: list[str] = []

    def make(upstream: str) -> Proxy:
        name = f"{base}_{len(made)}"
        status, body = api.call(
            "POST", "/proxies", {"name": name, "upstream": upstream, "listen": "127.0.0.1:0"}
        )
        assert status == 201, body
        made.append(name)
        host, _, port = body["listen"].rpartition(":")  # type: ignore[index]
        return Proxy(name, host, int(port))

    yield make
    for name in made:
        api.call("DELETE", f"/proxies/{name}")


def add_toxic(api: Api, proxy: Proxy, **toxic: object) -> dict[str, object]:
    status, body = api.call("POST", proxy.toxics_path(), toxic)
    assert status == 200, body
    return body  # type: ignore[return-value]


# --- sockets ----------------------------------------------------------------------------------------


def connect(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=DEADLINE)
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


def roundtrip(sock: socket.socket, data: bytes) -> float:
    """Send `data` through an echo proxy, read it back, return the seconds it took."""
    started = time.monotonic()
    sock.sendall(data)
    assert recv_exactly(sock, len(data)) == data
    return time.monotonic() - started


def ending(sock: socket.socket, deadline: float = DEADLINE) -> tuple[bytes, str]:
    """What arrives until the connection ends, and how it ends: 'eof' (FIN), 'reset' (RST), or 'open' if it
    is still open after `deadline` seconds."""
    received = bytearray()
    sock.settimeout(deadline)
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        return bytes(received), "reset"
    except TimeoutError:
        return bytes(received), "open"
    finally:
        sock.settimeout(DEADLINE)
    return bytes(received), "eof"


def assert_silent_and_open(sock: socket.socket, window: float = 0.3) -> None:
    """Nothing arrives for `window` seconds, and the connection is still open."""
    sock.settimeout(window)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return
    except ConnectionResetError:
        raise AssertionError("expected the connection to stay open, it was reset") from None
    finally:
        sock.settimeout(DEADLINE)
    if data:
        raise AssertionError(f"expected the bytes to be held, got {data!r}")
    raise AssertionError("expected the connection to stay open, it was closed")


# --- 1, 2, 3: the timeout toxic ---------------------------------------------------------------------


@pytest.mark.parametrize("heal", ["delete the toxic", "POST /reset"])
def test_healing_a_timeout_closes_its_connections_and_drops_what_it_held(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str, heal: str
) -> None:
    """A timeout toxic swallows bytes; 2.12 drops them, and removing the toxic closes the connection
    (`TimeoutToxic.Cleanup`). So healing a stall or a partition sends a pipeline down its reconnect path,
    and bytes sent during the fault never turn up later in the middle of a stream."""
    proxy = make_proxy(echo_upstream)
    with connect(proxy) as sock:
        roundtrip(sock, b"warm")
        add_toxic(api, proxy, type="timeout", attributes={"timeout": 0})
        sock.sendall(b"held")
        assert_silent_and_open(sock)
        if heal == "delete the toxic":
            assert api.call("DELETE", proxy.toxics_path("timeout_downstream")) == (204, None)
        else:
            assert api.call("POST", "/reset") == (204, None)
        received, how = ending(sock)
        assert (received, how in {"eof", "reset"}) == (b"", True), (received, how)
    with connect(proxy) as sock:  # the proxy itself is healed: a new connection passes
        roundtrip(sock, b"after")


def test_updating_a_timeout_keeps_holding(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """An update restarts the toxic on each connection (`UpdateToxic` interrupts and runs it again); a
    timeout toxic that stays in place lets nothing through, before or after."""
    proxy = make_proxy(echo_upstream)
    with connect(proxy) as sock:
        roundtrip(sock, b"warm")
        add_toxic(api, proxy, type="timeout", attributes={"timeout": 0})
        sock.sendall(b"held")
        assert_silent_and_open(sock)
        status, body = api.call(
            "POST", proxy.toxics_path("timeout_downstream"), {"attributes": {"timeout": 0}}
        )
        assert status == 200, body
        assert_silent_and_open(sock)


def test_timeout_closes_only_after_a_quiet_spell(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """`timeout` > 0 is an idle timer: 2.12 starts a new timer for every chunk it swallows, so a connection
    that keeps sending stays open, and closes `timeout` ms after the last chunk."""
    timeout = 1.0
    proxy = make_proxy(echo_upstream)
    with connect(proxy) as sock:
        roundtrip(sock, b"warm")
        add_toxic(api, proxy, type="timeout", stream="upstream", attributes={"timeout": int(timeout * 1000)})
        started = last_sent = time.monotonic()
        while last_sent - started < 2.5 * timeout:  # a byte every 0.1 s, for well past the timeout
            last_sent = time.monotonic()
            sock.sendall(b".")
            assert_silent_and_open(sock, window=0.1)
        received, how = ending(sock, deadline=timeout + DEADLINE)
        assert (received, how in {"eof", "reset"}) == (b"", True), (received, how)
        assert time.monotonic() - last_sent >= timeout


# --- 4, 5: latency ----------------------------------------------------------------------------------


def test_two_latency_toxics_on_one_stream_add_up(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """Each latency toxic stamps the chunk with the delay it added, and the next one counts from there."""
    proxy = make_proxy(echo_upstream)
    add_toxic(api, proxy, type="latency", name="first", attributes={"latency": 150})
    add_toxic(api, proxy, type="latency", name="second", attributes={"latency": 150})
    with connect(proxy) as sock:
        assert roundtrip(sock, b"x") >= 0.3


def test_pipelined_messages_keep_their_latency(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """A latency toxic has 1024 chunks of buffer in front of it, so a stream of small messages (a pipelining
    client, a replication stream) is delayed by the latency each, not by a growing queue. The first bound is
    the latency itself; the second is generous (half the latency again, for the 90th percentile)."""
    latency, gap, count = 0.5, 0.002, 300
    proxy = make_proxy(echo_upstream)
    add_toxic(api, proxy, type="latency", attributes={"latency": int(latency * 1000)})
    with connect(proxy) as sock, selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        sent: list[float] = []
        arrived: dict[int, float] = {}
        pending = bytearray()
        next_send = time.monotonic()
        give_up = next_send + count * gap + latency + 3 * DEADLINE
        while len(arrived) < count and time.monotonic() < give_up:
            now = time.monotonic()
            if len(sent) < count and now >= next_send:
                sent.append(now)
                sock.sendall(struct.pack("!Q", len(sent) - 1))
                next_send += gap
                continue
            wait = next_send - now if len(sent) < count else give_up - now
            for _ in selector.select(timeout=max(wait, 0)):  # paced by waiting on the socket
                data = sock.recv(65536)
                assert data, "the proxy closed the connection"
                pending += data
                at = time.monotonic()
                while len(pending) >= 8:
                    arrived[struct.unpack("!Q", pending[:8])[0]] = at
                    del pending[:8]
    assert len(arrived) == count, f"only {len(arrived)} of {count} messages came back"
    delays = sorted(arrived[i] - sent[i] for i in range(count))
    p90 = statistics.quantiles(delays, n=10)[-1]
    assert delays[0] >= latency
    assert p90 < 1.5 * latency, f"delays grew under pipelining: min {delays[0]:.3f} p90 {p90:.3f} s"


def test_bandwidth_zero_holds_data_until_removed(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """A bandwidth of 0 KB/s is no bandwidth: 2.12 lets nothing through while the toxic is set, and hands
    on what it held, whole, once it is removed (an interrupted bandwidth toxic writes its chunk out)."""
    proxy = make_proxy(echo_upstream)
    add_toxic(api, proxy, type="bandwidth", attributes={"rate": 0})
    with connect(proxy) as sock:
        sock.sendall(b"held")
        assert_silent_and_open(sock)
        assert api.call("DELETE", proxy.toxics_path("bandwidth_downstream")) == (204, None)
        assert recv_exactly(sock, 4) == b"held"


# --- 6: how connections end ---------------------------------------------------------------------------


@pytest.fixture
def close_at_once_upstream() -> Iterator[str]:
    yield from serve(CloseAtOnceHandler)


def test_a_connection_made_while_reset_peer_is_set_ends_with_a_reset(
    api: Api, make_proxy: Callable[[str], Proxy], close_at_once_upstream: str
) -> None:
    """2.12 sets linger 0 on both sockets of a connection whose chain holds a reset_peer toxic when it
    starts (`ToxicLink.Start`), so however that connection ends, even by the upstream closing first, the
    client sees a TCP reset, the way a crashed peer or a middlebox looks."""
    proxy = make_proxy(close_at_once_upstream)
    add_toxic(api, proxy, type="reset_peer", stream="upstream", attributes={"timeout": 0})
    try:
        sock = connect(proxy)
    except ConnectionResetError:  # on a busy machine the reset can land before connect() returns: the same
        return
    with sock:
        assert ending(sock) == (b"", "reset")


def test_reset_peer_added_to_a_live_connection_closes_it_normally(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """A reset_peer toxic added to a connection that already exists drops the next data and closes the
    connection, but its sockets never got linger 0: the client sees an ordinary close (FIN), not a reset."""
    proxy = make_proxy(echo_upstream)
    with connect(proxy) as sock:
        roundtrip(sock, b"warm")
        add_toxic(api, proxy, type="reset_peer", attributes={"timeout": 0})
        sock.sendall(b"boom")
        assert ending(sock) == (b"", "eof")


@pytest.fixture
def reply_after_eof_upstream() -> Iterator[str]:
    yield from serve(ReplyAfterEofHandler)


def test_a_half_close_through_the_proxy_ends_the_connection(
    make_proxy: Callable[[str], Proxy], reply_after_eof_upstream: str
) -> None:
    """When one side stops sending, 2.12 closes the other socket whole (`ToxicLink.write` calls Close, not
    CloseWrite), so an answer the upstream sends after reading the client's EOF never arrives: a client that
    half-closes through Toxiproxy must not wait for it. Straight to the upstream, the answer comes."""
    host, _, port = reply_after_eof_upstream.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=DEADLINE) as direct:
        direct.sendall(b"request")
        direct.shutdown(socket.SHUT_WR)
        assert ending(direct) == (b"reply", "eof")
    proxy = make_proxy(reply_after_eof_upstream)
    with connect(proxy) as sock:
        sock.sendall(b"request")
        sock.shutdown(socket.SHUT_WR)
        received, how = ending(sock)
        assert (received, how in {"eof", "reset"}) == (b"", True), (received, how)


# --- 7: what 2.12 accepts ---------------------------------------------------------------------------


def test_toxics_toxiproxy_accepts_are_accepted_and_pass_data(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """Scenario files written for Toxiproxy must load here: the `noop` toxic, a toxicity above 1 (it always
    applies), a slicer given only its size (variation and delay default to 0) and one whose variation
    equals its average. The data still goes through intact."""
    proxy = make_proxy(echo_upstream)
    noop = add_toxic(api, proxy, type="noop")
    assert (noop["type"], noop["attributes"]) == ("noop", {})
    always = add_toxic(api, proxy, type="latency", toxicity=2, attributes={"latency": 10})
    assert always["toxicity"] == 2
    sized = add_toxic(api, proxy, type="slicer", stream="upstream", attributes={"average_size": 64})
    assert sized["attributes"] == {"average_size": 64, "size_variation": 0, "delay": 0}
    wide = add_toxic(
        api, proxy, type="slicer", name="wide", attributes={"average_size": 10, "size_variation": 10}
    )
    assert wide["attributes"] == {"average_size": 10, "size_variation": 10, "delay": 0}
    payload = bytes(range(256)) * 8
    with connect(proxy) as sock:
        assert roundtrip(sock, payload) >= 0.01


# --- 8: browsers ------------------------------------------------------------------------------------


def test_browsers_are_refused(api: Api, echo_upstream: str) -> None:
    """2.12 answers 403 to any User-Agent starting with `Mozilla/`, so a web page cannot drive the proxy on
    localhost (create a proxy to an internal host, or cut a database link) through the visitor's browser."""
    name = "conformance_browser"
    requests = [
        ("GET", "/proxies", None),
        ("GET", "/version", None),
        ("POST", "/proxies", {"name": name, "upstream": echo_upstream, "listen": "127.0.0.1:0"}),
        ("POST", "/reset", None),
    ]
    for method, path, body in requests:
        status, answer = api.call(method, path, body, headers={"User-Agent": BROWSER})
        assert status == 403, (method, path, status, answer)
    assert api.call("GET", f"/proxies/{name}")[0] == 404  # refused, not half-done
    assert api.call("GET", "/proxies", headers={"User-Agent": "curl/8.5.0"})[0] == 200


# --- 9: malformed input -----------------------------------------------------------------------------


def test_deeply_nested_json_is_a_bad_request(api: Api) -> None:
    """JSON nested 100,000 deep is the client's fault (Go's decoder stops at 10,000): a 400, not a 500."""
    status, body = api.call("POST", "/proxies", raw=b"[" * 100_000 + b"]" * 100_000)
    assert status == 400, body
    assert body["error"].startswith("bad request body"), body  # type: ignore[index]


def test_an_attribute_too_big_for_toxiproxy_is_a_bad_request(
    api: Api, make_proxy: Callable[[str], Proxy], echo_upstream: str
) -> None:
    """Toxiproxy reads attributes into 64-bit integers: 10^400 (or 2^63) cannot be one, and says so with a
    400; nothing is added."""
    proxy = make_proxy(echo_upstream)
    for value in (b"1" + b"0" * 400, str(2**63).encode()):
        raw = b'{"type": "latency", "attributes": {"latency": ' + value + b"}}"
        status, body = api.call("POST", proxy.toxics_path(), raw=raw)
        assert status == 400, body
        assert body["error"].startswith("bad request body"), body  # type: ignore[index]
    assert api.call("GET", proxy.toxics_path()) == (200, [])


def test_a_body_announced_longer_than_sent_is_answered(api: Api, echo_upstream: str) -> None:
    """Go's JSON decoder reads the body only until the first value is whole, so a request that announces a
    terabyte and sends one object is answered at once (and the proxy made): no dropped connection, no
    attempt to read or hold the rest."""
    name = "conformance_announced_terabyte"
    body = json.dumps({"name": name, "upstream": echo_upstream, "listen": "127.0.0.1:0"}).encode()
    head = (
        f"POST /proxies HTTP/1.1\r\nHost: {api.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10**12}\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((api.host, api.port), timeout=DEADLINE) as sock:
            sock.sendall(head + body)
            answer = sock.makefile("rb").readline()
        assert answer.split(b" ", 2)[1:2] == [b"201"], answer
        assert api.call("GET", f"/proxies/{name}")[0] == 200
    finally:
        api.call("DELETE", f"/proxies/{name}")


def test_a_proxy_named_with_a_megabyte_can_be_deleted(api: Api, echo_upstream: str) -> None:
    """Go takes a megabyte of headers (the request line included), so a proxy whose name is a megabyte
    long, which the API accepts, can also be shown and deleted, not left behind for good."""
    name = "n" * 1024 * 1024
    status, _ = api.call(
        "POST", "/proxies", {"name": name, "upstream": echo_upstream, "listen": "127.0.0.1:0"}
    )
    assert status == 201
    try:
        assert api.call("GET", f"/proxies/{name}")[0] == 200
    finally:
        status, body = api.call("DELETE", f"/proxies/{name}")
    assert status == 204, body
    assert name not in api.call("GET", "/proxies")[1]  # type: ignore[operator]
