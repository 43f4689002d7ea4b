"""TCP forwarding for one named proxy: its listener (`Proxy`), and one `Link` per client connection.

Everything here runs on the proxy server's event loop thread, so proxy and link state need no thread locks.
One asyncio lock per proxy serializes changes to its toxics, which wait for the stages they rewire (as
Toxiproxy's collection mutex does).

A link is two `Pipeline`s, one per direction, built from the proxy's toxics of that direction at the moment
the client connected; later changes reach it through `Pipeline.add`, `update` and `remove`. It ends when both
directions have closed their destination socket. Disabling or deleting the proxy cuts every link at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass

from harness.proxy.errors import BadRequestBody, ListenFailed
from harness.proxy.pipeline import Pipeline
from harness.proxy.toxic import Stream, Toxic, ToxicSpec

log = logging.getLogger(__name__)

UPSTREAM_CONNECT_TIMEOUT = 10.0
# Closing a socket flushes what asyncio still buffers for it; a peer that never reads must not keep it open.
CLOSE_GRACE = 5.0

StreamPair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Address:
    """A `host:port` as Toxiproxy writes it (`[::1]:5432` for IPv6; an empty host means all interfaces)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: object, field: str, *, allow_port_zero: bool) -> Address:
        if not isinstance(text, str) or ":" not in text:
            raise BadRequestBody(f"{field} must be a string like 'host:port', got {text!r}")
        host, _, port_text = text.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        lowest = 0 if allow_port_zero else 1
        if not port_text.isdigit() or not lowest <= int(port_text) <= 65535:
            raise BadRequestBody(f"{field} port must be a number from {lowest} to 65535, got {text!r}")
        return cls(host, int(port_text))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Proxy:
    """One named proxy: listens on `listen`, connects each client to `upstream`, applies its toxics.

    It accepts with its own reader callback rather than an `asyncio.Server`: when a server is closed between
    `accept()` and the creation of the transport, Python 3.11 drops the accepted socket without closing it
    (`Server._attach` asserts), so a client of a just-disabled proxy could stay connected to nothing. Here
    every accepted socket belongs to a tracked task from the first moment, and `stop` ends them all.
    """

    def __init__(self, name: str, listen: Address, upstream: Address) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: list[Toxic] = []  # in the order added; each stream's chain keeps that order
        self._changing = asyncio.Lock()
        self._listener: socket.socket | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._unclaimed: set[socket.socket] = set()  # accepted, its task not started yet
        self._epoch = 0  # counts stops: a client accepted before a stop must not be linked after it
        self._links: set[Link] = set()

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "listen": str(self.listen),
            "upstream": str(self.upstream),
            "enabled": self.enabled,
            "toxics": [toxic.spec.to_json() for toxic in self.toxics],
        }

    async def start(self) -> None:
        """Listen (again). The first start with port 0 fixes the port; later starts reuse it."""
        if self._listener is not None:
            return
        self._listener = await _listening_socket(self.listen)
        host, port = self._listener.getsockname()[:2]
        self.listen = Address(host, port)  # the real port, as Toxiproxy reports it after binding
        asyncio.get_running_loop().add_reader(self._listener.fileno(), self._accept)
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening and cut every live connection: a disabled proxy is a partition."""
        self.enabled = False
        self._epoch += 1
        listener, self._listener = self._listener, None
        if listener is not None:
            asyncio.get_running_loop().remove_reader(listener.fileno())
            listener.close()
        for link in list(self._links):
            link.cut()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.wait(handlers, timeout=CLOSE_GRACE)
        for conn in self._unclaimed:  # a task cancelled before it started never ran its cleanup
            conn.close()
        self._unclaimed.clear()
        log.info("proxy %s stopped (%d connections cut)", self.name, len(handlers))

    async def update(self, *, listen: Address, upstream: Address, enabled: bool) -> None:
        """Apply a proxy update; a new address restarts the proxy, as Toxiproxy does."""
        if (listen, upstream) != (self.listen, self.upstream):
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled:
            await self.start()
        else:
            await self.stop()

    # --- toxics -------------------------------------------------------------------------------------

    def find_toxic(self, name: str) -> Toxic | None:
        return next((toxic for toxic in self.toxics if toxic.spec.name == name), None)

    def chain(self, stream: Stream) -> list[Toxic]:
        return [toxic for toxic in self.toxics if toxic.spec.stream is stream]

    async def add_toxic(self, toxic: Toxic) -> None:
        async with self._changing:
            self.toxics.append(toxic)
            links = list(self._links)  # taken with the append: a link made after it starts with the toxic
            for link in links:
                await link.pipelines[toxic.spec.stream].add(toxic)

    async def update_toxic(self, toxic: Toxic, spec: ToxicSpec) -> None:
        async with self._changing:
            toxic.spec = spec
            for link in list(self._links):
                await link.pipelines[toxic.spec.stream].update(toxic)

    async def remove_toxic(self, toxic: Toxic) -> None:
        async with self._changing:
            self.toxics.remove(toxic)
            for link in list(self._links):
                await link.pipelines[toxic.spec.stream].remove(toxic)

    async def clear_toxics(self) -> None:
        """Remove every toxic, upstream ones first, each from the head of its chain (Toxiproxy's reset)."""
        for stream in Stream:
            for toxic in self.chain(stream):
                await self.remove_toxic(toxic)

    # --- connections ---------------------------------------------------------------------------------

    def _accept(self) -> None:
        """Reader callback of the listener: hand each pending client to its own tracked task."""
        while self._listener is not None:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, or the client gave up already
                log.warning("proxy %s: accept failed (%s)", self.name, exc)
                return
            conn.setblocking(False)
            self._unclaimed.add(conn)
            task = asyncio.get_running_loop().create_task(self._serve(conn))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _serve(self, conn: socket.socket) -> None:
        """Connect one client to the upstream and run their link; close whatever was opened if that fails."""
        self._unclaimed.discard(conn)  # from here on, this task closes it
        epoch = self._epoch
        opened: list[asyncio.StreamWriter] = []
        try:
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow the cancellation by stop().
            async with asyncio.timeout(UPSTREAM_CONNECT_TIMEOUT):
                upstream = await asyncio.open_connection(self.upstream.host or None, self.upstream.port)
            opened.append(upstream[1])
            client = await asyncio.open_connection(sock=conn)
            opened.append(client[1])
            if epoch != self._epoch:
                raise asyncio.CancelledError("the proxy stopped while this client was connecting")
        except BaseException as exc:  # includes cancellation by stop()
            for writer in opened:
                writer.transport.abort()
            conn.close()
            if isinstance(exc, OSError | TimeoutError):
                log.info(
                    "proxy %s: upstream %s unreachable (%s); client closed", self.name, self.upstream, exc
                )
                return
            raise
        link = Link(self, client, upstream)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)


