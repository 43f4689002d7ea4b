"""Toxics: what a proxy does to the bytes of one direction of every connection, as Toxiproxy 2.12 does it.

Names, attributes, units and effects are Toxiproxy's (its `toxics/*.go`), so a scenario written against a
real Toxiproxy server behaves the same here. A toxic never touches sockets: its `pipe` loop takes chunks from
its `Stage`, may wait, cut or drop them, sends what comes out, and closes the stage when the stream ends
(which ends the direction after whatever the later toxics still hold). Every wait goes through the stage, so
adding, updating or removing a toxic interrupts it promptly.

Validation follows Toxiproxy's JSON decoding (attributes are 64-bit integers, toxicity a 32-bit float) and
refuses, with a 400 that says why, what Toxiproxy would accept and then crash or misbehave on: see
`Slicer.check`, and negative attributes. Unknown attributes are refused too (Toxiproxy ignores them: a typo
there is a chaos test without chaos).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ClassVar

from harness.proxy.channel import Chunk
from harness.proxy.errors import BadRequestBody, InvalidStream, InvalidToxicType
from harness.proxy.stage import TIMED_OUT, Stage, passthrough

INT64_MAX = 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38


class Stream(StrEnum):
    """Which way the bytes go: upstream is client -> server, downstream is server -> client."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


@dataclass(frozen=True)
class ToxicSpec:
    """A toxic as the API shows it; immutable, so an update builds a new spec for the same `Toxic`."""

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
    """Base toxic. Subclasses set `type_name` and `attributes` and write `pipe`."""

    type_name: ClassVar[str] = ""
    #: attribute name -> unit, in the order Toxiproxy documents them; every attribute is an integer >= 0.
    attributes: ClassVar[dict[str, str]] = {}
    #: chunks the channel in front of this toxic holds (Toxiproxy's BufferedToxic; 0 = hand-over only).
    buffer_size: ClassVar[int] = 0
    #: a connection made while this toxic is on the proxy ends with a TCP reset, however it ends.
    resets: ClassVar[bool] = False
    #: runs whatever its toxicity (only the hidden no-op at the head of every chain).
    always_runs: ClassVar[bool] = False

    def __init__(self, spec: ToxicSpec) -> None:
        self.spec = spec

    def attr(self, name: str) -> int:
        return self.spec.attributes[name]

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        """Cross-attribute rules; raise `BadRequestBody` naming the attributes and the fix."""

    def new_state(self) -> dict[str, int]:
        """Per-connection state, kept while the toxic stays on the connection (limit_data's count)."""
        return {}

    async def pipe(self, stage: Stage) -> None:
        """Run on one direction of one connection until the stream ends (close the stage) or interrupted."""
        await passthrough(stage)

    def cleanup(self, stage: Stage) -> None:
        """Called on each connection when the toxic is removed, after its stage stopped."""


class Noop(Toxic):
    """Passes data unchanged; the hidden head of every chain, and a toxic of its own in Toxiproxy."""

    type_name = "noop"


class Head(Noop):
    """The no-op every chain starts with, where the reader hands chunks over."""

    always_runs = True


class Latency(Toxic):
    """Delay every chunk by `latency` ms, plus or minus up to `jitter` ms.

    The delay counts from the chunk's stamp, and a chunk leaves stamped with the delay added, so two latency
    toxics on one stream add up. 1024 chunks wait in front of it, so pipelined traffic keeps its latency.
    """

    type_name = "latency"
    attributes = {"latency": "milliseconds", "jitter": "milliseconds"}
    buffer_size = 1024

    def _delay(self) -> float:
        delay, jitter = self.attr("latency"), self.attr("jitter")
        if jitter > 0:
            delay += random.randrange(2 * jitter) - jitter
        return delay / 1000

    async def pipe(self, stage: Stage) -> None:
        loop = asyncio.get_running_loop()
        while (chunk := await stage.take()) is not None:
            sleep = self._delay() - (loop.time() - chunk.stamp)
            await stage.hold(chunk, sleep)
            await stage.send(Chunk(chunk.data, chunk.stamp + sleep))
        stage.close()


