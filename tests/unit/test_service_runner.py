"""service.runner: real sockets on 127.0.0.1, real worker processes."""

from __future__ import annotations

import asyncio
import http.client
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import uvloop
from aiohttp import web

from service.config import ServerConfig
from service.runner import ACCESS_LOGGER, MIN_UPTIME_S, run_worker, serve

STARTED = web.AppKey("started", list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_app(config: ServerConfig, events: list[str] | None = None) -> web.Application:
    """A trivial composition root: answers with the worker's pid; /slow takes a while."""

    async def pid(request: web.Request) -> web.Response:
        return web.Response(text=str(os.getpid()))

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0.5")))
        return web.Response(text="finished")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        (events if events is not None else []).append("startup")
        yield
        (events if events is not None else []).append("cleanup")

    app = web.Application()
    app.cleanup_ctx.append(lifetime)
    app.router.add_get("/pid", pid)
    app.router.add_get("/slow", slow)
    return app


def get(port: int, path: str, timeout_s: float = 5) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers={"X-Trans-Id": "tx123"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_a_worker_serves_logs_each_request_and_stops_cleanly(caplog) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    events: list[str] = []
    config = ServerConfig(bind_port=0, shutdown_grace_s=5)

    async def main() -> tuple[int, str, str]:
        stop = asyncio.Event()
        ports: list[int] = []
        worker = asyncio.create_task(
            run_worker(
                lambda c: build_app(c, events),
                config,
                stop,
                on_ready=lambda addresses: ports.append(addresses[0][1]),
            )
        )
        while not ports:
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{ports[0]}"
        async with aiohttp.ClientSession() as session:
            slow = asyncio.create_task(session.get(f"{url}/slow?s=0.3"))
            async with session.get(f"{url}/pid", headers={"X-Trans-Id": "tx1"}) as response:
                pid = await response.text()
            await asyncio.sleep(0.05)
            stop.set()  # while /slow is in flight: it must still be answered
            async with await slow as response:
                finished = await response.text()
        await worker
        return ports[0], pid, finished

    port, pid, finished = uvloop.run(main())
    assert pid == str(os.getpid())
    assert finished == "finished"
    assert events == ["startup", "cleanup"]
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert any(line.startswith("GET /pid 200 ") and line.endswith("ms tx1") for line in lines)
    method, path, status, sent_bytes, duration, trans_id = lines[-1].split()
    assert (method, path, status, trans_id) == ("GET", "/slow?s=0.3", "200", "-")
    assert int(sent_bytes) > len("finished")  # bytes on the wire: status line, headers, body
    assert float(duration.removesuffix("ms")) >= 300
    with pytest.raises(ConnectionRefusedError):  # the port is closed once the worker is done
        get(port, "/pid")


def server_main(config: ServerConfig) -> None:
    sys.exit(serve(build_app, config))  # as a server's main does


def start_server(config: ServerConfig) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("fork").Process(target=server_main, args=(config,))
    process.start()
    return process


def test_two_worker_processes_answer_on_one_port() -> None:
    port = free_port()
    server = start_server(ServerConfig(bind_port=port, workers=2, shutdown_grace_s=5))
    try:
        pids: set[str] = set()

        def both_answered() -> bool:
            try:
                status, body = get(port, "/pid")
            except OSError:
                return False  # not listening yet
            assert status == 200
            pids.add(body)
            return len(pids) == 2

        wait_for(both_answered)
        assert str(server.pid) not in pids  # the supervisor does not serve
        server.terminate()
        server.join(15)
        assert server.exitcode == 0
        for pid in pids:  # and its workers are gone with it
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
    finally:
        if server.is_alive():
            server.kill()
            server.join()


def test_a_worker_that_dies_is_started_again() -> None:
    port = free_port()
    server = start_server(ServerConfig(bind_port=port, workers=2, shutdown_grace_s=5))
    try:
        wait_for(lambda: _answers(port))
        first = get(port, "/pid")[1]
        time.sleep(MIN_UPTIME_S)  # past start-up: a death now is a crash, not a failed start
        os.kill(int(first), signal.SIGKILL)
        seen: set[str] = set()

        def replaced() -> bool:
            try:
                seen.add(get(port, "/pid")[1])
            except OSError:
                return False
            return len(seen - {first}) == 2  # the survivor and the new worker

        wait_for(replaced)
        assert first not in seen
        server.terminate()
        server.join(15)
        assert server.exitcode == 0
    finally:
        if server.is_alive():
            server.kill()
            server.join()


def test_a_single_worker_finishes_in_flight_requests_on_sigterm() -> None:
    port = free_port()
    server = start_server(ServerConfig(bind_port=port, workers=1, shutdown_grace_s=5))
    try:
        wait_for(lambda: _answers(port))
        result: list[tuple[int, str]] = []
        request = threading.Thread(target=lambda: result.append(get(port, "/slow?s=0.5")))
        request.start()
        time.sleep(0.2)
        os.kill(server.pid, signal.SIGTERM)
        request.join(10)
        assert result == [(200, "finished")]
        server.join(15)
        assert server.exitcode == 0
    finally:
        if server.is_alive():
            server.kill()
            server.join()


def test_workers_that_cannot_bind_stop_the_server() -> None:
    with socket.socket() as taken:  # a listener without SO_REUSEPORT: nobody may share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start_server(ServerConfig(bind_port=port, workers=2, shutdown_grace_s=1))
        server.join(30)
        assert server.exitcode == 1


def test_several_workers_need_a_fixed_port() -> None:
    with pytest.raises(ValueError, match="fixed bind_port"):
        serve(build_app, ServerConfig(bind_port=0, workers=2))


def _answers(port: int) -> bool:
    try:
        return get(port, "/pid")[0] == 200
    except OSError:
        return False
