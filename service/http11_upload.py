"""A request body written as it comes, over one connection of the lean HTTP/1.1 client
(service/http11.py's ``ConnectionPool.open_upload``): the proxy's streamed object PUTs.

The head went out with ``Expect: 100-continue`` and the node answered 100 Continue; or it gave
its final answer instead (a 412, a 507), which is ``early``, read whole: nothing is written.

- ``write(pieces)`` hands ``pieces`` to the transport: no await, no copy (one writev; a chunk
  of the chunked coding adds its size line and CRLF around them).  The transport keeps what
  the socket does not take at once; once that passes the high-water mark
  (``set_buffer_limit``), ``must_drain`` is true and the writer awaits ``drain(timeout_s)``
  before writing more.  Memory per upload is bounded by the mark plus one write.  A writer
  fanning a body out to several nodes writes each chunk to all of them, then drains those
  that need it: while the nodes keep up, a chunk costs no await at all.
- ``failed``: the node closed the connection, it broke, or the node answered before the body's
  end (that answer comes from ``finish``): write nothing more.
- ``finish(read_timeout_s)``: the body's end (the chunked coding's last chunk; a body shorter
  than its Content-Length is refused, ``ValueError``), then the whole answer, each wait on the
  node at most ``read_timeout_s``.  The connection goes back to the pool if it can.
- ``close()``: cut the request before its body's end: the connection is aborted, so the node
  sees a short body (or no last chunk) and stores nothing.

Errors are those of service/http11.py: ``OSError`` (``ConnectionError``) or ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from multidict import CIMultiDictProxy

from service.http11_connection import Connection
from service.http11_wire import Response

_LAST_CHUNK = b"0\r\n\r\n"


class Upload:
    def __init__(
        self, release: Callable[[Connection], None], conn: Connection, length: int | None
    ) -> None:
        self._release = release
        self._conn: Connection | None = conn
        self._length = length  # None: the chunked coding
        self._written = 0
        self.early: Response | None = None  # the node's answer before any body byte

    async def read_early_answer(self, timeout_s: float) -> None:
        """The final answer that came instead of a 100 Continue, read whole."""
        conn = self._conn
        assert conn is not None
        self.early = await self._read_answer(conn, timeout_s, reusable=False)

    @property
    def failed(self) -> bool:
        """Nothing more may be written: closed, broken, or answered already."""
        conn = self._conn
        return conn is None or conn.closed or conn.error is not None or conn.head is not None

    @property
    def answered(self) -> bool:
        """The node's answer began before the body's end (``finish`` reads it)."""
        conn = self._conn
        return conn is not None and conn.head is not None

    @property
    def must_drain(self) -> bool:
        conn = self._conn
        return conn is not None and conn.must_drain

    def set_buffer_limit(self, high_bytes: int) -> None:
        """How many unsent bytes the transport may hold before ``must_drain``."""
        conn = self._conn
        if conn is not None and conn.transport is not None:
            conn.transport.set_write_buffer_limits(high=high_bytes, low=high_bytes // 4)

    def write(self, pieces: Sequence[bytes | memoryview]) -> None:
        """Queue ``pieces`` on the connection, in one ``writelines`` (a writev, no copy).
        Nothing at all is nothing: the chunked coding's end is ``finish``'s."""
        conn = self._conn
        if conn is None or self.failed:
            raise ConnectionError("the upload's connection failed or was answered")
        size = sum(map(len, pieces))
        if not size:
            return
        self._written += size
        if self._length is not None and self._written > self._length:
            self.close()
            raise ValueError(f"more than the {self._length} bytes announced")
        transport = conn.transport
        assert transport is not None
        if self._length is None:
            transport.writelines((b"%x\r\n" % size, *pieces, b"\r\n"))
        else:
            transport.writelines(pieces)

    async def drain(self, timeout_s: float) -> None:
        """Wait until the transport's buffer fell under its low-water mark (or the connection
        ended: see ``failed``); ``TimeoutError`` after ``timeout_s``, the request cut."""
        conn = self._conn
        if conn is None or not conn.must_drain:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await conn.drained()
        except BaseException:
            self.close()
            raise

    async def finish(self, read_timeout_s: float) -> Response:
        """End the body, then the node's whole answer."""
        conn = self._conn
        if conn is None:
            raise ConnectionError("the upload was closed")
        answered = conn.head is not None  # before the body's end: the node read no more
        if not answered and conn.error is None and not conn.closed:
            if self._length is None:
                assert conn.transport is not None
                conn.transport.write(_LAST_CHUNK)
            elif self._written != self._length:
                self.close()
                raise ValueError(f"{self._written} of the {self._length} bytes announced")
        return await self._read_answer(conn, read_timeout_s, reusable=not answered)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _read_answer(self, conn: Connection, timeout_s: float, *, reusable: bool) -> Response:
        conn.start_timer(total_s=None, read_s=timeout_s)
        try:
            while not conn.done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait_more(to_end=True)
        except BaseException:
            self.close()
            raise
        finally:
            conn.stop_timer()
        head = conn.head
        assert head is not None
        response = Response(head.status, CIMultiDictProxy(head.headers), conn.take(-1))
        self._conn = None
        if reusable:
            self._release(conn)
        else:
            conn.close()  # the node may still wait for a body it will not get
        return response
