"""service.methods: REPLICATE and SSYNC as a POST naming them, since llhttp refuses them."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from service.backend_client import open_backend_client
from service.methods import METHOD_OVERRIDE, effective_method, wire_method


def test_extension_methods_travel_as_a_post_naming_them() -> None:
    assert wire_method("REPLICATE", {"X-A": "1"}) == (
        "POST",
        {"X-A": "1", METHOD_OVERRIDE: "REPLICATE"},
    )
    assert wire_method("ssync", None) == ("POST", {METHOD_OVERRIDE: "SSYNC"})
    assert wire_method("PUT", {"X-A": "1"}) == ("PUT", {"X-A": "1"})


def test_only_a_post_may_name_only_an_extension_method() -> None:
    override = CIMultiDict({"x-http-method-override": " replicate "})
    assert effective_method("POST", override) == "REPLICATE"
    assert effective_method("PUT", override) == "PUT"
    assert effective_method("POST", CIMultiDict({METHOD_OVERRIDE: "DELETE"})) == "POST"
    assert effective_method("POST", CIMultiDict()) == "POST"
    assert effective_method("REPLICATE", CIMultiDict()) == "REPLICATE"  # a parser that takes it


def test_the_backend_client_sends_replicate_so_an_aiohttp_server_takes_it() -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "effective": effective_method(request.method, request.headers),
            }
        )

    async def main() -> tuple[int, bytes]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        async with (
            TestServer(app) as server,
            open_backend_client(conn_timeout_s=1, node_timeout_s=5) as client,
        ):
            response = await client.request("REPLICATE", "127.0.0.1", server.port, "sda", 3, "/abc")
            return response.status, response.body

    status, body = asyncio.run(main())
    assert status == 200
    assert body == b'{"method": "POST", "effective": "REPLICATE"}'
