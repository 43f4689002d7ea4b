"""A bounded FIFO of chunks between two tasks of one connection direction, like a Go channel.

Toxiproxy chains its toxics with Go channels: each toxic reads the previous one's output channel, and the
channel's buffer (1024 chunks in front of a latency toxic, none elsewhere) decides how far a fast sender can
run ahead of a slow toxic. This is that channel for asyncio, with the one thing Go's `select` gives a toxic
and asyncio queues do not: a waiting task can be woken by something other than the channel (an interrupt,
see `stage.Stage`), through the one future it parks on. Taking or putting a chunk that is ready costs no
future at all, which keeps the proxy's own overhead per chunk low.

Exactly one task puts and one task takes at any moment (the chain is rewired only while both are stopped),
so one parked future per side is enough.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from one side, stamped with the loop time they were read (latency counts from there)."""

    data: bytes
    stamp: float


class _Empty(Enum):
    """What `take_nowait` returns when nothing is ready and the channel is still open (an enum of one, so
    `chunk is EMPTY` narrows the type)."""

    EMPTY = "empty"


EMPTY: Final = _Empty.EMPTY


class Channel:
    """Chunks in order; closing is sticky: once the buffered chunks are taken, every take returns None."""

    __slots__ = ("_putter", "_taker", "capacity", "closed", "items")

    def __init__(self, capacity: int) -> None:
        # Go's unbuffered channel hands a chunk over only to a waiting reader; one slot is the nearest
        # asyncio shape of that, and lets a chunk sit here while its reader is being rewired.
        self.capacity = max(1, capacity)
        self.items: deque[Chunk] = deque()
        self.closed = False
        self._taker: asyncio.Future[object] | None = None
        self._putter: asyncio.Future[object] | None = None

    def has_room(self) -> bool:
        return len(self.items) < self.capacity

    def put_nowait(self, chunk: Chunk) -> None:
        """Append a chunk; the caller checked `has_room` (a chain never writes into a full channel)."""
        self.items.append(chunk)
        _wake(self._taker)

    def take_nowait(self) -> Chunk | _Empty | None:
        if self.items:
            chunk = self.items.popleft()
            _wake(self._putter)
            return chunk
        return None if self.closed else EMPTY

    def close(self) -> None:
        self.closed = True
        _wake(self._taker)

    def taker_parks(self) -> asyncio.Future[object]:
        """A future resolved when a chunk arrives or the channel closes; the taker awaits it."""
        self._taker = asyncio.get_running_loop().create_future()
        return self._taker

    def putter_parks(self) -> asyncio.Future[object]:
        """A future resolved when a chunk is taken (so there is room again); the putter awaits it."""
        self._putter = asyncio.get_running_loop().create_future()
        return self._putter

    async def put(self, chunk: Chunk) -> None:
        """Put, waiting for room: for the socket reader, which nothing interrupts."""
        while not self.has_room():
            await self.putter_parks()
        self.put_nowait(chunk)

    async def take(self) -> Chunk | None:
        """Take, waiting for a chunk; None once closed and empty: for the socket writer."""
        while (chunk := self.take_nowait()) is EMPTY:
            await self.taker_parks()
        return chunk


def _wake(future: asyncio.Future[object] | None, value: object = None) -> None:
    if future is not None and not future.done():
        future.set_result(value)