class Link:
    """One client connection and its upstream connection, with the proxy's toxics in between."""

    def __init__(self, proxy: Proxy, client: StreamPair, upstream: StreamPair) -> None:
        self._client = client
        self._upstream = upstream
        self._tasks: set[asyncio.Task[None]] = set()
        self._open_directions = 2
        self._done = asyncio.Event()
        self.pipelines = {stream: Pipeline(proxy.chain(stream), self._spawn) for stream in Stream}
        if any(toxic.resets for toxic in proxy.toxics):
            for _, writer in (client, upstream):
                with contextlib.suppress(OSError):
                    writer.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )

    async def run(self) -> None:
        client_reader, client_writer = self._client
        upstream_reader, upstream_writer = self._upstream
        self.pipelines[Stream.UPSTREAM].start(
            client_reader, upstream_writer, lambda: _close(self._upstream), self._direction_done
        )
        self.pipelines[Stream.DOWNSTREAM].start(
            upstream_reader, client_writer, lambda: _close(self._client), self._direction_done
        )
        try:
            await self._done.wait()
        finally:
            self._done.set()
            for task in list(self._tasks):
                task.cancel()
            for _, writer in (self._client, self._upstream):
                if not writer.transport.is_closing():
                    writer.transport.abort()

    def cut(self) -> None:
        """End the connection now, on both sides (the proxy was disabled or deleted)."""
        for _, writer in (self._client, self._upstream):
            writer.transport.abort()
        self._done.set()

    def _direction_done(self) -> None:
        self._open_directions -= 1
        if self._open_directions == 0:
            self._done.set()

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None] | None:
        if self._done.is_set():  # a toxic added while this link was ending
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _close(side: StreamPair) -> None:
    """Close one socket whole (Go's Conn.Close): its reader sees the end at once, the peer gets FIN after
    what is buffered (or RST with linger 0)."""
    reader, writer = side
    reader.feed_eof()
    writer.transport.close()
    asyncio.get_running_loop().call_later(CLOSE_GRACE, writer.transport.abort)


async def _listening_socket(listen: Address) -> socket.socket:
    """Bind exactly one socket (asyncio would bind one per resolved address, each with its own port 0)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            listen.host or None, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenFailed(f"{listen}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenFailed(f"{listen}: {exc}") from exc
    return sock
