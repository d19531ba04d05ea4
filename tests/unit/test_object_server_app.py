"""The object server app over MemoryObjectEngine: fast tests of its edge cases.

Each test runs its own event loop (asyncio.run) with aiohttp's TestServer/TestClient; a few
speak raw HTTP over a socket where a client library would hide what is on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from objectd import http_write
from objectd.errors import (
    DeviceUnavailable,
    DiskFull,
    EtagMismatch,
    ObjectConflict,
    ObjectNotFound,
    Quarantined,
    SizeMismatch,
)
from objectd.http_errors import ClientDisconnected, ClientTimeout, error_status
from objectd.memory import MemoryObjectEngine
from objectd.server import build_app
from service.config import ClusterConfig, ObjectServerConfig
from service.errors import BadRequest
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
BLOCK = 16  # bytes per checksum block: a short body spans many


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def ts(offset_s: float) -> str:
    return Timestamp.from_seconds(T0 + offset_s).normal


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[TestClient, MemoryObjectEngine, Clock]]:
    clock = Clock()
    engine = MemoryObjectEngine(
        ["sda"], SECRET.encode(), inline_max_bytes=64, block_size_bytes=BLOCK, clock=clock
    )
    config = ObjectServerConfig(mount_check=False, **options)
    app = build_app(config, ClusterConfig(SECRET), engine=engine, rng=random.Random(0))
    async with TestClient(TestServer(app)) as client:
        yield client, engine, clock


def run(test: Callable[..., Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with serving(**options) as served:
            await test(*served)

    asyncio.run(main())


async def put(client: TestClient, path: str, body: bytes, at: float = 0, **headers: str):
    sent = {"X-Timestamp": ts(at), "Content-Type": "application/octet-stream", **headers}
    async with client.put(path, data=body, headers=sent) as response:
        await response.read()
        return response


async def raw_exchange(client: TestClient, request: bytes, *, then: bytes = b"") -> bytes:
    """Send ``request``; read the first answer's head; send ``then``; read one more answer.

    Answers are read by their Content-Length, not to EOF: after an answer that left the
    request's body unread, aiohttp lingers reading it before it closes the connection.
    """
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(_read_answer(reader), 5)
        if then:
            writer.write(then)
            await writer.drain()
            answer += await asyncio.wait_for(_read_answer(reader), 5)
        return answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


# -- GET: verified bytes only ----------------------------------------------------------------


def test_a_body_corrupt_in_its_first_block_is_a_clean_404() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        await put(client, "/sda/1/a/c/o", bytes(100))
        engine.corrupt_body_for_test(engine.get("sda", 1, "a", "c", "o"), offset=3)
        async with client.get("/sda/1/a/c/o") as response:
            assert response.status == 404
        assert engine.quarantined_count("sda") == 1

    run(test)


def test_corruption_found_mid_body_aborts_the_connection() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        body = random.Random(1).randbytes(100)
        await put(client, "/sda/1/a/c/o", body)
        engine.corrupt_body_for_test(engine.get("sda", 1, "a", "c", "o"), offset=70)
        async with client.get("/sda/1/a/c/o") as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == "100"
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        async with client.get("/sda/1/a/c/o") as response:
            assert response.status == 404  # quarantined: the replicator restores a good copy

    run(test)


def test_corruption_in_a_later_range_aborts_a_multirange_answer() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        await put(client, "/sda/1/a/c/o", bytes(100))
        engine.corrupt_body_for_test(engine.get("sda", 1, "a", "c", "o"), offset=90)
        headers = {"Range": "bytes=0-3,88-95"}
        async with client.get("/sda/1/a/c/o", headers=headers) as response:
            assert response.status == 206
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()

    run(test)


def test_corruption_in_the_first_range_is_a_clean_404() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        await put(client, "/sda/1/a/c/o", bytes(100))
        engine.corrupt_body_for_test(engine.get("sda", 1, "a", "c", "o"), offset=2)
        async with client.get("/sda/1/a/c/o", headers={"Range": "bytes=0-3,50-60"}) as response:
            assert response.status == 404

    run(test)


def test_empty_object_and_content_type_kept_exactly() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        ctype = "text/plain;charset=utf-8;swift_bytes=12"
        await put(client, "/sda/1/a/c/empty", b"", **{"Content-Type": ctype})
        async with client.get("/sda/1/a/c/empty") as response:
            assert (response.status, await response.read()) == (200, b"")
            assert response.headers["Content-Type"] == ctype
            assert response.headers["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'

    run(test)


# -- PUT: the body's arrival -----------------------------------------------------------------


def test_expect_100_continue_comes_only_after_the_checks() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        await put(client, "/sda/1/a/c/o", b"stored", at=10)
        head = (
            "PUT /sda/1/a/c/o HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            "Content-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n"
            "X-Timestamp: {}\r\n\r\n"
        )
        stale = await raw_exchange(client, head.format(ts(5)).encode())
        assert stale.startswith(b"HTTP/1.1 409 ")  # no 100 Continue: the body is not wanted
        fresh = await raw_exchange(client, head.format(ts(20)).encode(), then=b"body")
        assert fresh.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 ")

    run(test)


def test_a_client_that_goes_away_mid_body_stores_nothing() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        _reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            b"PUT /sda/1/a/c/o HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 1000\r\nX-Timestamp: " + ts(1).encode() + b"\r\n\r\n" + bytes(10)
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        with pytest.raises(ObjectNotFound):
            engine.get("sda", 1, "a", "c", "o")

    run(test)


def test_a_stalled_body_is_408() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        request = (
            b"PUT /sda/1/a/c/o HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 1000\r\nX-Timestamp: " + ts(1).encode() + b"\r\n\r\n" + bytes(10)
        )
        answer = await raw_exchange(client, request)
        assert answer.startswith(b"HTTP/1.1 408 ")
        with pytest.raises(ObjectNotFound):
            engine.get("sda", 1, "a", "c", "o")

    run(test, client_timeout_s=0.2)


def test_a_chunked_body_over_the_size_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_write, "MAX_FILE_SIZE", 50)

    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield bytes(10)

        headers = {"X-Timestamp": ts(1), "Content-Type": "text/plain"}
        async with client.put("/sda/1/a/c/o", data=body(), headers=headers) as response:
            assert response.status == 413

    run(test)


def test_metadata_that_is_not_utf8_is_400() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        request = (
            b"PUT /sda/1/a/c/o HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Connection: close\r\nContent-Length: 0\r\nX-Object-Meta-Bad: \xff\xfe\r\n"
            b"X-Timestamp: " + ts(1).encode() + b"\r\n\r\n"
        )
        answer = await raw_exchange(client, request)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"Metadata must be valid UTF-8" in answer

    run(test)


def test_replication_may_push_an_x_delete_at_already_past() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        past = str(int(T0))
        response = await put(client, "/sda/1/a/c/o", b"x", at=10, **{"X-Delete-At": past})
        assert response.status == 400
        replicated = {"X-Delete-At": past, "X-Backend-Replication": "True"}
        assert (await put(client, "/sda/1/a/c/o", b"x", at=10, **replicated)).status == 201
        async with client.get("/sda/1/a/c/o") as response:
            assert response.status == 404  # stored, and already expired

    run(test)


# -- POST and DELETE -------------------------------------------------------------------------


def test_post_sets_and_removes_x_delete_at() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        await put(client, "/sda/1/a/c/o", b"x", at=1)
        at = str(int(T0) + 100)
        async with client.post(
            "/sda/1/a/c/o", headers={"X-Timestamp": ts(2), "X-Delete-At": at}
        ) as response:
            assert response.status == 202
        async with client.head("/sda/1/a/c/o") as response:
            assert response.headers["X-Delete-At"] == at
        async with client.post("/sda/1/a/c/o", headers={"X-Timestamp": ts(3)}) as response:
            assert response.status == 202
        async with client.head("/sda/1/a/c/o") as response:
            assert "X-Delete-At" not in response.headers

    run(test)


@pytest.mark.parametrize(
    ("stored_delete_at", "if_delete_at", "status", "tombstone"),
    [
        (T0 + 100, T0 + 100, 204, True),
        (T0 + 100, T0 + 200, 412, False),
        (None, T0 + 100, 412, False),
    ],
)
def test_x_if_delete_at(
    stored_delete_at: float | None, if_delete_at: float, status: int, tombstone: bool
) -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        extra = {} if stored_delete_at is None else {"X-Delete-At": str(int(stored_delete_at))}
        await put(client, "/sda/1/a/c/o", b"x", at=1, **extra)
        clock.now = T0 + 150  # the expirer runs after X-Delete-At
        headers = {"X-Timestamp": ts(150), "X-If-Delete-At": str(int(if_delete_at))}
        async with client.delete("/sda/1/a/c/o", headers=headers) as response:
            assert response.status == status
        assert newest(engine).deleted == tombstone

    run(test)


def newest(engine: MemoryObjectEngine) -> Any:
    """The newest version of /a/c/o, live or not."""
    try:
        return engine.get("sda", 1, "a", "c", "o")
    except ObjectNotFound as exc:
        return exc.metadata


def test_x_if_delete_at_on_nothing_is_404_without_a_tombstone() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        headers = {"X-Timestamp": ts(1), "X-If-Delete-At": str(int(T0))}
        async with client.delete("/sda/1/a/c/o", headers=headers) as response:
            assert response.status == 404
        with pytest.raises(ObjectNotFound) as found:
            engine.get("sda", 1, "a", "c", "o")
        assert found.value.timestamp is None
        headers["X-If-Delete-At"] = "later"
        async with client.delete("/sda/1/a/c/o", headers=headers) as response:
            assert response.status == 400

    run(test)


def test_a_delete_of_nothing_still_writes_a_tombstone() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        async with client.delete("/sda/1/a/c/o", headers={"X-Timestamp": ts(5)}) as response:
            assert response.status == 404
            assert response.headers["X-Backend-Timestamp"] == ts(5)
        assert (await put(client, "/sda/1/a/c/o", b"late", at=4)).status == 409
        async with client.head("/sda/1/a/c/o") as response:
            assert response.status == 404
            assert response.headers["X-Backend-Timestamp"] == ts(5)

    run(test)


# -- container updates -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fake_containers(
    statuses: dict[str, int], delay_s: float = 0
) -> AsyncIterator[tuple[int, list[tuple[str, str]]]]:
    """A container server answering each device with its status; records (method, path)."""
    seen: list[tuple[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        await asyncio.sleep(delay_s)
        return web.Response(status=statuses[request.match_info["device"]])

    app = web.Application()
    app.router.add_route("*", "/{device}/{tail:.*}", handle)
    async with TestServer(app) as server:
        yield server.port, seen


def update_headers(port: int, devices: str) -> dict[str, str]:
    hosts = ",".join(f"127.0.0.1:{port}" for _ in devices.split(","))
    return {"X-Container-Host": hosts, "X-Container-Device": devices, "X-Container-Partition": "5"}


def test_only_the_failed_container_replicas_go_in_the_async_pending() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        async with fake_containers({"ok": 201, "bad": 503}) as (port, seen):
            headers = update_headers(port, "ok,bad")
            assert (await put(client, "/sda/1/a/c/o", b"x", at=1, **headers)).status == 201
            assert sorted(seen) == [("PUT", "/bad/5/a/c/o"), ("PUT", "/ok/5/a/c/o")]
        [(_key, pending)] = engine.list_async_pendings("sda")
        assert pending is not None
        assert pending.targets == (("127.0.0.1", port, "bad"),)
        assert (pending.op, pending.partition, pending.headers["X-Size"]) == ("PUT", 5, "1")

    run(test)


def test_a_slow_container_server_costs_at_most_the_update_timeout() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        async with fake_containers({"slow": 201}, delay_s=5) as (port, _seen):
            started = asyncio.get_running_loop().time()
            headers = update_headers(port, "slow")
            async with client.delete("/sda/1/a/c/o", headers={"X-Timestamp": ts(1), **headers}):
                pass
            assert asyncio.get_running_loop().time() - started < 3
        [(_key, pending)] = engine.list_async_pendings("sda")
        assert pending is not None and pending.op == "DELETE"
        assert dict(pending.headers)["X-Timestamp"] == ts(1)

    run(test, container_update_timeout_s=0.3)


def test_a_post_sends_the_row_again_with_its_content_type() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        async with fake_containers({"sdc": 201}) as (port, seen):
            await put(client, "/sda/1/a/c/o", b"x", at=1)
            headers = {"X-Timestamp": ts(2), "Content-Type": "image/gif"}
            headers.update(update_headers(port, "sdc"))
            async with client.post("/sda/1/a/c/o", headers=headers) as response:
                assert response.status == 202
            assert seen == [("PUT", "/sdc/5/a/c/o")]
        assert engine.list_async_pendings("sda") == []

    run(test)


# -- the one place errors become statuses ----------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (BadRequest("bad"), 400),
        (ObjectNotFound(), 404),
        (Quarantined("rot"), 404),
        (ObjectConflict("old", timestamp=Timestamp.from_seconds(T0)), 409),
        (EtagMismatch("a", "b"), 422),
        (SizeMismatch(10, 5), 499),
        (SizeMismatch(10, 15), 400),
        (DeviceUnavailable("sda", "gone"), 507),
        (DiskFull("sda", "full"), 507),
        (ClientDisconnected(), 499),
        (ClientTimeout(), 408),
    ],
)
def test_error_statuses(exc: Exception, status: int) -> None:
    found = error_status(exc)
    assert found is not None and found[0] == status


def test_an_unexpected_error_is_500_with_the_trans_id() -> None:
    class Broken(MemoryObjectEngine):
        def get(self, *args: Any) -> Any:
            raise RuntimeError("a bug")

    async def main() -> None:
        engine = Broken(["sda"], SECRET.encode())
        app = build_app(ObjectServerConfig(mount_check=False), ClusterConfig(SECRET), engine=engine)
        async with (
            TestClient(TestServer(app)) as client,
            client.get("/sda/1/a/c/o", headers={"X-Trans-Id": "tx-bug"}) as response,
        ):
            assert response.status == 500
            assert response.headers["X-Trans-Id"] == "tx-bug"
            assert await response.text() == "Internal Server Error"

    asyncio.run(main())


def test_a_post_cannot_be_overridden_into_a_delete() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine, clock: Clock) -> None:
        await put(client, "/sda/1/a/c/o", b"x", at=1)
        headers = {"X-Timestamp": ts(2), "X-HTTP-Method-Override": "DELETE"}
        async with client.post("/sda/1/a/c/o", headers=headers) as response:
            assert response.status == 202
        assert engine.get("sda", 1, "a", "c", "o").size_bytes == 1

    run(test)
