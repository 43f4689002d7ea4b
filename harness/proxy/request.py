"""Reading an API request's body the way Toxiproxy does: the first JSON value off the stream.

Toxiproxy hands the request body to Go's `json.Decoder`, which reads only until the first value is complete
and ignores the rest. So a client that announces more body than it sends (a `Content-Length` of 10^12) still
gets an answer as soon as its JSON object is whole, and trailing bytes after the object are not an error.
Reading the whole announced body first, as `http.server` invites, would wait for bytes that never come, or
try to allocate them all.

Where Go has a limit, the error is a 400 here too: JSON nested deeper than the parser allows (Go: 10,000
levels; here Python's recursion limit, about 900), a number a Go field cannot hold. Where Go has none, we set
one: a body over `MAX_BODY` is refused with 413 rather than held in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import Message
from io import BufferedIOBase

from harness.proxy.errors import BadRequestBody, BodyTooLarge

MAX_BODY = 16 * 1024 * 1024
READ_PIECE = 64 * 1024
_WHITESPACE = " \t\n\r"


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


class Body:
    """A request's body, read piece by piece as it arrives; `complete` once all of it has been read (only
    then can the connection carry another request)."""

    def __init__(self, rfile: BufferedIOBase, headers: Message) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        try:
            self._length = int(length) if length and not self._chunked else 0
        except ValueError:
            raise BadRequestBody(f"unreadable HTTP body (Content-Length {length!r})") from None
        if self._length < 0:
            raise BadRequestBody(f"unreadable HTTP body (Content-Length {length!r})")
        self.complete = not self._chunked and self._length == 0

    def pieces(self) -> Iterator[bytes]:
        if self._chunked:
            yield from self._chunks()
            return
        left = self._length
        while left > 0:
            piece = self._rfile.read1(min(left, READ_PIECE))
            if not piece:
                return  # the client closed before sending it all
            left -= len(piece)
            yield piece
        self.complete = True

    def _chunks(self) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise BadRequestBody(f"unreadable HTTP body (chunk size {line[:40]!r})") from None
            if size == 0:
                break
            while size > 0:
                piece = self._rfile.read1(min(size, READ_PIECE))
                if not piece:
                    return
                size -= len(piece)
                yield piece
            self._rfile.readline(1024)  # the CRLF after each chunk
        while self._rfile.readline(64 * 1024) not in (b"\r\n", b"\n", b""):  # optional trailer headers
            pass
        self.complete = True


def read_json(body: Body) -> object:
    """The first JSON value of the body, decoded as soon as it is whole (an object or a list ends with a
    bracket: each time the bytes so far end with one, try); else the whole body's error."""
    buffer = bytearray()
    for piece in body.pieces():
        buffer += piece
        if len(buffer) > MAX_BODY:
            raise BodyTooLarge(f"over {MAX_BODY // (1024 * 1024)} MiB")
        if buffer.rstrip().endswith((b"}", b"]")):
            try:
                return decode_first(bytes(buffer))
            except BadRequestBody:
                continue  # not a whole value yet
    return decode_first(bytes(buffer))


def decode_first(raw: bytes) -> object:
    """The first JSON value in `raw` (what follows it is ignored, as Go's decoder does)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestBody(f"invalid JSON: {exc}") from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if start == len(text):
        raise BadRequestBody("the body is empty; send a JSON object")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise BadRequestBody(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequestBody("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN and friends; integers of more than 4,300 digits
        raise BadRequestBody(f"invalid JSON: {exc}") from None
    return value
