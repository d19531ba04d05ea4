"""service/http11_upload.py: request bodies written as they come (the proxy's streamed PUTs),
against an aiohttp server that answers 100 Continue only once its checks pass."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.http11 import ConnectionPool
from service.http11_wire import encode_upload_head


@dataclass
class Node:
    """Stores PUT bodies; ``412`` in the path answers before the body, ``stall`` takes the
    100 Continue and then reads nothing."""

    stored: dict[str, bytes] = field(default_factory=dict)
    cut: int = 0  # bodies that ended short
    peers: set[object] = field(default_factory=set)  # client ends seen: one per connection
    heads: list[dict[str, str]] = field(default_factory=list)

    async def expect(self, request: web.Request) -> None:
        if "412" in request.path:
            raise web.HTTPPreconditionFailed()
        assert request.transport is not None
        request.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def handle(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        self.heads.append(dict(request.headers))
        if "stall" in request.path:
            await asyncio.sleep(1.5)  # longer than the drain waits for
        try:
            data = await request.read()
        except BaseException:  # a cut connection: a read error, or the handler cancelled
            self.cut += 1
            raise
        self.stored[request.path] = data
        return web.Response(status=201, text=hashlib.md5(data).hexdigest())


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[Node, int, ConnectionPool]]:
    node = Node()
    app = web.Application(client_max_size=1 << 24)
    app.router.add_route("PUT", "/{tail:.*}", node.handle, expect_handler=node.expect)
    pool = ConnectionPool(max_connections=8)
    async with TestServer(app) as server:
        try:
            yield node, server.port, pool
        finally:
            await pool.close()


async def upload(pool: ConnectionPool, port: int, path: str, length: int | None):
    return await pool.open_upload(
        "127.0.0.1", port, "PUT", path, {"X-A": "1"}, length, conn_timeout_s=1,
        continue_timeout_s=2,
    )  # fmt: skip


def test_the_head_asks_for_100_continue_with_its_framing() -> None:
    head = encode_upload_head("PUT", "/d/1/a", "h:1", {"Expect": "x", "X-A": "1"}, 7)
    assert head == (
        b"PUT /d/1/a HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\n"
        b"Content-Length: 7\r\nExpect: 100-continue\r\n\r\n"
    )
    chunked = encode_upload_head("PUT", "/d/1/a", "h:1", {}, None)
    assert b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n" in chunked
    with pytest.raises(ValueError):
        encode_upload_head("PUT", "/d/1/a", "h:1", {"X-A": "1\r\nX-B: 2"}, None)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_written_in_pieces_arrives_whole_and_the_connection_is_reused(
    chunked: bool,
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB

    async def main() -> None:
        async with serving() as (node, port, pool):
            for name in ("/o1", "/o2"):
                up = await upload(pool, port, name, None if chunked else len(data))
                assert up.early is None
                view = memoryview(data)
                for i in range(0, len(data), 300_000):
                    up.write([view[i : i + 100_000], view[i + 100_000 : i + 300_000]])
                    await up.drain(2)
                answer = await up.finish(2)
                assert answer.status == 201
                assert answer.body.decode() == hashlib.md5(data).hexdigest()
            assert node.stored == {"/o1": data, "/o2": data}
            assert len(node.peers) == 1  # one keep-alive connection for both
            assert ("Transfer-Encoding" in node.heads[0]) == chunked

    asyncio.run(main())


def test_a_final_answer_instead_of_100_continue_is_early_and_not_reused() -> None:
    async def main() -> None:
        async with serving() as (node, port, pool):
            up = await upload(pool, port, "/412", 10)
            assert up.early is not None and up.early.status == 412
            assert up.failed
            assert not pool._open or all(c.closed for c in pool._open)
            assert node.stored == {}

    asyncio.run(main())


@pytest.mark.parametrize("chunked", [False, True])
def test_close_mid_body_stores_nothing(chunked: bool) -> None:
    async def main() -> None:
        async with serving() as (node, port, pool):
            up = await upload(pool, port, "/cut", None if chunked else 1000)
            up.write([b"x" * 500])
            await asyncio.sleep(0.05)
            up.close()
            await asyncio.sleep(0.1)
            assert node.stored == {}
            assert node.cut == 1

    asyncio.run(main())


def test_a_node_that_stops_reading_makes_drain_time_out_and_cut() -> None:
    async def main() -> None:
        async with serving() as (_node, port, pool):
            up = await upload(pool, port, "/stall", None)
            up.set_buffer_limit(1 << 20)
            chunk = b"s" * (1 << 20)
            with pytest.raises(TimeoutError):
                for _ in range(64):  # far more than the socket buffers hold
                    up.write([chunk])
                    await up.drain(0.2)
            assert up.failed
            with pytest.raises(ConnectionError):
                up.write([b"more"])

    asyncio.run(main())


def test_the_announced_length_is_kept() -> None:
    async def main() -> None:
        async with serving() as (node, port, pool):
            up = await upload(pool, port, "/long", 4)
            with pytest.raises(ValueError):
                up.write([b"123", b"45"])
            short = await upload(pool, port, "/short", 4)
            short.write([b"123"])
            with pytest.raises(ValueError):
                await short.finish(1)
            await asyncio.sleep(0.1)
            assert node.stored == {}

    asyncio.run(main())
