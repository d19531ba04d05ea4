"""One keep-alive connection of the lean HTTP/1.1 client (service/http11.py): an asyncio
protocol that sends a request and parses its answer as the bytes come.

One answer at a time: ``send`` writes a request and returns a future, set once the answer's
head came (a streamed answer) or its end (a whole one).  The body collects in ``body``; a
streamed reader takes it with ``take`` and waits for more with ``wait_more``.  While more
than ``BUFFER_HIGH_BYTES`` of a streamed body wait unread the socket is paused, until they
fall under ``BUFFER_LOW_BYTES``.  Anything wrong (a malformed answer, bytes nobody asked for,
the node closing early, a timer expiring) sets ``error``, fails the waiter and closes the
connection: it is never reused once in doubt.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from collections.abc import Callable

from service.http11_wire import Head, ProtocolError, parse_chunk_size, parse_head

BUFFER_HIGH_BYTES = 256 * 1024  # unread body bytes at which a streamed answer pauses the socket
BUFFER_LOW_BYTES = 64 * 1024  # ... and resumes it
MAX_HEAD_BYTES = 64 * 1024  # status line and headers of one answer (and its trailers)
MAX_CHUNK_LINE_BYTES = 4096

# The delivery check (``send``'s ``ack_timeout_s``) waits at least this long: a live peer may
# hold back its ACK up to 200 ms (Linux's delayed-ACK ceiling) when no answer byte carries it.
MIN_ACK_WAIT_S = 0.25
# struct tcp_info (linux/tcp.h, a stable ABI): eight one-byte fields, then u32s, of which
# tcpi_unacked (segments sent and not yet acknowledged) is the fifth.
_TCPI_UNACKED = struct.Struct("=I")
_TCPI_UNACKED_OFFSET = 8 + 4 * 4
_TCP_INFO_BYTES = 104

# Where the parser is in an answer.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _TO_EOF, _DONE = range(8)
_BODY_STATES = (_LENGTH, _CHUNK_DATA, _TO_EOF)


class Connection(asyncio.Protocol):
    def __init__(self, key: tuple[str, int], on_lost: Callable[[Connection], None]) -> None:
        self.key = key  # (host, port)
        self._on_lost = on_lost
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False  # the current request went out on a connection used before
        self.idle_since = 0.0
        self.head: Head | None = None
        self.body_bytes = 0  # of the answer's body received and not yet taken
        # Those bytes, as they came (what is left of a piece read in part: a view of it).
        self._body: collections.deque[bytes | memoryview] = collections.deque()
        self.got_bytes = False  # any byte of the current answer came
        self.error: BaseException | None = None
        self._buf = bytearray()  # received and not parsed yet: a head, chunk line or trailer
        self._state = _DONE
        self._no_body = False  # the request was a HEAD
        self._remaining = 0  # of a Content-Length body or of the current chunk
        self._waiter: asyncio.Future[None] | None = None
        self._want_head = False  # the waiter waits for the head (a streamed answer)
        self._want_end = True  # the waiter waits for the whole body, not any bytes of it
        self._paused = False
        self._expect_continue = False  # the waiter also wakes on a 100 Continue
        self.continued = False  # a 100 Continue came for the current request
        self._write_paused = False  # the transport's buffer passed its high-water mark
        self._drain: asyncio.Future[None] | None = None  # set once it falls under the low
        self._timer: asyncio.TimerHandle | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._read_timeout_s: float | None = None
        self._last_data = 0.0

    # asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._state == _DONE:
            self._fail(ProtocolError("the node sent bytes outside an answer"))
            return
        self.got_bytes = True
        self._last_data = self.loop.time()
        try:
            self._feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        if self._state == _DONE:
            self._wake()
        elif self.body_bytes:
            self._body_came()

    def eof_received(self) -> bool:
        if self._state == _TO_EOF and self.head is not None:
            self._state = _DONE
            self.head = self.head._replace(keep_alive=False)
            self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self._cancel_ack_timer()
        if self._state != _DONE or self._buf:
            why = "the node closed the connection before the answer's end"
            self._fail(ConnectionError(f"{why}: {exc}" if exc else why), close=False)
        self._wake_drain()
        self._on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    # a request body written as it comes (service/http11_upload.py) ------------------------

    @property
    def must_drain(self) -> bool:
        """The transport holds more unsent bytes than its high-water mark."""
        return self._write_paused and not self.closed

    def drained(self) -> asyncio.Future[None]:
        """A future set once the transport's buffer fell under its low-water mark (or the
        connection closed: the caller looks at ``error``)."""
        if self._drain is None or self._drain.done():
            self._drain = self.loop.create_future()
        if not self.must_drain:
            self._drain.set_result(None)
        return self._drain

    def _wake_drain(self) -> None:
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # one request and its answer -----------------------------------------------------------

    def send(
        self,
        data: bytes,
        *,
        head_request: bool,
        want_head: bool,
        expect_continue: bool = False,
        ack_timeout_s: float | None = None,
    ) -> asyncio.Future[None]:
        """Write a request; a future set once its answer's head (``want_head``) or end came,
        or (``expect_continue``) a 100 Continue before either (then ``continued`` is set).

        ``ack_timeout_s``: if no byte of the answer came by then (at least ``MIN_ACK_WAIT_S``)
        and the peer's TCP has not acknowledged the request either, the node is unreachable
        (a host black-holed since this kept connection was opened): fail with a
        ``TimeoutError`` then, as a connect timeout would, rather than wait the whole read
        timeout for an answer that cannot come.  A live node that is merely slow to answer
        has acknowledged the bytes, and is waited for as before."""
        assert self.transport is not None and self._state == _DONE and not self._buf
        self.head, self.error, self.got_bytes = None, None, False
        self._expect_continue, self.continued = expect_continue, False
        self._body.clear()
        self.body_bytes = 0
        self._state, self._no_body = _HEAD, head_request
        self._want_head, self._want_end = want_head, not want_head
        self._waiter = self.loop.create_future()
        self.transport.write(data)
        if ack_timeout_s is not None:
            wait_s = max(ack_timeout_s, MIN_ACK_WAIT_S)
            self._ack_timer = self.loop.call_later(wait_s, self._check_acknowledged, wait_s)
        return self._waiter

    def start_timer(self, *, total_s: float | None, read_s: float | None) -> None:
        """Fail the answer ``total_s`` from now, or once ``read_s`` pass without a byte."""
        self._cancel_timer()
        self._read_timeout_s = read_s
        self._last_data = now = self.loop.time()
        if total_s is not None:
            self._timer = self.loop.call_at(now + total_s, self._expire, True)
        elif read_s is not None:
            self._timer = self.loop.call_at(now + read_s, self._expire, False)

    def stop_timer(self) -> None:
        self._cancel_timer()
        self._cancel_ack_timer()

    def wait_more(self, *, to_end: bool) -> asyncio.Future[None]:
        """A future set once body bytes are there (``to_end``: the whole body), or on error."""
        self._waiter = self.loop.create_future()
        self._want_end = to_end
        if to_end and self._paused and self.transport is not None:
            self._paused = False  # the whole body is wanted: the buffer may pass the mark
            self.transport.resume_reading()
        if self.error is not None or self._state == _DONE or (self.body_bytes and not to_end):
            self._wake()
        return self._waiter

    def take(self, n: int) -> bytes:
        """Up to ``n`` bytes of the body received so far (``n`` < 0: all of them).  The bytes
        objects the transport gave are handed out as they are where they fit."""
        body = self._body
        if n < 0 or n >= self.body_bytes:
            data = bytes(body.popleft()) if len(body) == 1 else b"".join(body)
            body.clear()
        elif n >= len(body[0]):
            pieces = []
            wanted = n
            while body and len(body[0]) <= wanted:
                wanted -= len(body[0])
                pieces.append(body.popleft())
            data = bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)
        else:
            # What is left of the first piece stays a view of it: slicing the bytes would
            # copy the rest at every small read, quadratic in the piece's size.
            first = memoryview(body[0])
            data, body[0] = bytes(first[:n]), first[n:]
        self.body_bytes -= len(data)
        if self._paused and self.body_bytes < BUFFER_LOW_BYTES and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def done(self) -> bool:
        """The whole answer came, and nothing went wrong."""
        return self._state == _DONE and self.error is None

    @property
    def reusable(self) -> bool:
        """Whether another request may go out on this connection now."""
        return (
            self.done
            and not self.closed
            and not self._buf
            and not self.body_bytes
            and self.head is not None
            and self.head.keep_alive
        )

    def close(self) -> None:
        """Close the connection at once: bytes of a request body still buffered are dropped
        (a ``transport.close()`` would wait for a node that stopped reading to take them)."""
        self._cancel_timer()
        self._cancel_ack_timer()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        if self.error is None and self._state != _DONE:
            self.error = ConnectionError("the connection was closed")
        self._wake_drain()

    # internals ----------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        """Parse ``data``: body bytes go to ``_body`` as they came (no copy), framing (a head,
        a chunk's size line and end, trailers) through ``_buf``."""
        while data:
            state = self._state
            if state in _BODY_STATES and not self._buf:
                if state == _TO_EOF or len(data) <= self._remaining:
                    piece, data = data, b""
                else:
                    piece, data = data[: self._remaining], data[self._remaining :]
                self._body.append(piece)
                self.body_bytes += len(piece)
                if state != _TO_EOF:
                    self._remaining -= len(piece)
                    if not self._remaining:
                        self._state = _DONE if state == _LENGTH else _CHUNK_END
            elif state == _DONE:  # bytes after the answer's end: more than one answer
                raise ProtocolError("the node sent bytes after the answer's end")
            else:
                self._buf += data
                data = self._parse_framing()

    def _parse_framing(self) -> bytes:
        """Parse what ``_buf`` holds; once a body starts, what is left of it (to ``_feed``)."""
        buf = self._buf
        while buf:
            state = self._state
            if state in _BODY_STATES or state == _DONE:
                rest = bytes(buf)
                buf.clear()
                return rest
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise ProtocolError("an answer's head is too long")
                    break
                head = parse_head(bytes(buf[: end + 2]))
                del buf[: end + 4]
                if head.status < 200:
                    if head.status == 101 or head.status < 100:
                        raise ProtocolError(f"unexpected status {head.status}")
                    if head.status == 100 and self._expect_continue:
                        self._expect_continue = False
                        self.continued = True
                        self._wake()  # the body may go; the real answer follows it
                    continue  # an interim answer: the real one follows
                self._start_body(head)
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_CHUNK_LINE_BYTES:
                        raise ProtocolError("a chunk size line is too long")
                    break
                self._remaining = parse_chunk_size(bytes(buf[:end]))
                del buf[: end + 2]
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    raise ProtocolError("a chunk does not end with CRLF")
                del buf[:2]
                self._state = _CHUNK_SIZE
            else:  # _TRAILERS
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise ProtocolError("trailers too long")
                    break
                del buf[: end + 2]
                if end == 0:
                    self._state = _DONE  # trailers, if any, are dropped
        return b""

    def _start_body(self, head: Head) -> None:
        self.head = head
        if self._no_body or head.status in (204, 304):
            self._state = _DONE
        elif head.chunked:
            self._state = _CHUNK_SIZE
        elif head.length is not None:
            self._remaining = head.length
            self._state = _LENGTH if head.length else _DONE
        else:
            self._state = _TO_EOF
        if self._want_head:
            self._want_head = False
            self._wake()

    def _body_came(self) -> None:
        if self._want_end:
            return  # a whole read waits for the end, however much comes before it
        if self.body_bytes >= BUFFER_HIGH_BYTES and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException, *, close: bool = True) -> None:
        if self.error is None:
            self.error = exc
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if close:
            self.close()

    def _expire(self, total: bool) -> None:
        self._timer = None
        read_s = self._read_timeout_s
        if not total and read_s is not None:
            due = self._last_data + read_s
            if due > self.loop.time():  # bytes came since: wait from the last of them
                self._timer = self.loop.call_at(due, self._expire, False)
                return
        self._fail(TimeoutError("the node did not answer in time"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_ack_timer(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None

    def acknowledged(self) -> bool:
        """Whether the node has the current request: an answer byte came, or its TCP
        acknowledged every byte sent (also True where TCP_INFO cannot be read)."""
        return self.got_bytes or not self._unacked_segments()

    def _check_acknowledged(self, waited_s: float) -> None:
        self._ack_timer = None
        if self.got_bytes or self.closed or self._state == _DONE:
            return
        unacked = self._unacked_segments()
        if unacked:
            self._fail(TimeoutError(f"the node did not acknowledge the request in {waited_s}s"))

    def _unacked_segments(self) -> int | None:
        """Segments the peer has not acknowledged (TCP_INFO); None where that cannot be read."""
        sock = None if self.transport is None else self.transport.get_extra_info("socket")
        if sock is None:
            return None
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
        except (OSError, AttributeError):
            return None
        if len(info) < _TCPI_UNACKED_OFFSET + _TCPI_UNACKED.size:
            return None
        return _TCPI_UNACKED.unpack_from(info, _TCPI_UNACKED_OFFSET)[0]
