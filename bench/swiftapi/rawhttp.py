"""A lean HTTP/1.1 client for the measured loop: one request at a time per keep-alive connection.

Why not aiohttp here: on loopback aiohttp's client spends ~150 µs of CPU per 4 KiB GET (request
and response objects, header multidicts, timers, stream readers); this one spends ~20 µs, and on
a 2-core box every client microsecond is taken from the servers being measured.  aiohttp stays
for auth, preparing objects and cleaning up (untimed), and as ``--client aiohttp``.

It sends exactly the request bytes it is given (no Expect, no pipelining) and reads the
response with ``ResponseParser``: status line, headers, then a body framed by Content-Length,
by chunked transfer coding, or by the end of the connection; none after HEAD or a 1xx/204/304.
Bodies are counted, never kept.  Anything malformed raises ``ProtocolError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from measure import Meter

MAX_HEAD_BYTES = 64 * 1024


class ProtocolError(Exception):
    """The server sent something that is not a well-formed HTTP/1.1 response, or hung up."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    body_bytes: int
    keep_alive: bool


class ResponseParser:
    """Pure state machine over the bytes of one response (fed as they arrive)."""

    def __init__(self, head_request: bool = False) -> None:
        self._head_request = head_request
        self._buffer = bytearray()  # unparsed bytes of the head or of a chunk-size line
        self._state = "head"  # head, length, chunk-size, chunk-data, chunk-crlf, trailers, eof
        self._remaining = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body_bytes = 0
        self.keep_alive = True
        self.done = False

    def feed(self, data: bytes | memoryview) -> None:
        """Take the next bytes; sets ``done`` at the end of the response.  Bytes past the end
        (a second response we never asked for) raise ProtocolError."""
        view = memoryview(data).cast("B")
        while view:
            if self.done:
                raise ProtocolError(f"{len(view)} bytes after the end of the response")
            view = self._step(view)

    def connection_closed(self) -> None:
        """The peer closed: the end of a body framed by the connection, otherwise an error."""
        if self._state == "eof":
            self.done = True
            self.keep_alive = False
        elif not self.done:
            raise ProtocolError(f"connection closed mid-response (in {self._state})")

    def _step(self, view: memoryview) -> memoryview:
        state = self._state
        if state in ("length", "chunk-data"):
            take = min(self._remaining, len(view))
            self.body_bytes += take
            self._remaining -= take
            if self._remaining == 0:
                self._state = "chunk-crlf" if state == "chunk-data" else "done"
                self.done = state == "length"
            return view[take:]
        if state == "eof":
            self.body_bytes += len(view)
            return view[len(view) :]
        line_end = b"\r\n\r\n" if state in ("head", "trailers") else b"\r\n"
        start = max(0, len(self._buffer) - len(line_end) + 1)
        self._buffer += view
        end = self._buffer.find(line_end, start)
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(f"no end of {state} in {MAX_HEAD_BYTES} bytes")
            return view[len(view) :]
        consumed = end + len(line_end) - (len(self._buffer) - len(view))
        text = bytes(self._buffer[:end])
        self._buffer.clear()
        getattr(self, "_on_" + state.replace("-", "_"))(text)
        return view[consumed:]

    def _on_head(self, text: bytes) -> None:
        lines = text.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return  # an interim response: the real one follows
        self.status, self.headers = status, headers
        connection = headers.get("connection", "").lower()
        self.keep_alive = parts[0] == "HTTP/1.1" and "close" not in connection
        if self._head_request or status in (204, 304):
            self._finish()
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = "chunk-size"
        elif "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length!r}")
            self._remaining = int(length)
            self._state = "length"
            if self._remaining == 0:
                self._finish()
        else:
            self._state = "eof"
            self.keep_alive = False

    def _on_chunk_size(self, text: bytes) -> None:
        size_text = text.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            self._state = "trailers"
            self._buffer += b"\r\n"  # so an empty trailer section ends at the next CRLF
        else:
            self._remaining = size
            self._state = "chunk-data"

    def _on_chunk_crlf(self, text: bytes) -> None:
        if text:
            raise ProtocolError("chunk data longer than its size")
        self._state = "chunk-size"

    def _on_trailers(self, text: bytes) -> None:
        self._finish()

    def _finish(self) -> None:
        self._state = "done"
        self.done = True


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``request()`` is never called while another is in flight.
    Body bytes sent and received are added to ``meter`` as they go."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._transport: asyncio.Transport | None = None
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._writable: asyncio.Future[None] | None = None
        self.closed = False

    async def request(self, head: bytes, body: Sequence[bytes | memoryview] = ()) -> Response:
        """Send ``head`` (request line and headers, ending in an empty line) and ``body``."""
        if self.closed or self._transport is None:
            raise ProtocolError("connection already closed")
        transport, meter = self._transport, self._meter
        self._parser = ResponseParser(head_request=head.startswith(b"HEAD "))
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        if body:
            transport.writelines((head, body[0]))  # one syscall for a small request
            meter.body_bytes += len(body[0])
        else:
            transport.write(head)
        sent_all = True
        for piece in body[1:]:
            if self._writable is not None:
                await self._writable
            if waiter.done():  # answered before the body was all sent (an error): stop
                sent_all = False
                break
            transport.write(piece)
            meter.body_bytes += len(piece)
        response = await waiter
        if not (response.keep_alive and sent_all):
            self.close()
        return response

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        parser, waiter = self._parser, self._waiter
        if parser is None or waiter is None or waiter.done():
            self._fail(ProtocolError(f"{len(data)} unexpected bytes between responses"))
            return
        before = parser.body_bytes
        try:
            parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        self._meter.body_bytes += parser.body_bytes - before
        if parser.done:
            status, headers, body_bytes = parser.status, parser.headers, parser.body_bytes
            waiter.set_result(Response(status, headers, body_bytes, parser.keep_alive))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        parser, waiter = self._parser, self._waiter
        if waiter is not None and not waiter.done() and parser is not None:
            try:
                parser.connection_closed()
            except ProtocolError as error:
                waiter.set_exception(error)
            else:
                r = Response(parser.status, parser.headers, parser.body_bytes, keep_alive=False)
                waiter.set_result(r)
        self._wake_writer(ProtocolError("connection lost while sending"))

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer(None)

    def _wake_writer(self, exc: Exception | None) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            if exc is None:
                writable.set_result(None)
            else:
                writable.set_exception(exc)

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()


class Pool:
    """Keep-alive connections to one host:port, made as needed, reused last-in first-out."""

    def __init__(self, host: str, port: int, meter: Meter) -> None:
        self.host, self.port, self.meter = host, port, meter
        self._idle: list[Connection] = []
        self.opened = 0

    async def request(self, head: bytes, body: Sequence[bytes | memoryview] = ()) -> Response:
        while self._idle and self._idle[-1].closed:  # the server hung up while it was idle
            self._idle.pop()
        connection = self._idle.pop() if self._idle else await self._open()
        try:
            response = await connection.request(head, body)
        except BaseException:
            connection.close()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return response

    async def _open(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: Connection(self.meter), self.host, self.port
        )
        self.opened += 1
        return connection

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
