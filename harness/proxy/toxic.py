"""Toxics: what a proxy does to the bytes of one direction of every connection.

Names, attributes and units are Toxiproxy's, so a scenario written against a real Toxiproxy server works
here unchanged. A toxic never touches sockets: it receives a chunk, may wait, cut or slice it, and hands
pieces on with `emit`; it can ask the connection to close (FIN) or reset (RST) through `LinkControl`.

Why the waits all go through `Toxic.wait`: removing or updating a toxic sets its `removed` event, which ends
every wait at once, so healing a fault reaches live connections promptly instead of after the last delay.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ClassVar, Protocol

from harness.proxy.errors import BadRequestBody, InvalidStream, InvalidToxicType


class Stream(StrEnum):
    """Which way the bytes go: upstream is client -> server, downstream is server -> client."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


@dataclass(frozen=True)
class Chunk:
    """Bytes read from one side, stamped with the loop time they were read (latency counts from there)."""

    data: bytes
    stamp: float


Emit = Callable[[Chunk], Awaitable[None]]


class LinkControl(Protocol):
    """What a toxic may ask of the connection it sits in."""

    def close(self) -> None:
        """Close both sides gracefully (buffered bytes are flushed, then FIN)."""

    def reset(self) -> None:
        """Close both sides with a TCP RST (connection reset by peer)."""

    def state(self, toxic: Toxic) -> dict[str, float]:
        """Mutable per-connection state of one toxic (bytes sent so far, pacing clock...)."""


@dataclass(frozen=True)
class ToxicSpec:
    """A toxic as the API shows it; immutable, so an update builds a new spec (and a new `Toxic`)."""

    name: str
    type: str
    stream: Stream = Stream.DOWNSTREAM
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": str(self.stream),
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


class Toxic:
    """Base toxic: passes data unchanged. Subclasses set `type_name` and `attributes`, override hooks."""

    type_name: ClassVar[str] = ""
    #: attribute name -> unit, in the order Toxiproxy documents them; every attribute is an integer >= 0.
    attributes: ClassVar[dict[str, str]] = {}
    #: True when the toxic acts on a connection by itself, not only on the data passing (see `watch`).
    has_watch: ClassVar[bool] = False

    def __init__(self, spec: ToxicSpec) -> None:
        self.spec = spec
        self.removed = asyncio.Event()

    def attr(self, name: str) -> int:
        return self.spec.attributes[name]

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        """Cross-attribute rules; raise `BadRequestBody` naming the attributes and the fix."""

    async def wait(self, seconds: float | None) -> bool:
        """Wait `seconds` (None: forever); True if the toxic was removed first: the caller lets data pass."""
        if self.removed.is_set():
            return True
        if seconds is not None and seconds <= 0:
            return False
        try:
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a cancellation (link cut).
            async with asyncio.timeout(seconds):
                await self.removed.wait()
        except TimeoutError:
            return False
        return True

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        await emit(chunk)

    async def on_close(self, link: LinkControl) -> None:
        """Called when the source side of this stream has closed, before the close is passed on."""

    async def watch(self, link: LinkControl) -> None:
        """Runs for the life of the toxic on each connection it applies to (only when `has_watch`)."""


class Latency(Toxic):
    """Delay every chunk by `latency` ms, plus or minus up to `jitter` ms."""

    type_name = "latency"
    attributes = {"latency": "milliseconds", "jitter": "milliseconds"}

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        jitter = self.attr("jitter")
        delay_ms = self.attr("latency") + (random.uniform(-jitter, jitter) if jitter else 0)
        due = chunk.stamp + delay_ms / 1000
        await self.wait(due - asyncio.get_running_loop().time())
        await emit(chunk)


