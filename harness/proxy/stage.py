"""One toxic running on one direction of one connection: Toxiproxy's `ToxicStub`.

A stage reads chunks from its input channel, lets its toxic do what it does (wait, cut, drop, close), and
writes what comes out to its output channel. Its task runs the toxic until the stream ends (the toxic closes
the stage, which closes the output, which ends the next stage in turn) or until it is interrupted: adding,
updating or removing a toxic interrupts the stages concerned, rewires the chain while they are stopped, and
starts them again. As in Toxiproxy, each start rolls the toxic's toxicity afresh (a stage whose roll fails
runs as a no-op), and a toxic interrupted while holding a chunk lets it go at once, undelayed.

Unlike Go, a stage also accepts an interrupt while it waits for room in its output: the chunk it was writing
stays `pending` and is written first when the stage runs again (or by the stage that takes over its output).
Toxiproxy blocks the API call instead until the next toxic makes room, which for a client that stopped
reading is forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, overload

from harness.proxy.channel import EMPTY, Channel, Chunk

if TYPE_CHECKING:
    from harness.proxy.toxic import Toxic

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised inside a toxic at its next wait once the stage is interrupted; the stage's task ends."""


class TimedOut:
    """What `Stage.take` returns when its timeout passed with no chunk."""


TIMED_OUT = TimedOut()

Spawn = Callable[[Coroutine[object, object, None]], "asyncio.Task[None] | None"]


class Stage:
    """A toxic's place in one direction's chain; what a toxic's `pipe` receives."""

    def __init__(self, toxic: Toxic, input: Channel, output: Channel, spawn: Spawn) -> None:
        self.toxic = toxic
        self.input = input
        self.output = output
        self.state = toxic.new_state()  # per connection, kept across restarts, as Toxiproxy's stub state
        self.pending: deque[Chunk] = deque()
        self.closed = False
        self.doomed = False  # set by a toxic that will close the stage whatever happens (reset_peer)
        self._spawn = spawn
        self._task: asyncio.Task[None] | None = None
        self._interrupt = False
        self._wake: asyncio.Future[object] | None = None

    # --- the chain's side -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = self._spawn(self._run())

    async def interrupt(self) -> bool:
        """Stop the toxic at its next wait. False when the stage has closed (or will: nothing to rewire)."""
        task = self._task
        if self.closed or self.doomed or task is None or task.done():
            return False
        self._interrupt = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        await asyncio.wait({task})  # not `await task`: a cancelled API call must not cancel the stage
        self._interrupt = False
        return not self.closed

    def flush_nowait(self) -> None:
        """Write what the stopped stage holds to its output while there is room (Toxiproxy's interrupted
        latency toxic writes its chunk to the output it had before the chain changes)."""
        while self.pending and self.output.has_room():
            self.output.put_nowait(self.pending.popleft())

    # --- the toxic's side -------------------------------------------------------------------------

    @overload
    async def take(self, timeout: None = None) -> Chunk | None: ...
    @overload
    async def take(self, timeout: float | None) -> Chunk | TimedOut | None: ...
    async def take(self, timeout: float | None = None) -> Chunk | TimedOut | None:
        """The next chunk; None once the stream has ended; TIMED_OUT after `timeout` seconds without one."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._interrupt:
                raise Interrupted
            chunk = self.input.take_nowait()
            if chunk is not EMPTY:
                return chunk
            if deadline is not None and loop.time() >= deadline:
                return TIMED_OUT
            await self._park(self.input.taker_parks(), deadline)

    async def send(self, chunk: Chunk, rest: Chunk | None = None) -> None:
        """Write a chunk to the output, waiting for room; an interrupt keeps it pending, followed by `rest`
        (what a toxic cutting a chunk into pieces has not sent yet: Go writes a piece uninterrupted, so an
        interrupt never comes between a piece and the rest)."""
        self.pending.append(chunk)
        try:
            await self._flush()
        except Interrupted:
            if rest is not None and rest.data:
                self.pending.append(rest)
            raise

    async def sleep(self, seconds: float | None) -> None:
        """Wait `seconds` (None: until interrupted); raises `Interrupted` if interrupted first."""
        if self._interrupt:
            raise Interrupted
        if seconds is not None and seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while deadline is None or loop.time() < deadline:
            await self._park(loop.create_future(), deadline)
            if self._interrupt:
                raise Interrupted

    async def hold(self, chunk: Chunk, seconds: float | None) -> None:
        """`sleep` while holding `chunk`: if interrupted, the chunk goes out next, undelayed."""
        try:
            await self.sleep(seconds)
        except Interrupted:
            if chunk.data:
                self.pending.append(chunk)
            raise

    def close(self) -> None:
        """End this direction from here on: the output closes after what it already holds."""
        if not self.closed:
            self.closed = True
            self.output.close()

    # --- internals --------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._flush()
            toxic = self.toxic
            # Toxiproxy rolls float32(rand) < toxicity at every start of the stub; the no-op always runs.
            if toxic.always_runs or random.random() < toxic.spec.toxicity:
                await toxic.pipe(self)
            else:
                await passthrough(self)
        except Interrupted:
            pass
        except Exception:  # a bug of ours: end this direction rather than leave it hanging
            log.exception("toxic %s failed; closing this direction of the connection", self.toxic.spec.name)
            self.close()

    async def _flush(self) -> None:
        while self.pending:
            if self._interrupt:
                raise Interrupted
            if self.output.has_room():
                self.output.put_nowait(self.pending.popleft())
            else:
                await self._park(self.output.putter_parks(), None)

    async def _park(self, future: asyncio.Future[object], deadline: float | None) -> None:
        """Wait on `future`, which the channel resolves; an interrupt or the deadline resolve it too."""
        self._wake = future
        timer = None
        if deadline is not None:
            timer = asyncio.get_running_loop().call_at(deadline, _resolve, future)
        try:
            await future
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()


async def passthrough(stage: Stage) -> None:
    """Toxiproxy's no-op toxic: what a stage runs when its toxicity roll fails."""
    while (chunk := await stage.take()) is not None:
        await stage.send(chunk)
    stage.close()


def _resolve(future: asyncio.Future[object]) -> None:
    if not future.done():
        future.set_result(None)