class Bandwidth(Toxic):
    """Pass at most `rate` KB/s (1 KB = 1000 bytes), in pieces of 100 ms worth. A rate of 0 lets nothing
    through until the toxic is updated or removed (Toxiproxy's loop never gets past the first chunk)."""

    type_name = "bandwidth"
    attributes = {"rate": "KB/s"}

    async def pipe(self, stage: Stage) -> None:
        loop = asyncio.get_running_loop()
        owed = 0.0  # seconds of sending time not yet waited for; shorter sleeps than asked carry over
        while (chunk := await stage.take()) is not None:
            rate, data, stamp = self.attr("rate"), chunk.data, chunk.stamp
            owed = owed + len(data) / (rate * 1000) if rate > 0 else 0.0
            piece = rate * 100  # bytes per 100 ms
            if piece == 0:
                await stage.hold(Chunk(data, stamp), None)
            while len(data) > piece:
                await stage.hold(Chunk(data, stamp), 0.1)
                await stage.send(Chunk(data[:piece], stamp), rest=Chunk(data[piece:], stamp))
                data, owed = data[piece:], owed - 0.1
            started = loop.time()
            await stage.hold(Chunk(data, stamp), owed)
            owed -= loop.time() - started
            await stage.send(Chunk(data, stamp))
        stage.close()


class SlowClose(Toxic):
    """Delay passing on the end of this stream by `delay` ms."""

    type_name = "slow_close"
    attributes = {"delay": "milliseconds"}

    async def pipe(self, stage: Stage) -> None:
        while (chunk := await stage.take()) is not None:
            await stage.send(chunk)
        await stage.sleep(self.attr("delay") / 1000)
        stage.close()


class Timeout(Toxic):
    """Drop every byte; close the connection once no data has come for `timeout` ms (never when 0).

    Removing it (or `POST /reset`) closes the connections it was on: what it swallowed is gone, so the byte
    stream could not go on. Healing a stall is therefore a reconnect, as with Toxiproxy.
    """

    type_name = "timeout"
    attributes = {"timeout": "milliseconds"}

    async def pipe(self, stage: Stage) -> None:
        timeout = self.attr("timeout") / 1000 or None
        while True:
            chunk = await stage.take(timeout)
            if chunk is None or chunk is TIMED_OUT:
                stage.close()
                return

    def cleanup(self, stage: Stage) -> None:
        stage.close()


class ResetPeer(Toxic):
    """On the first data (or the end) of this stream, drop it, wait `timeout` ms and close the connection.

    A connection made while a reset_peer toxic is on the proxy (either stream, whatever its toxicity) has
    both sockets set to linger 0, so however it ends, it ends with a TCP reset; one added to a live
    connection closes it normally. Both as in Toxiproxy.
    """

    type_name = "reset_peer"
    attributes = {"timeout": "milliseconds"}
    resets = True

    async def pipe(self, stage: Stage) -> None:
        await stage.take()
        stage.doomed = True  # Toxiproxy does not listen for interrupts from here on
        await asyncio.sleep(self.attr("timeout") / 1000)
        stage.close()


class LimitData(Toxic):
    """Pass the first `bytes` bytes of the stream, then close the connection."""

    type_name = "limit_data"
    attributes = {"bytes": "bytes"}

    def new_state(self) -> dict[str, int]:
        return {"sent": 0}

    async def pipe(self, stage: Stage) -> None:
        sent = stage.state
        while (chunk := await stage.take()) is not None:
            allowed = chunk.data[: max(self.attr("bytes") - sent["sent"], 0)]
            if allowed:
                sent["sent"] += len(allowed)
                await stage.send(Chunk(allowed, chunk.stamp))
            if sent["sent"] >= self.attr("bytes"):
                break
        stage.close()


class Slicer(Toxic):
    """Cut chunks into pieces of about `average_size` +/- `size_variation` bytes, `delay` microseconds apart,
    halving each chunk (the halves moved by up to the variation) until the pieces are small enough."""

    type_name = "slicer"
    attributes = {"average_size": "bytes", "size_variation": "bytes", "delay": "microseconds"}

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        # Toxiproxy accepts both, then crashes on the first data: an average of 0 recurses without end, a
        # variation above the average can cut at a negative offset (a Go panic that ends the whole server).
        average, variation = attributes["average_size"], attributes["size_variation"]
        if average < 1:
            raise BadRequestBody(
                f"slicer.average_size must be at least 1 byte, got {average} "
                "(Toxiproxy accepts 0 and then crashes on the first data)"
            )
        if variation > average:
            raise BadRequestBody(
                f"slicer.size_variation must be at most average_size ({average}), got {variation} "
                "(Toxiproxy accepts more and then can crash on data)"
            )

    def _pieces(self, size: int) -> list[tuple[int, int]]:
        average, variation = self.attr("average_size"), self.attr("size_variation")
        pieces, todo = [], [(0, size)]
        while todo:
            start, end = todo.pop()
            if (end - start) - average <= variation:
                pieces.append((start, end))
                continue
            middle = start + (end - start) // 2
            if variation > 0:
                middle += random.randrange(2 * variation) - variation
            todo += [(middle, end), (start, middle)]  # the left half first
        return pieces

    async def pipe(self, stage: Stage) -> None:
        while (chunk := await stage.take()) is not None:
            data, stamp = chunk.data, chunk.stamp
            for start, end in self._pieces(len(data)):
                if end > start:
                    await stage.send(Chunk(data[start:end], stamp), rest=Chunk(data[end:], stamp))
                await stage.hold(Chunk(data[end:], stamp), self.attr("delay") / 1_000_000)
        stage.close()


