"""TCP forwarding for one named proxy: its listener, and one `Link` per client connection.

Everything here runs on the proxy server's event loop thread, so proxy and link state need no locks.

A link moves each direction through a small pipeline: a reader task stamps chunks and puts them on a bounded
queue (so a stalled direction pushes back on its sender through TCP instead of buffering without end), and a
pump task passes every chunk through the toxics of that stream, in the order they were added, then writes
it out. The toxic list is read afresh for each chunk, so a toxic added or removed mid-connection applies to
the next bytes; removing a toxic also ends its waits at once (see `Toxic.wait`). Toxicity is rolled once
per connection and toxic, as Toxiproxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import StrEnum

from harness.proxy.errors import BadRequestBody, ListenFailed
from harness.proxy.toxic import Chunk, Stream, Toxic

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
QUEUE_CHUNKS = 16
UPSTREAM_CONNECT_TIMEOUT = 10.0
# A graceful close flushes what is buffered; a peer that never reads must not keep the socket forever.
CLOSE_GRACE = 2.0


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


class Teardown(StrEnum):
    """How a connection ends: FIN after flushing, ABORT (drop buffers, close now), or RESET (send RST)."""

    FIN = "fin"
    ABORT = "abort"
    RESET = "reset"


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
        self.toxics: list[Toxic] = []
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
            link.teardown(Teardown.ABORT)
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

    def find_toxic(self, name: str) -> Toxic | None:
        return next((toxic for toxic in self.toxics if toxic.spec.name == name), None)

    def add_toxic(self, toxic: Toxic, *, replacing: Toxic | None = None) -> None:
        if replacing is None:
            self.toxics.append(toxic)
        else:
            self.toxics[self.toxics.index(replacing)] = toxic
            replacing.removed.set()
        for link in self._links:
            link.toxic_added(toxic)

    def remove_toxic(self, toxic: Toxic) -> None:
        self.toxics.remove(toxic)
        toxic.removed.set()

    def clear_toxics(self) -> None:
        for toxic in list(self.toxics):
            self.remove_toxic(toxic)

    def toxics_for(self, stream: Stream) -> list[Toxic]:
        return [toxic for toxic in self.toxics if toxic.spec.stream is stream]

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

    def __init__(
        self,
        proxy: Proxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self._proxy = proxy
        self._client = client
        self._upstream = upstream
        self._rolls: weakref.WeakKeyDictionary[Toxic, bool] = weakref.WeakKeyDictionary()
        self._states: weakref.WeakKeyDictionary[Toxic, dict[str, float]] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished_streams = 0
        self._done = asyncio.Event()

    async def run(self) -> None:
        for stream, (reader, _), (_, writer) in (
            (Stream.UPSTREAM, self._client, self._upstream),
            (Stream.DOWNSTREAM, self._upstream, self._client),
        ):
            queue: asyncio.Queue[Chunk | None] = asyncio.Queue(QUEUE_CHUNKS)
            self._spawn(self._read(reader, queue))
            self._spawn(self._pump(stream, queue, writer))
        for toxic in list(self._proxy.toxics):
            self.toxic_added(toxic)
        await self._done.wait()

    def toxic_added(self, toxic: Toxic) -> None:
        if toxic.has_watch and self._applies(toxic):
            self._spawn(toxic.watch(self))

    # LinkControl, for toxics
    def close(self) -> None:
        self.teardown(Teardown.FIN)

    def reset(self) -> None:
        self.teardown(Teardown.RESET)

    def state(self, toxic: Toxic) -> dict[str, float]:
        return self._states.setdefault(toxic, {})

    def teardown(self, how: Teardown) -> None:
        """End the connection on both sides; safe to call more than once and from the link's own tasks."""
        if self._done.is_set():
            return
        self._done.set()
        for task in self._tasks:
            task.cancel()
        for _, writer in (self._client, self._upstream):
            transport = writer.transport
            if how is Teardown.RESET:
                with contextlib.suppress(OSError):
                    writer.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            if how is Teardown.FIN:
                transport.close()
                asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)
            else:
                transport.abort()

    def _applies(self, toxic: Toxic) -> bool:
        if toxic not in self._rolls:
            self._rolls[toxic] = random.random() < toxic.spec.toxicity
        return self._rolls[toxic]

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        if self._done.is_set():  # a toxic added while this link was ending
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, reader: asyncio.StreamReader, queue: asyncio.Queue[Chunk | None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(READ_SIZE):
                await queue.put(Chunk(data, loop.time()))
        except OSError as exc:
            log.debug("proxy %s: read failed (%s)", self._proxy.name, exc)
            self.teardown(Teardown.FIN)
            return
        await queue.put(None)

    async def _pump(
        self, stream: Stream, queue: asyncio.Queue[Chunk | None], writer: asyncio.StreamWriter
    ) -> None:
        try:
            while (chunk := await queue.get()) is not None:
                await self._through(chunk, self._active(stream), writer)
            for toxic in self._active(stream):
                await toxic.on_close(self)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError as exc:
            log.debug("proxy %s: %s write failed (%s)", self._proxy.name, stream, exc)
            self.teardown(Teardown.FIN)
            return
        self._finished_streams += 1
        if self._finished_streams == 2:
            self.teardown(Teardown.FIN)

    def _active(self, stream: Stream) -> list[Toxic]:
        return [toxic for toxic in self._proxy.toxics_for(stream) if self._applies(toxic)]

    async def _through(self, chunk: Chunk, toxics: list[Toxic], writer: asyncio.StreamWriter) -> None:
        if self._done.is_set():
            return
        live = [toxic for toxic in toxics if not toxic.removed.is_set()]
        if not live:
            writer.write(chunk.data)
            await writer.drain()
            return
        head, rest = live[0], live[1:]
        await head.pipe(chunk, self, lambda piece: self._through(piece, rest, writer))


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
