"""Cancelled PUTs and handlers: a write that may commit is never undone, and a committed write
always gets its container row or an async_pending.

The LMDB engine's writer thread commits what was queued whether or not the task that queued it
is still waiting; these tests hold the writer at chosen points to cancel at the worst moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from objectd.app_keys import FINISHING
from objectd.engine import ObjectEngine
from objectd.memory import MemoryObjectEngine
from objectd.server import build_app
from objectd.writer import FLUSH_BYTES
from service.config import ClusterConfig, ObjectServerConfig
from service.timestamp import Timestamp

SECRET = b"cancel-secret"
DEV, PART = "sda", 3
INLINE = 100
T0 = 1_700_000_000.0


def ts(offset_s: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + offset_s)


async def put(engine: Any, timestamp: Timestamp, body: bytes) -> None:
    write = await engine.open_write(DEV, PART, "a", "c", "o", timestamp, content_length=len(body))
    await write.write(body)
    await write.commit("application/octet-stream")


async def read_all(engine: Any) -> bytes:
    meta = engine.get(DEV, PART, "a", "c", "o")
    return b"".join([chunk async for chunk in engine.read(meta)])


async def wait_for_queue(engine: ObjectEngine, length: int) -> None:
    queue = engine.writer(DEV)._queue
    async with asyncio.timeout(5):
        while queue.qsize() < length:
            await asyncio.sleep(0.005)


def test_a_put_cancelled_while_its_commit_is_pending_is_not_undone(tmp_path: Path) -> None:
    """The reviewer's cancel_put.py: cancel between the rename into place and the commit."""

    async def main() -> None:
        (tmp_path / DEV).mkdir()
        engine = ObjectEngine(str(tmp_path), SECRET, inline_max_bytes=INLINE)
        try:
            await put(engine, ts(1), b"1" * 1000)
            write = await engine.open_write(DEV, PART, "a", "c", "o", ts(2), content_length=1000)
            await write.write(b"2" * 1000)
            dev = engine._device(DEV)
            busy, go_on = threading.Event(), threading.Event()
            stored, commit = threading.Event(), threading.Event()

            def hold(txn: Any) -> None:  # keeps the writer busy while the next batch queues
                busy.set()
                go_on.wait(5)

            def after_store(txn: Any) -> None:  # in the PUT's batch, after its store()
                stored.set()
                commit.wait(5)

            blocker = asyncio.create_task(dev.submit(hold))
            assert await asyncio.to_thread(busy.wait, 5)
            commit_task = asyncio.create_task(write.commit("text/plain"))
            await wait_for_queue(engine, 1)
            slow = asyncio.create_task(dev.submit(after_store))
            await wait_for_queue(engine, 2)
            go_on.set()
            assert await asyncio.to_thread(stored.wait, 5)  # renamed into place, not committed
            commit_task.cancel()
            await asyncio.sleep(0.1)  # where the old code undid the rename
            commit.set()
            await asyncio.gather(blocker, slow)
            with pytest.raises(asyncio.CancelledError):
                await commit_task
            meta = engine.get(DEV, PART, "a", "c", "o")
            assert meta.timestamp == ts(2)  # committed: the caller was only not told
            assert await read_all(engine) == b"2" * 1000
            assert os.listdir(tmp_path / DEV / "tmp") == []
        finally:
            engine.close()

    asyncio.run(main())


def test_a_cancelled_body_write_never_leaves_its_fd_to_a_thread(tmp_path: Path) -> None:
    """Cancelling a PUT mid-flush waits for the worker thread before the fd is closed."""

    async def main() -> None:
        (tmp_path / DEV).mkdir()
        engine = ObjectEngine(str(tmp_path), SECRET, inline_max_bytes=INLINE)
        try:
            write = await engine.open_write(DEV, PART, "a", "c", "o", ts(1), content_length=None)
            in_write, finish_write, wrote = threading.Event(), threading.Event(), threading.Event()
            real_write = os.writev
            closed_while_writing = []

            def slow_write(fd: int, data: Any) -> int:
                if threading.current_thread() is not threading.main_thread():
                    in_write.set()
                    finish_write.wait(5)
                    try:
                        os.fstat(fd)
                    except OSError:
                        closed_while_writing.append(fd)
                    finally:
                        wrote.set()
                return real_write(fd, data)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(os, "writev", slow_write)
                task = asyncio.create_task(write.write(b"x" * (FLUSH_BYTES + 1)))
                assert await asyncio.to_thread(in_write.wait, 5)
                task.cancel()
                await asyncio.sleep(0.05)
                finish_write.set()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert await asyncio.to_thread(wrote.wait, 5)
            assert closed_while_writing == []
            assert os.listdir(tmp_path / DEV / "tmp") == []
        finally:
            engine.close()

    asyncio.run(main())


# -- the HTTP handler ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def silent_container_server() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A container server that takes requests and never answers; the event: one arrived."""
    arrived = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(30)
        return web.Response(status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with TestServer(app) as server:
        yield server.port, arrived


def test_a_handler_cancelled_during_the_container_update_still_saves_it() -> None:
    """TestServer cancels a handler whose client goes away (handler_cancellation)."""

    async def main() -> None:
        engine = MemoryObjectEngine([DEV], SECRET, inline_max_bytes=INLINE)
        config = ObjectServerConfig(mount_check=False, container_update_timeout_s=0.3)
        app = build_app(config, ClusterConfig("s"), engine=engine, rng=random.Random(0))
        async with (
            silent_container_server() as (port, arrived),
            TestClient(TestServer(app)) as client,
        ):
            _reader, writer = await asyncio.open_connection(client.host, client.port)
            writer.write(
                b"PUT /sda/3/a/c/o HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 5\r\nX-Timestamp: " + ts(1).normal.encode() + b"\r\n"
                b"X-Container-Host: 127.0.0.1:" + str(port).encode() + b"\r\n"
                b"X-Container-Device: sdc\r\nX-Container-Partition: 9\r\n\r\nhello"
            )
            await writer.drain()
            await asyncio.wait_for(arrived.wait(), 5)  # committed; the update is out
            writer.close()  # the client gives up: the handler is cancelled
            await writer.wait_closed()
            async with asyncio.timeout(5):
                while not engine.list_async_pendings(DEV):
                    await asyncio.sleep(0.05)
        [(_key, pending)] = engine.list_async_pendings(DEV)
        assert pending is not None
        assert (pending.op, pending.obj, pending.targets) == (
            "PUT",
            "o",
            (("127.0.0.1", port, "sdc"),),
        )
        assert engine.get(DEV, PART, "a", "c", "o").timestamp == ts(1)

    asyncio.run(main())


def test_shutdown_waits_for_the_work_of_cancelled_handlers() -> None:
    async def main() -> None:
        engine = MemoryObjectEngine([DEV], SECRET)
        app = build_app(ObjectServerConfig(mount_check=False), ClusterConfig("s"), engine=engine)
        done = []

        async def late_update() -> None:
            await asyncio.sleep(0.3)
            done.append(True)

        async with TestClient(TestServer(app)):
            task = asyncio.create_task(late_update())
            app[FINISHING].add(task)
            task.add_done_callback(app[FINISHING].discard)
        assert done == [True]

    asyncio.run(main())
