"""service.http11: the lean HTTP/1.1 client, against aiohttp servers and scripted raw ones."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.http11 import ConnectionPool, ProtocolError
from service.http11_wire import encode_request, parse_chunk_size, parse_head

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(main: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(main())  # type: ignore[arg-type]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One request off the wire: its request line, headers (lower-cased names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0].encode(), headers, body


class RawServer:
    """A TCP server answering each connection with ``script``; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[RawServer]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            await self._server.wait_closed()


def answering(*answers: bytes, keep_open: bool = True) -> Script:
    """A script sending ``answers`` in turn, one per request read; then waiting (or closing)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes

    return script


@contextlib.asynccontextmanager
async def pool_of(max_connections: int = 16) -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(max_connections=max_connections)
    try:
        yield pool
    finally:
        await pool.close()


async def get(pool: ConnectionPool, port: int, method: str = "GET", body: bytes | None = None):
    return await pool.request(
        "127.0.0.1", port, method, "/d/1/a", {"X-A": "1"}, body, conn_timeout_s=1, total_timeout_s=5
    )


# -- the wire, pure --------------------------------------------------------------------------


def test_a_request_has_host_our_framing_and_the_callers_headers() -> None:
    data = encode_request(
        "PUT", "/d/1/a%20b", "10.0.0.1:6200", {"X-A": "é", "Content-Length": "9"}, b"abc"
    )
    assert data == (
        b"PUT /d/1/a%20b HTTP/1.1\r\nHost: 10.0.0.1:6200\r\nX-A: \xc3\xa9\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    assert b"Content-Length: 0\r\n" in encode_request("POST", "/x", "h:1", {}, None)
    assert b"Content-Length" not in encode_request("DELETE", "/x", "h:1", {}, None)


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/x", {"X-A": "1\r\nX-B: 2"}),
        ("/x", {"X-A": "1\n"}),
        ("/x", {"X-A\r": "1"}),
        ("/x HTTP/1.1\r\nX-B: 2\r\n\r\nGET /y", {}),
        ("/a b", {}),
    ],
)
def test_cr_lf_or_a_space_in_the_target_are_refused(target: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="CR, LF"):
        encode_request("GET", target, "h:1", headers, None)


def test_parse_head() -> None:
    head = parse_head(
        b"HTTP/1.1 201 Created\r\nX-A:  one \r\nx-a: two\r\nContent-Length: 3\r\nETag: \xc3\xa9\r\n"
    )
    assert (head.status, head.keep_alive, head.chunked, head.length) == (201, True, False, 3)
    assert head.headers.getall("X-A") == ["one", "two"]
    assert head.headers["etag"] == "é"
    assert parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n").keep_alive is False
    assert parse_head(b"HTTP/1.0 200 OK\r\n").keep_alive is False
    assert parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n").keep_alive is True
    chunked = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n")
    assert (chunked.chunked, chunked.length) == (True, None)
    assert parse_head(b"HTTP/1.1 204\r\n").status == 204  # no reason phrase


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 200 OK\r\n",
        b"HTTP/1.1 20 OK\r\n",
        b"ICY 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n",
        b"HTTP/1.1 200 OK\r\nX A: 1\r\n",
        b"HTTP/1.1 200 OK\r\n folded: 1\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n",
    ],
)
def test_malformed_heads_are_protocol_errors(head: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_head(head)
    assert issubclass(ProtocolError, OSError)


# -- against an aiohttp server ---------------------------------------------------------------


def test_calls_reuse_one_keep_alive_connection() -> None:
    peers: list[object] = []

    async def handle(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        body = await request.read()
        return web.Response(
            status=201 if request.method == "PUT" else 200,
            body=request.method.encode() + b" " + body,
            headers={"X-Seen-A": request.headers.get("X-A", "")},
        )

    async def main() -> list:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        async with TestServer(app) as server, pool_of() as pool:
            return [
                await get(pool, server.port, "PUT", b"row"),
                await get(pool, server.port),
                await get(pool, server.port, "HEAD"),
                await get(pool, server.port, "DELETE"),
            ]

    put, got, head, delete = run(main)  # type: ignore[misc]
    assert (put.status, put.body, put.headers["x-seen-a"]) == (201, b"PUT row", "1")
    assert (got.status, got.body) == (200, b"GET ")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "5")
    assert delete.body == b"DELETE "
    assert len(set(peers)) == 1


# -- answers framed every way ----------------------------------------------------------------


@pytest.mark.parametrize("split", [False, True])
def test_chunked_answers_with_extensions_and_trailers(split: bool) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
    )

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_request(reader)
            for i in range(len(answer)) if split else [None]:
                writer.write(answer if i is None else answer[i : i + 1])
                await writer.drain()
        await reader.read()

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            first = await get(pool, server.port)
            second = await get(pool, server.port)
            return first, second, server.connections

    first, second, connections = run(main)  # type: ignore[misc]
    assert first.body == second.body == b"abc0123456789"
    assert connections == 1


def test_an_answer_without_length_runs_to_the_close_and_is_not_reused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        await writer.drain()

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            return [(await get(pool, server.port)).body for _ in range(2)], server.connections

    bodies, connections = run(main)  # type: ignore[misc]
    assert bodies == [b"all of it", b"all of it"]
    assert connections == 2


def test_interim_answers_are_skipped_and_204_has_no_body() -> None:
    script = answering(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            first = await get(pool, server.port)
            second = await get(pool, server.port)
            return first, second, server.connections

    first, second, connections = run(main)  # type: ignore[misc]
    assert (first.status, first.body, first.headers["X-A"]) == (204, b"", "1")
    assert (second.status, second.body) == (200, b"ok")
    assert connections == 1


def test_connection_close_is_honoured() -> None:
    script = answering(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            await get(pool, server.port)
            await get(pool, server.port)
            return server.connections

    assert run(main) == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA",  # bytes past the answer
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_a_malformed_answer_is_a_protocol_error_and_closes(answer: bytes) -> None:
    async def main():
        async with RawServer(answering(answer)).serving() as server, pool_of() as pool:
            with pytest.raises(ProtocolError):
                await get(pool, server.port)
            return pool._open

    assert not run(main)


def test_a_short_body_is_a_connection_error() -> None:
    script = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", keep_open=False)

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            with pytest.raises(ConnectionError, match="before the answer's end"):
                await get(pool, server.port)

    run(main)


# -- failures, retries, timeouts -------------------------------------------------------------


def test_refused_is_an_os_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main():
        async with pool_of() as pool:
            with pytest.raises(OSError):
                await get(pool, port)

    run(main)


@pytest.mark.parametrize(("method", "retried"), [("PUT", True), ("POST", False)])
def test_a_kept_connection_closed_by_the_node_is_retried_once_if_idempotent(
    method: str, retried: bool
) -> None:
    # The node answers once per connection, then closes it without saying so (as a node
    # does at its keep-alive timeout, racing the next request).
    ok = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    script = answering(ok, keep_open=False)

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            await get(pool, server.port, method)
            await asyncio.sleep(0)  # the close may or may not have been seen yet
            try:
                return (await get(pool, server.port, method)).status
            except ConnectionError:
                return None

    status = run(main)
    if retried:
        assert status == 201
    else:
        assert status in (None, 201)  # 201 only if the close was seen before the request


def test_the_total_timeout_closes_the_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # never answers

    async def main() -> float:
        async with RawServer(script).serving() as server, pool_of() as pool:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await pool.request(
                    "127.0.0.1", server.port, "GET", "/", {}, conn_timeout_s=1, total_timeout_s=0.2
                )
            assert not pool._open or all(c.closed for c in pool._open)
            return loop.time() - started

    assert run(main) < 2  # type: ignore[operator]


def test_the_read_timeout_restarts_with_every_byte() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
        for byte in b"slow":
            await asyncio.sleep(0.15)
            writer.write(bytes([byte]))
            await writer.drain()
        await reader.read()

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            kwargs = {"conn_timeout_s": 1, "read_timeout_s": 0.4}
            whole = await pool.request("127.0.0.1", server.port, "GET", "/", {}, **kwargs)
            with pytest.raises(TimeoutError):
                kwargs["read_timeout_s"] = 0.05
                await pool.request("127.0.0.1", server.port, "GET", "/", {}, **kwargs)
            return whole.body

    assert run(main) == b"slow"


def test_a_cancelled_call_closes_its_connection() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.3)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        await writer.drain()
        await reader.read()

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            task = asyncio.ensure_future(get(pool, server.port))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.01)
            late = await get(pool, server.port)  # a new connection: no stale "late" answer
            return late.body, server.connections

    assert run(main) == (b"late", 2)


def test_open_connections_are_bounded() -> None:
    active = 0
    most = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, most
        while True:
            await read_request(reader)
            active += 1
            most = max(most, active)
            await asyncio.sleep(0.05)
            active -= 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async def main():
        async with RawServer(script).serving() as server, pool_of(max_connections=2) as pool:
            answers = await asyncio.gather(*(get(pool, server.port) for _ in range(6)))
            return [a.status for a in answers], server.connections

    statuses, connections = run(main)  # type: ignore[misc]
    assert statuses == [200] * 6
    assert connections == 2 and most == 2


# -- streamed answers ------------------------------------------------------------------------


def test_a_streamed_body_is_read_in_pieces_then_the_connection_is_reused() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: more than the buffer's high-water mark

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body)

    async def main():
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        async with TestServer(app) as server, pool_of() as pool:
            response = await pool.open(
                "127.0.0.1", server.port, "GET", "/", {}, conn_timeout_s=1, read_timeout_s=5
            )
            await asyncio.sleep(0.1)  # let the node fill the buffer: reading pauses
            pieces = []
            while chunk := await response.content.read(65536):
                assert len(chunk) <= 65536
                pieces.append(chunk)
            idle = sum(len(conns) for conns in pool._idle.values())
            # Not read to the end: closed, not reused.
            partial = await pool.open(
                "127.0.0.1", server.port, "GET", "/", {}, conn_timeout_s=1, read_timeout_s=5
            )
            first = await partial.read(10)
            partial.release()
            return response.content_length, b"".join(pieces), idle, first, len(pool._open)

    length, received, idle, first, still_open = run(main)  # type: ignore[misc]
    assert length == len(body) and received == body
    assert idle == 1  # back in the pool once read to its end
    assert first == body[:10]
    assert still_open == 1  # the partial read's connection went away


def test_a_streamed_read_times_out_and_closes() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            response = await pool.open(
                "127.0.0.1", server.port, "GET", "/", {}, conn_timeout_s=1, read_timeout_s=0.1
            )
            assert await response.content.read(5) == b"abc"
            with pytest.raises(TimeoutError):
                await response.content.read(5)
            return await response.read()

    assert run(main) == b""  # closed: nothing more


def test_reading_a_whole_streamed_body_waits_for_its_end() -> None:
    big = b"x" * (1 << 20)  # past the buffer's high-water mark: reading must not stay paused

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for body in (b"in pieces", big):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 3 if len(body) < 100 else 65536):
                writer.write(body[i : i + (3 if len(body) < 100 else 65536)])
                await writer.drain()
                await asyncio.sleep(0.01)
        await reader.read()

    async def main():
        async with RawServer(script).serving() as server, pool_of() as pool:
            bodies = []
            for _ in range(2):
                response = await pool.open(
                    "127.0.0.1", server.port, "GET", "/", {}, conn_timeout_s=1, read_timeout_s=5
                )
                await asyncio.sleep(0.05)
                bodies.append(await asyncio.wait_for(response.read(), 10))
                response.release()
            return bodies, server.connections

    bodies, connections = run(main)  # type: ignore[misc]
    assert bodies == [b"in pieces", big]
    assert connections == 1


def test_chunk_sizes() -> None:
    assert parse_chunk_size(b"1f") == 31
    assert parse_chunk_size(b"A;name=value") == 10
    assert parse_chunk_size(b"0") == 0
    for bad in (b"", b"0x10", b"1_0", b"-1", b"g"):
        with pytest.raises(ProtocolError):
            parse_chunk_size(bad)
