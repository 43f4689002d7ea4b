"""One direction of one connection: Toxiproxy's `ToxicLink`.

    source socket -> reader -> [head no-op] -> [toxic 1] -> ... -> [toxic n] -> writer -> destination socket

The reader stamps each chunk it reads (up to 32 KiB, Go's copy buffer) and hands it to the head of the chain;
each stage runs one toxic; the writer writes what comes out. The end of the source, or a toxic that closes,
closes the chain from there on; the writer then closes the destination socket *whole*, not just its sending
side, as Toxiproxy does: a half-close by one peer ends the connection, and the other direction ends when its
reader finds its socket closed.

Adding a toxic appends a stage after the last one; updating restarts its stage; removing one stops it and
the stage before it, hands what the removed stage held and buffered to that one, and lets it write straight
to the removed stage's output (a removed `timeout` closes its stage instead: see `Timeout.cleanup`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from harness.proxy.channel import Channel, Chunk
from harness.proxy.stage import Spawn, Stage
from harness.proxy.toxic import Head, Toxic, ToxicSpec

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

READ_SIZE = 32 * 1024
# The hidden no-op at the head of every chain; also what a removed toxic's stage runs while it hands on what
# it still holds, when the stage before it has closed.
HEAD = Head(ToxicSpec(name="", type="noop"))


class Pipeline:
    """The reader, stages and writer of one direction; `toxics` is the proxy's chain for this direction."""

    def __init__(self, toxics: list[Toxic], spawn: Spawn) -> None:
        self._spawn = spawn
        self.input = Channel(0)
        self.stages: list[Stage] = []
        chain = [HEAD, *toxics]
        feed = self.input
        for i, toxic in enumerate(chain):
            out = Channel(chain[i + 1].buffer_size if i + 1 < len(chain) else 0)
            self.stages.append(Stage(toxic, feed, out, spawn))
            feed = out
        self.output = feed

    def start(
        self,
        source: asyncio.StreamReader,
        destination: asyncio.StreamWriter,
        close_destination: Callable[[], None],
        finished: Callable[[], None],
    ) -> None:
        self._spawn(self._read(source))
        for stage in self.stages:
            stage.start()
        self._spawn(self._write(destination, close_destination, finished))

    async def _read(self, source: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await source.read(READ_SIZE):
                await self.input.put(Chunk(data, loop.time()))
        except OSError as exc:  # a reset by the peer ends the stream like an EOF, as in Toxiproxy
            log.debug("read failed (%s)", exc)
        self.input.close()

    async def _write(
        self,
        destination: asyncio.StreamWriter,
        close_destination: Callable[[], None],
        finished: Callable[[], None],
    ) -> None:
        try:
            while (chunk := await self.output.take()) is not None:
                destination.write(chunk.data)
                await destination.drain()
        except (OSError, RuntimeError) as exc:  # the peer went away mid-write
            log.debug("write failed (%s)", exc)
        close_destination()
        finished()

    # --- the chain changes (the proxy serializes these) ------------------------------------------

    def _stage_of(self, toxic: Toxic) -> Stage | None:
        return next((stage for stage in self.stages if stage.toxic is toxic), None)

    async def add(self, toxic: Toxic) -> None:
        last = self.stages[-1]
        if not await last.interrupt():
            return  # this direction is ending; the toxic has nothing to act on
        last.flush_nowait()
        feed = Channel(toxic.buffer_size)
        added = Stage(toxic, feed, last.output, self._spawn)
        last.output = feed
        self.stages.append(added)
        added.start()
        last.start()

    async def update(self, toxic: Toxic) -> None:
        stage = self._stage_of(toxic)
        if stage is not None and await stage.interrupt():
            stage.start()  # reads the new attributes, rolls the toxicity again

    async def remove(self, toxic: Toxic) -> None:
        stage = self._stage_of(toxic)
        if stage is None or not await stage.interrupt():
            return
        toxic.cleanup(stage)
        if stage.closed:
            return
        index = self.stages.index(stage)
        before = self.stages[index - 1]
        if not await before.interrupt():
            # The stream ended before this stage: pass on what it holds, then the end.
            stage.toxic = HEAD
            stage.start()
            return
        before.pending.extendleft(reversed([*stage.pending, *stage.input.items]))
        before.output = stage.output
        del self.stages[index]
        before.start()