class Bandwidth(Toxic):
    """Pass at most `rate` KB/s (1 KB = 1000 bytes), in pieces of at most 100 ms worth; 0 means unlimited."""

    type_name = "bandwidth"
    attributes = {"rate": "KB/s"}

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        rate = self.attr("rate") * 1000  # bytes per second
        if rate <= 0:
            await emit(chunk)
            return
        loop = asyncio.get_running_loop()
        pacing = link.state(self)
        data, piece_size = chunk.data, max(1, rate // 10)
        while data:
            piece, data = data[:piece_size], data[piece_size:]
            # A pacing clock per connection, so sleeps shorter than the timer's resolution add up correctly.
            due = max(pacing.get("next", 0.0), loop.time()) + len(piece) / rate
            pacing["next"] = due
            if await self.wait(due - loop.time()):
                await emit(Chunk(piece + data, chunk.stamp))
                return
            await emit(Chunk(piece, chunk.stamp))


class SlowClose(Toxic):
    """Delay passing on the close of this stream by `delay` ms."""

    type_name = "slow_close"
    attributes = {"delay": "milliseconds"}

    async def on_close(self, link: LinkControl) -> None:
        await self.wait(self.attr("delay") / 1000)


class Timeout(Toxic):
    """Let no data through; close the connection after `timeout` ms, or never when it is 0.

    Held data is delivered if the toxic is removed first, as Toxiproxy's README describes (and as a real
    partition behaves: TCP retransmits, the byte stream stays whole). Recent Toxiproxy releases drop the
    bytes instead; a scenario that relies on either is asking for the stream to be corrupt or not.
    """

    type_name = "timeout"
    attributes = {"timeout": "milliseconds"}
    has_watch = True

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        await self.wait(None)
        await emit(chunk)

    async def watch(self, link: LinkControl) -> None:
        timeout = self.attr("timeout")
        if timeout > 0 and not await self.wait(timeout / 1000):
            link.close()


class ResetPeer(Toxic):
    """On the first data in this stream, wait `timeout` ms, then reset the connection (TCP RST)."""

    type_name = "reset_peer"
    attributes = {"timeout": "milliseconds"}

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        if await self.wait(self.attr("timeout") / 1000):
            await emit(chunk)
        else:
            link.reset()


class LimitData(Toxic):
    """Pass the first `bytes` bytes of the stream, then close the connection."""

    type_name = "limit_data"
    attributes = {"bytes": "bytes"}

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        counter = link.state(self)
        sent = int(counter.get("sent", 0))
        allowed = chunk.data[: max(self.attr("bytes") - sent, 0)]
        if allowed:
            counter["sent"] = sent + len(allowed)
            await emit(Chunk(allowed, chunk.stamp))
        if counter.get("sent", 0) >= self.attr("bytes"):
            link.close()


class Slicer(Toxic):
    """Cut chunks into pieces of `average_size` +/- `size_variation` bytes, `delay` microseconds apart."""

    type_name = "slicer"
    attributes = {"average_size": "bytes", "size_variation": "bytes", "delay": "microseconds"}

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        average, variation = attributes["average_size"], attributes["size_variation"]
        if average < 1:
            raise BadRequestBody(f"slicer.average_size must be at least 1 byte, got {average}")
        if variation >= average:
            raise BadRequestBody(
                f"slicer.size_variation must be smaller than average_size ({average}), got {variation}"
            )

    async def pipe(self, chunk: Chunk, link: LinkControl, emit: Emit) -> None:
        average, variation = self.attr("average_size"), self.attr("size_variation")
        data = chunk.data
        while data:
            size = average + random.randint(-variation, variation)
            piece, data = data[:size], data[size:]
            await emit(Chunk(piece, chunk.stamp))
            if data and await self.wait(self.attr("delay") / 1_000_000):
                await emit(Chunk(data, chunk.stamp))
                return


TOXIC_TYPES: dict[str, type[Toxic]] = {
    cls.type_name: cls for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, LimitData, Slicer)
}


def parse_spec(payload: object) -> ToxicSpec:
    """Validate a create-toxic body the way Toxiproxy reads it (defaults: downstream, toxicity 1, name
    `<type>_<stream>`), but refuse what Toxiproxy would silently ignore: unknown or misspelt attributes,
    since a typo there is a chaos test that injects no chaos."""
    body = _object(payload, "request body")
    kind = body.get("type")
    toxic_cls = TOXIC_TYPES.get(kind) if isinstance(kind, str) else None
    if toxic_cls is None:
        raise InvalidToxicType(f"{json.dumps(kind)}; expected one of: {', '.join(sorted(TOXIC_TYPES))}")
    stream_text = body.get("stream", Stream.DOWNSTREAM.value)
    if stream_text not in {s.value for s in Stream}:
        raise InvalidStream(f"got {json.dumps(stream_text)}")
    stream = Stream(stream_text)
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise BadRequestBody(f"name must be a string, got {json.dumps(name)}")
    defaults = dict.fromkeys(toxic_cls.attributes, 0)
    attributes = _attributes(toxic_cls, body.get("attributes"), defaults)
    return ToxicSpec(name, kind, stream, _toxicity(body.get("toxicity", 1.0)), attributes)


def update_spec(spec: ToxicSpec, payload: object) -> ToxicSpec:
    """Apply an update body: attributes are merged onto the current ones, toxicity replaced if given.
    Name, type and stream cannot change (Toxiproxy ignores them; so do we)."""
    body = _object(payload, "request body")
    toxic_cls = TOXIC_TYPES[spec.type]
    attributes = _attributes(toxic_cls, body.get("attributes"), dict(spec.attributes))
    toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else spec.toxicity
    return replace(spec, toxicity=toxicity, attributes=attributes)


def make_toxic(spec: ToxicSpec) -> Toxic:
    return TOXIC_TYPES[spec.type](spec)


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadRequestBody(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise BadRequestBody(
            f"toxicity must be a number from 0 to 1 (a probability), got {json.dumps(value)}"
        )
    return float(value)


def _attributes(toxic_cls: type[Toxic], given: object, base: dict[str, int]) -> dict[str, int]:
    if given is None:
        given = {}
    kind = toxic_cls.type_name
    attributes = dict(base)
    for key, value in _object(given, f"{kind} attributes").items():
        if key not in toxic_cls.attributes:
            expected = ", ".join(toxic_cls.attributes)
            raise BadRequestBody(
                f"{kind} toxic has no attribute {json.dumps(key)}; expected one of: {expected}"
            )
        whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        if not whole or value < 0:
            unit = toxic_cls.attributes[key]
            raise BadRequestBody(
                f"{kind}.{key} must be a whole number >= 0 ({unit}), got {json.dumps(value)}"
            )
        attributes[key] = int(value)
    toxic_cls.check(attributes)
    return attributes
