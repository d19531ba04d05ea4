"""service/runner.py's metrics wiring, in-process: ``/metrics`` wins over an app's catch-all
route, requests are counted even with access lines off, and the duration is the fine one."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
import uvloop
from aiohttp import web

from service.config import ServerConfig
from service.metrics_text import CONTENT_TYPE, parse
from service.runner import ACCESS_LOGGER, run_worker


def build_app(config: ServerConfig) -> web.Application:
    async def everything(request: web.Request) -> web.Response:
        if request.path == "/slow":
            await asyncio.sleep(0.02)
        return web.Response(status=404 if request.path == "/missing" else 200, text="caught")

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", everything)  # as the storage servers and proxy do
    return app


def test_metrics_route_counts_and_times_requests(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)  # access lines off

    async def main() -> tuple[str, str, str]:
        stop = asyncio.Event()
        ports: list[int] = []
        worker = asyncio.create_task(
            run_worker(
                build_app,
                ServerConfig(bind_port=0),
                stop,
                on_ready=lambda addresses: ports.append(addresses[0][1]),
            )
        )
        while not ports:
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{ports[0]}"
        async with aiohttp.ClientSession() as session:
            for path in ("/a", "/missing", "/slow"):
                async with session.get(url + path) as response:
                    assert await response.text() == "caught"
            async with session.put(url + "/a", data=b"x") as response:
                await response.read()
            await asyncio.sleep(0.05)  # the last access-log call follows its response
            async with session.get(url + "/metrics") as response:
                text, content_type = await response.text(), response.headers["Content-Type"]
            async with session.get(url + "/metrics/not") as response:
                caught = await response.text()  # only the exact path is ours
        stop.set()
        await worker
        return text, content_type, caught

    text, content_type, caught = uvloop.run(main())
    assert content_type == CONTENT_TYPE
    assert caught == "caught"
    families = {f.name: f for f in parse(text)}
    counts = {
        (dict(s.labels)["method"], dict(s.labels)["class"]): s.value
        for s in families["torus_requests_total"].samples
        if s.value
    }
    assert counts == {("GET", "2xx"): 2, ("GET", "4xx"): 1, ("PUT", "2xx"): 1}
    duration = {
        (s.name, dict(s.labels).get("le")): s.value
        for s in families["torus_request_duration_seconds"].samples
        if dict(s.labels)["method"] == "GET"
    }
    assert duration["torus_request_duration_seconds_count", None] == 3
    assert duration["torus_request_duration_seconds_bucket", "0.01"] <= 2  # /slow took 20 ms
    assert duration["torus_request_duration_seconds_sum", None] >= 0.02
    assert "torus_daemon_recon_unreadable" not in families  # no devices directory
    assert not [r for r in caplog.records if r.name == ACCESS_LOGGER]
