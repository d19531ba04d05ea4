"""service.backend_client against a real aiohttp server on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from service.backend_client import (
    BACKEND_CLIENT,
    BackendUnavailable,
    backend_client_ctx,
    backend_url,
    open_backend_client,
)

RELEASE = web.AppKey("release", asyncio.Event)


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "path": request.path,
            "query": dict(request.query),
            "x_timestamp": request.headers.get("X-Timestamp"),
            "body": body.decode(),
        },
        status=201 if request.method == "PUT" else 200,
        headers={"X-Backend": "yes"},
    )


async def slow(request: web.Request) -> web.Response:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(request.app[RELEASE].wait(), 10)
    return web.Response(text="late")


async def fail(request: web.Request) -> web.Response:
    return web.Response(status=507, text="no device")


@contextlib.asynccontextmanager
async def backend_server() -> AsyncIterator[int]:
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_route("*", "/slow/{tail:.*}", slow)
    app.router.add_route("*", "/sdz/{tail:.*}", fail)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        app[RELEASE].set()
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_call_returns_status_headers_and_body_with_names_quoted() -> None:
    async def main():
        async with (
            backend_server() as port,
            open_backend_client(conn_timeout_s=1, node_timeout_s=5) as client,
        ):
            put = await client.request(
                "PUT",
                "127.0.0.1",
                port,
                "sda1",
                17,
                "/AUTH_a/c/☃ dir/o?#%",
                {"X-Timestamp": "1700000000.00000"},
                b"row",
            )
            get = await client.request(
                "GET", "127.0.0.1", port, "sda1", 17, "/a/c", query={"prefix": "p/q"}
            )
            return put, get

    put, get = asyncio.run(main())
    assert put.status == 201
    assert put.headers["x-backend"] == "yes"
    seen = json.loads(put.body)
    assert seen["raw_path"] == "/sda1/17/AUTH_a/c/%E2%98%83%20dir/o%3F%23%25"
    assert seen["path"] == "/sda1/17/AUTH_a/c/☃ dir/o?#%"
    assert (seen["method"], seen["x_timestamp"], seen["body"]) == (
        "PUT",
        "1700000000.00000",
        "row",
    )
    status, _headers, body = get  # unpacks as the tuple the brief asks for
    assert status == 200 and json.loads(body)["query"] == {"prefix": "p/q"}


def test_an_http_error_status_is_an_answer_not_an_exception() -> None:
    async def main():
        async with (
            backend_server() as port,
            open_backend_client(conn_timeout_s=1, node_timeout_s=5) as client,
        ):
            return await client.request("PUT", "127.0.0.1", port, "sdz", 1, "/a/c")

    assert asyncio.run(main()).status == 507


def test_connection_refused_is_backend_unavailable() -> None:
    port = closed_port()

    async def main():
        async with open_backend_client(conn_timeout_s=1, node_timeout_s=5) as client:
            await client.request("PUT", "127.0.0.1", port, "sda1", 1, "/a/c/o")

    with pytest.raises(BackendUnavailable, match=rf"PUT http://127.0.0.1:{port}/sda1/1/a/c/o"):
        asyncio.run(main())


def test_a_slow_node_is_backend_unavailable_after_node_timeout() -> None:
    async def main() -> float:
        async with (
            backend_server() as port,
            open_backend_client(conn_timeout_s=1, node_timeout_s=0.2) as client,
        ):
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(BackendUnavailable, match=r"GET .*/slow/1/a"):
                await client.request("GET", "127.0.0.1", port, "slow", 1, "/a")
            return loop.time() - started

    assert asyncio.run(main()) < 5  # well before the handler would have answered


def test_a_per_call_timeout_replaces_node_timeout() -> None:
    async def main() -> None:
        async with (
            backend_server() as port,
            open_backend_client(conn_timeout_s=1, node_timeout_s=30) as client,
        ):
            with pytest.raises(BackendUnavailable):
                await client.request("GET", "127.0.0.1", port, "slow", 1, "/a", timeout_s=0.1)

    asyncio.run(main())


def test_the_cleanup_ctx_gives_the_app_a_client_for_its_life() -> None:
    async def main() -> None:
        app = web.Application()
        app.cleanup_ctx.append(backend_client_ctx(conn_timeout_s=1, node_timeout_s=2))
        runner = web.AppRunner(app)
        await runner.setup()
        client = app[BACKEND_CLIENT]
        assert (client.conn_timeout_s, client.node_timeout_s) == (1, 2)
        async with backend_server() as port:
            response = await client.request("HEAD", "127.0.0.1", port, "sda1", 0, "/a")
            assert response.status == 200
        await runner.cleanup()
        assert client.closed

    asyncio.run(main())


def test_backend_urls() -> None:
    assert str(backend_url("::1", 6200, "sda", 3, "/a/c")) == "http://[::1]:6200/sda/3/a/c"
    assert str(backend_url("10.0.0.1", 6200, "sda", 3, "/a b")) == (
        "http://10.0.0.1:6200/sda/3/a%20b"
    )
    with pytest.raises(ValueError, match="must start with '/'"):
        backend_url("10.0.0.1", 6200, "sda", 3, "a")