TOXIC_TYPES: dict[str, type[Toxic]] = {
    cls.type_name: cls for cls in (Noop, Latency, Bandwidth, SlowClose, Timeout, ResetPeer, LimitData, Slicer)
}


def parse_spec(payload: object) -> ToxicSpec:
    """Validate a create-toxic body the way Toxiproxy reads it (defaults: downstream, toxicity 1, name
    `<type>_<stream>`; null means the default)."""
    body = _object(payload, "request body")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in TOXIC_TYPES:
        raise InvalidToxicType(f"{json.dumps(kind)}; expected one of: {', '.join(sorted(TOXIC_TYPES))}")
    toxic_cls = TOXIC_TYPES[kind]
    stream_text = body.get("stream")
    if stream_text is None:
        stream_text = Stream.DOWNSTREAM.value
    if not isinstance(stream_text, str) or stream_text.lower() not in {s.value for s in Stream}:
        raise InvalidStream(f"got {json.dumps(stream_text)}")
    stream = Stream(stream_text.lower())
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise BadRequestBody(f"name must be a string, got {json.dumps(name)}")
    defaults = dict.fromkeys(toxic_cls.attributes, 0)
    attributes = _attributes(toxic_cls, body.get("attributes"), defaults)
    toxicity = body.get("toxicity")
    return ToxicSpec(name, kind, stream, 1.0 if toxicity is None else _toxicity(toxicity), attributes)


def update_spec(spec: ToxicSpec, payload: object) -> ToxicSpec:
    """Apply an update body: attributes are merged onto the current ones, toxicity replaced if given.
    Name, type and stream cannot change (Toxiproxy ignores them; so do we)."""
    body = _object(payload, "request body")
    toxic_cls = TOXIC_TYPES[spec.type]
    attributes = _attributes(toxic_cls, body.get("attributes"), dict(spec.attributes))
    toxicity = body.get("toxicity")
    return replace(
        spec, toxicity=spec.toxicity if toxicity is None else _toxicity(toxicity), attributes=attributes
    )


def make_toxic(spec: ToxicSpec) -> Toxic:
    return TOXIC_TYPES[spec.type](spec)


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadRequestBody(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _toxicity(value: object) -> float:
    """Any number a 32-bit float holds, as Toxiproxy: above 1 always applies, 0 or below never does."""
    # `not abs(x) <= MAX` is also true of NaN and infinity, and compares a huge int without overflow.
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= FLOAT32_MAX:
        raise BadRequestBody(
            f"toxicity must be a number (a probability; Toxiproxy reads a 32-bit float), got {_show(value)}"
        )
    return float(value)


def _attributes(toxic_cls: type[Toxic], given: object, base: dict[str, int]) -> dict[str, int]:
    if given is None:
        given = {}
    kind = toxic_cls.type_name
    attributes = dict(base)
    for key, value in _object(given, f"{kind} attributes").items():
        if key not in toxic_cls.attributes:
            expected = ", ".join(toxic_cls.attributes) or "none"
            raise BadRequestBody(
                f"{kind} toxic has no attribute {json.dumps(key)}; expected one of: {expected}"
            )
        if value is None:  # JSON null leaves a Go field as it was
            continue
        # Toxiproxy decodes attributes into int64 fields: a fraction, an exponent or a string is an error.
        # It takes negative numbers, and does nothing sensible with them: refused here.
        unit = toxic_cls.attributes[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequestBody(f"{kind}.{key} must be a whole number >= 0 ({unit}), got {_show(value)}")
        if value > INT64_MAX:
            raise BadRequestBody(
                f"{kind}.{key} must be below 2**63 (Toxiproxy reads a 64-bit integer), got {_show(value)}"
            )
        attributes[key] = value
    toxic_cls.check(attributes)
    return attributes


def _show(value: object) -> str:
    """A value for an error message, cut short: a 10^400 or a megabyte of text must not fill the answer."""
    text = json.dumps(value) if not isinstance(value, int) or abs(value) < 10**30 else f"{str(value)[:12]}..."
    return text if len(text) <= 60 else text[:57] + "..."
