"""The container server app over MemoryContainerBroker: fast tests of its edge cases.

Each test runs its own event loop (asyncio.run) with aiohttp's TestServer/TestClient.  Account
updates go to the real account app over MemoryAccountBroker, or to a fake answering fixed
statuses, or to a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from server_process import free_port

from accountd.memory import MemoryAccountBroker
from accountd.server import build_app as build_account_app
from containerd_ import http_handlers
from containerd_.broker import ContainerBroker
from containerd_.errors import ContainerNotEmpty, ContainerNotFound, DeviceUnavailable
from containerd_.http_errors import error_status
from containerd_.http_headers import split_swift_bytes
from containerd_.memory import MemoryContainerBroker
from containerd_.server import build_app
from service.config import AccountServerConfig, ClusterConfig, ContainerServerConfig
from service.errors import BadInput, PreconditionFailed
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
C = "/sda/1/AUTH_a/c"


def ts(offset_s: float) -> str:
    return Timestamp.from_seconds(T0 + offset_s).normal


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[TestClient, MemoryContainerBroker]]:
    broker = MemoryContainerBroker(SECRET.encode())
    config = ContainerServerConfig(mount_check=False, **options)
    app = build_app(config, ClusterConfig(SECRET), broker=broker, rng=random.Random(0))
    async with TestClient(TestServer(app)) as client:
        yield client, broker


Test = Callable[[TestClient, MemoryContainerBroker], Awaitable[None]]


def run(test: Test, **options: Any) -> None:
    async def main() -> None:
        async with serving(**options) as served:
            await test(*served)

    asyncio.run(main())


async def call(
    client: TestClient, method: str, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with client.request(method, path, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def put_container(client: TestClient, path: str = C, at: float = 0, **headers: str) -> int:
    return (await call(client, "PUT", path, **{"X-Timestamp": ts(at), **headers}))[0]


async def put_row(client: TestClient, name: str, at: float = 1, size: int = 3, **more: str) -> int:
    headers = {
        "X-Timestamp": ts(at),
        "X-Size": str(size),
        "X-Content-Type": "text/plain",
        "X-Etag": f"etag-{name}",
        **more,
    }
    return (await call(client, "PUT", f"{C}/{name}", **headers))[0]


async def listing(client: TestClient, query: str = "", **headers: str) -> Any:
    status, _headers, body = await call(client, "GET", f"{C}?format=json{query}", **headers)
    assert status == 200, body
    return [entry.get("name", entry.get("subdir")) for entry in json.loads(body)]


# -- container PUT, HEAD, POST, DELETE -------------------------------------------------------


def test_put_then_head_shows_timestamps_totals_and_metadata() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        meta = {"x-container-meta-COLOR": "blue", "X-Container-Read": ".r:*", "X-Foo": "no"}
        assert await put_container(client, at=1, **meta) == 201
        assert await put_container(client, at=2, **{"X-Versions-Location": "v"}) == 202
        status, headers, body = await call(client, "HEAD", C)
        assert (status, body) == (204, b"")
        assert headers["X-Container-Meta-Color"] == "blue"  # header case as Swift stores it
        assert headers["X-Container-Read"] == ".r:*"
        assert headers["X-Versions-Location"] == "v"
        assert "X-Foo" not in headers
        assert headers["X-Timestamp"] == ts(1) == headers["X-Backend-Timestamp"]
        assert headers["X-PUT-Timestamp"] == ts(2) == headers["X-Backend-PUT-Timestamp"]
        assert headers["X-Backend-DELETE-Timestamp"] == "0000000000.00000"
        assert (headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]) == (
            "0",
            "0",
        )
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:22 GMT"

    run(test)


def test_writes_need_a_valid_x_timestamp() -> None:
    async def check(client: TestClient, broker: MemoryContainerBroker) -> None:
        for method in ("PUT", "POST", "DELETE"):
            status, _h, body = await call(client, method, C)
            assert (status, body) == (400, b"Missing X-Timestamp header")
            status, _h, body = await call(client, method, C, **{"X-Timestamp": "soon"})
            assert (status, body) == (400, b"Invalid X-Timestamp header")
        status, _h, _b = await call(client, "DELETE", f"{C}/o")
        assert status == 400

    run(check)


def test_metadata_limits_and_deletion() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        long_value = {"X-Container-Meta-A": "v" * 257}
        status, _h, body = await call(client, "PUT", C, **{"X-Timestamp": ts(1), **long_value})
        assert (status, body) == (400, b"Metadata value longer than 256: x-container-meta-A")
        with pytest.raises(ContainerNotFound):
            broker.info("sda", "AUTH_a", "c")  # checked before anything was written
        await put_container(client, at=1, **{"X-Container-Meta-A": "1", "X-Container-Meta-B": "2"})
        post = {"X-Timestamp": ts(2), "X-Container-Meta-A": "", "X-Container-Sysmeta-S": "s"}
        assert (await call(client, "POST", C, **post))[0] == 204
        _s, headers, _b = await call(client, "HEAD", C)
        assert "X-Container-Meta-A" not in headers
        assert (headers["X-Container-Meta-B"], headers["X-Container-Sysmeta-S"]) == ("2", "s")
        assert (await call(client, "POST", "/sda/1/AUTH_a/nope", **post))[0] == 404

    run(test)


def test_delete_answers_204_then_404_and_409_while_it_holds_objects() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        assert (await call(client, "DELETE", C, **{"X-Timestamp": ts(1)}))[0] == 404
        await put_container(client, at=1)
        await put_row(client, "o", at=2)
        status, _h, body = await call(client, "DELETE", C, **{"X-Timestamp": ts(3)})
        assert (status, body) == (409, str(ContainerNotEmpty("AUTH_a", "c", 1)).encode())
        await call(client, "DELETE", f"{C}/o", **{"X-Timestamp": ts(4)})
        assert (await call(client, "DELETE", C, **{"X-Timestamp": ts(5)}))[0] == 204
        status, headers, _b = await call(client, "HEAD", C)
        assert status == 404
        assert headers["X-Backend-DELETE-Timestamp"] == ts(5)  # the proxy compares replicas
        assert "X-Container-Object-Count" not in headers
        assert (await call(client, "GET", C))[0] == 404
        assert (await call(client, "DELETE", C, **{"X-Timestamp": ts(6)}))[0] == 404
        assert await put_container(client, at=5.5) == 409  # older than the DELETE
        assert await put_container(client, at=7) == 201  # re-created

    run(test)


# -- object rows -----------------------------------------------------------------------------


def test_object_rows_change_listing_and_totals() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        assert await put_row(client, "o") == 404  # never created: the object server keeps it
        await put_container(client)
        assert await put_row(client, "b", size=10) == 201
        assert await put_row(client, "a/x", size=5) == 201
        assert await put_row(client, "b", at=0.5, size=99) == 201  # older: loses, still 201
        _s, headers, _b = await call(client, "HEAD", C)
        assert (headers["X-Container-Object-Count"], headers["X-Container-Bytes-Used"]) == (
            "2",
            "15",
        )
        delete = await call(client, "DELETE", f"{C}/b", **{"X-Timestamp": ts(2)})
        assert delete[0] == 204
        assert await listing(client) == ["a/x"]
        assert broker.info("sda", "AUTH_a", "c").stats_timestamp == Timestamp.parse(ts(2))

    run(test)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Size": "-1"},
        {"X-Size": "ten"},
        {"X-Size": None},
        {"X-Etag": None},
        {"X-Content-Type": None},
        {"X-Meta-Timestamp": "later"},
        {"X-Content-Type-Timestamp": "x"},
    ],
)
def test_bad_object_rows_are_400(headers: dict[str, str | None]) -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await put_container(client)
        sent = {"X-Timestamp": ts(1), "X-Size": "1", "X-Content-Type": "t/p", "X-Etag": "e"}
        sent.update(headers)  # type: ignore[arg-type]
        sent = {k: v for k, v in sent.items() if v is not None}
        assert (await call(client, "PUT", f"{C}/o", **sent))[0] == 400
        assert await listing(client) == []

    run(test)


def test_content_type_and_meta_timestamps_show_in_the_listing() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await put_container(client)
        more = {"X-Content-Type-Timestamp": ts(5), "X-Meta-Timestamp": ts(6)}
        await put_row(client, "o", at=1, **more)
        await put_row(client, "m", at=1, **{"X-Content-Type": "a/b;swift_bytes=42; x=1"})
        _s, _h, body = await call(client, "GET", f"{C}?format=json")
        manifest, plain = json.loads(body)
        assert manifest == {
            "bytes": 42,
            "hash": "etag-m",
            "name": "m",
            "content_type": "a/b;x=1",
            "last_modified": "2023-11-14T22:13:21.000000",
        }
        assert plain["last_modified"] == "2023-11-14T22:13:26.000000"

    run(test)


def test_split_swift_bytes() -> None:
    assert split_swift_bytes("text/plain") == ("text/plain", None)
    assert split_swift_bytes("text/plain; charset=utf-8") == ("text/plain;charset=utf-8", None)
    assert split_swift_bytes("a/b;swift_bytes=7") == ("a/b", 7)
    assert split_swift_bytes("a/b;swift_bytes=x") == ("a/b", None)


# -- listings --------------------------------------------------------------------------------

NAMES = ["a", "b/1", "b/2", "b/c/3", "c", "é", "\U0001f600"]


async def fill(client: TestClient) -> None:
    await put_container(client)
    for name in NAMES:
        assert await put_row(client, name) == 201


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", NAMES),
        ("&prefix=b/", ["b/1", "b/2", "b/c/3"]),
        ("&delimiter=/", ["a", "b/", "c", "é", "\U0001f600"]),
        ("&prefix=b/&delimiter=/", ["b/1", "b/2", "b/c/"]),
        ("&marker=b/2", ["b/c/3", "c", "é", "\U0001f600"]),
        ("&marker=b/2&end_marker=%C3%A9", ["b/c/3", "c"]),
        ("&limit=2", ["a", "b/1"]),
        ("&limit=abc", NAMES),  # Swift ignores a limit it cannot read
        ("&reverse=on&limit=2", ["\U0001f600", "é"]),
        ("&reverse=true&marker=c&end_marker=a", ["b/c/3", "b/2", "b/1"]),
        ("&path=b", ["b/1", "b/2"]),
        ("&path=", ["a", "c", "é", "\U0001f600"]),
        ("&marker=%F0%9F%98%80", []),
        ("&prefix=b/&delimiter=/&marker=b/c/", []),
        ("&bogus=%FF", NAMES),  # only the parameters a listing reads are checked
    ],
)
def test_listing_parameters(query: str, expected: list[str]) -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await fill(client)
        assert await listing(client, query) == expected

    run(test)


def test_listing_formats_and_negotiation() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await fill(client)
        status, headers, body = await call(client, "GET", f"{C}?prefix=b/&delimiter=/")
        assert (status, body) == (200, b"b/1\nb/2\nb/c/\n")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers["X-Container-Object-Count"] == "7"
        status, headers, body = await call(client, "GET", f"{C}?prefix=b/c&format=XML")
        assert headers["Content-Type"] == "application/xml; charset=utf-8"
        assert body == (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<container name="c"><object>'
            b"<name>b/c/3</name><hash>etag-b/c/3</hash><bytes>3</bytes>"
            b"<content_type>text/plain</content_type>"
            b"<last_modified>2023-11-14T22:13:21.000000</last_modified></object></container>"
        )
        for accept, expected in [
            ("application/json", "application/json"),
            ("text/xml;q=0.9, application/json;q=0.5", "text/xml"),
            ("application/*", "application/json"),
            ("*/*", "text/plain"),
        ]:
            _s, headers, _b = await call(client, "GET", C, Accept=accept)
            assert headers["Content-Type"] == f"{expected}; charset=utf-8"
        _s, headers, _b = await call(client, "GET", f"{C}?format=json", Accept="image/png")
        assert headers["Content-Type"] == "application/json; charset=utf-8"  # format wins
        _s, headers, _b = await call(client, "GET", f"{C}?format=yaml")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert (await call(client, "GET", C, Accept="image/png"))[0] == 406
        assert (await call(client, "HEAD", C, Accept="image/png"))[0] == 406
        status, _h, body = await call(client, "GET", C, Accept="nonsense")
        assert (status, body) == (400, b"Invalid Accept header")

    run(test)


def test_empty_listings_plain_is_204_json_and_xml_are_200() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await put_container(client)
        assert (await call(client, "GET", C))[0] == 204
        assert (await call(client, "GET", f"{C}?limit=0&format=json"))[2] == b"[]"
        status, _h, body = await call(client, "GET", f"{C}?format=xml")
        assert status == 200 and body.endswith(b'<container name="c" />')

    run(test)


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        ("limit=10001", 412, b"Maximum limit is 10000"),
        ("limit=10000", 204, b""),
        ("marker=%FF", 400, b'"marker" parameter not valid UTF-8'),
        ("prefix=%C3", 400, b'"prefix" parameter not valid UTF-8'),
        ("path=%FE", 400, b'"path" parameter not valid UTF-8'),
        ("format=%FF", 400, b'"format" parameter not valid UTF-8'),
    ],
)
def test_bad_listing_parameters(query: str, status: int, body: bytes) -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await put_container(client)
        assert (await call(client, "GET", f"{C}?{query}"))[0::2] == (status, body)

    run(test)


# -- paths, methods, devices -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/sda/1/AUTH_a", 400),
        ("GET", "/sda/x/AUTH_a/c", 400),
        ("GET", "/sda/1/AUTH_a/c%FF", 412),
        ("PATCH", C, 405),
        ("GET", f"{C}/o", 405),
        ("GET", "/sdb/1/AUTH_a/c", 507),
    ],
)
def test_paths_methods_and_devices(method: str, path: str, status: int) -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        broker.offline_devices.add("sdb")
        assert (await call(client, method, path))[0] == status

    run(test)


def test_a_full_device_is_507_for_writes_and_still_reads() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await put_container(client)
        broker.full_devices.add("sda")
        assert await put_row(client, "o") == 507
        assert (await call(client, "GET", C))[0] == 204

    run(test)


def test_the_trans_id_is_echoed_even_on_errors() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        _s, headers, _b = await call(client, "HEAD", C, **{"X-Trans-Id": "tx1"})
        assert headers["X-Trans-Id"] == "tx1"

    run(test)


def test_error_status_maps_each_broker_error_once() -> None:
    assert error_status(ContainerNotFound("a", "c"))[0] == 404  # type: ignore[index]
    assert error_status(ContainerNotEmpty("a", "c", 2))[0] == 409  # type: ignore[index]
    assert error_status(DeviceUnavailable("sda", "gone"))[0] == 507  # type: ignore[index]
    assert error_status(BadInput("bad name"))[0] == 400  # type: ignore[index]
    assert error_status(PreconditionFailed("x")) is None  # the middleware's own
    assert error_status(RuntimeError("bug")) is None
    # A stored record that does not decode is no fault of the request: 500, not 400.
    assert error_status(ValueError("unknown object row version b'\\x07'")) is None
    assert error_status(json.JSONDecodeError("Expecting value", "x", 0)) is None
    assert error_status(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid")) is None


def test_a_corrupt_stored_record_is_a_logged_500_not_a_400(tmp_path, caplog) -> None:
    (tmp_path / "sda").mkdir()
    broker = ContainerBroker(str(tmp_path), SECRET.encode())

    def corrupt(table: bytes, value: bytes) -> None:
        env = broker._envs.get("sda").env
        with env.begin(write=True) as txn:
            db = env.open_db(table, txn=txn)
            for key, _value in list(txn.cursor(db=db)):
                txn.put(key, value, db=db)

    async def main() -> None:
        config = ContainerServerConfig(mount_check=False)
        app = build_app(config, ClusterConfig(SECRET), broker=broker, rng=random.Random(0))
        async with TestClient(TestServer(app)) as client:
            await put_container(client)
            await put_row(client, "o")
            corrupt(b"objects", b"\x07 a row of an unknown version")
            assert (await call(client, "GET", C))[0] == 500
            assert await put_row(client, "o", at=2) == 500  # the merge decodes it too
            corrupt(b"containers", b"\x01{not json")
            assert (await call(client, "HEAD", C))[0] == 500
            corrupt(b"containers", b"\x01\xff")  # not UTF-8
            assert (await call(client, "HEAD", C))[0] == 500

    try:
        asyncio.run(main())
    finally:
        broker.close()
    failures = [r for r in caplog.records if r.name == "torus.containerd" and r.exc_info]
    assert len(failures) == 4


def test_an_lmdb_listing_is_read_and_rendered_off_the_event_loop(tmp_path, monkeypatch) -> None:
    (tmp_path / "sda").mkdir()
    broker = ContainerBroker(str(tmp_path), SECRET.encode())
    threads: dict[str, threading.Thread] = {}

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call_it(*args: Any, **kwargs: Any) -> Any:
            threads[name] = threading.current_thread()
            return real(*args, **kwargs)

        return call_it

    monkeypatch.setattr(broker, "list_objects", spy("read", broker.list_objects))
    monkeypatch.setattr(
        http_handlers, "render_listing", spy("render", http_handlers.render_listing)
    )

    async def main() -> None:
        config = ContainerServerConfig(mount_check=False)
        app = build_app(config, ClusterConfig(SECRET), broker=broker, rng=random.Random(0))
        async with TestClient(TestServer(app)) as client:
            await put_container(client)
            await put_row(client, "o")
            assert await listing(client) == ["o"]

    try:
        asyncio.run(main())
    finally:
        broker.close()
    assert set(threads) == {"read", "render"}
    assert threading.main_thread() not in threads.values()


# -- account updates -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def account_server() -> AsyncIterator[tuple[int, MemoryAccountBroker]]:
    broker = MemoryAccountBroker(SECRET.encode())
    config = AccountServerConfig(mount_check=False)
    app = build_account_app(config, ClusterConfig(SECRET), broker=broker)
    async with TestServer(app) as server:
        yield server.port, broker


@contextlib.asynccontextmanager
async def fake_accounts(statuses: dict[str, int]) -> AsyncIterator[tuple[int, list[Any]]]:
    """An account server answering each device with its status; records what it was sent."""
    seen: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, dict(request.headers)))
        return web.Response(status=statuses[request.match_info["device"]])

    app = web.Application()
    app.router.add_route("*", "/{device}/{tail:.*}", handle)
    async with TestServer(app) as server:
        yield server.port, seen


def account_headers(*nodes: tuple[int, str], partition: str = "9") -> dict[str, str]:
    return {
        "X-Account-Host": ",".join(f"127.0.0.1:{port}" for port, _ in nodes),
        "X-Account-Device": ",".join(device for _, device in nodes),
        "X-Account-Partition": partition,
    }


def test_the_account_lists_the_container_with_its_totals() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        async with account_server() as (port, accounts):
            await accounts.create("sdx", "AUTH_a", Timestamp.parse(ts(0)))
            update = account_headers((port, "sdx"))
            assert await put_container(client, at=1, **update) == 201
            await put_row(client, "o", at=2, size=7)
            assert await put_container(client, at=3, **update) == 202
            [row] = accounts.list_containers("sdx", "AUTH_a")
            assert (row.name, row.object_count, row.bytes_used) == ("c", 1, 7)
            assert (row.put_timestamp, row.stats_timestamp) == tuple(
                Timestamp.parse(ts(t)) for t in (3, 2)
            )
            await call(client, "DELETE", f"{C}/o", **{"X-Timestamp": ts(4)})
            delete = {"X-Timestamp": ts(5), **update}
            assert (await call(client, "DELETE", C, **delete))[0] == 204
            assert accounts.list_containers("sdx", "AUTH_a") == []
            assert accounts.info("sdx", "AUTH_a").container_count == 0
        assert broker.list_async_pendings("sda") == []

    run(test)


def test_the_account_ends_with_the_converged_totals_of_the_replicas() -> None:
    """The reviewer's scenario, through both servers: replica sda misses the DELETE of x (an
    async_pending), both get the newer y, each reports; then the DELETE reaches sda."""

    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        async with account_server() as (port, accounts):
            await accounts.create("sdx", "AUTH_a", Timestamp.parse(ts(0)))
            update = account_headers((port, "sdx"))
            replicas = ("/sdb/1/AUTH_a/c", C)  # sdb got every update, sda missed one

            async def row(path: str, method: str, name: str, at: float, size: int = 0) -> None:
                headers = {"X-Timestamp": ts(at)}
                if method == "PUT":
                    headers |= {"X-Size": str(size), "X-Content-Type": "t", "X-Etag": "e"}
                assert (await call(client, method, f"{path}/{name}", **headers))[0] in (201, 204)

            async def report_all(at: float) -> None:
                for path in replicas:
                    assert await put_container(client, path, at=at, **update) == 202

            for path in replicas:
                assert await put_container(client, path, at=0) == 201
                await row(path, "PUT", "x", 1, size=10)
            await row(replicas[0], "DELETE", "x", 3)
            for path in replicas:
                await row(path, "PUT", "y", 5, size=20)
            await report_all(6)  # sda's stale totals are reported last
            [entry] = accounts.list_containers("sdx", "AUTH_a")
            assert (entry.object_count, entry.bytes_used) == (1, 20)
            await row(C, "DELETE", "x", 3)  # the async_pending replayed: the replicas agree
            await report_all(7)
            [entry] = accounts.list_containers("sdx", "AUTH_a")
            assert (entry.object_count, entry.bytes_used) == (1, 20)
            assert accounts.info("sdx", "AUTH_a").object_count == 1

    run(test)


def test_only_the_failed_account_replicas_go_in_the_async_pending() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        down = free_port()
        async with fake_accounts({"ok": 201, "bad": 503}) as (port, seen):
            update = account_headers((port, "ok"), (port, "bad"), (down, "off"))
            headers = {**update, "X-Trans-Id": "tx9"}
            assert await put_container(client, at=1, **headers) == 201
        assert sorted(path for _m, path, _h in seen) == ["/bad/9/AUTH_a/c", "/ok/9/AUTH_a/c"]
        sent = seen[0][2]
        assert (sent["X-Put-Timestamp"], sent["X-Delete-Timestamp"]) == (ts(1), "0000000000.00000")
        assert (sent["X-Object-Count"], sent["X-Bytes-Used"], sent["X-Trans-Id"]) == (
            "0",
            "0",
            "tx9",
        )
        [(_key, pending)] = broker.list_async_pendings("sda")
        assert pending is not None
        assert pending.targets == (("127.0.0.1", port, "bad"), ("127.0.0.1", down, "off"))
        assert (pending.op, pending.path, pending.partition) == ("PUT", "/AUTH_a/c", 9)
        assert pending.timestamp == Timestamp.parse(ts(1))
        assert pending.headers["X-Put-Timestamp"] == ts(1)

    run(test)


def test_no_account_anywhere_is_a_404_and_still_kept() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        async with account_server() as (port, _accounts):
            update = account_headers((port, "sdx"))
            assert await put_container(client, at=1, **update) == 404
        assert broker.info("sda", "AUTH_a", "c").put_timestamp == Timestamp.parse(ts(1))
        [(_key, pending)] = broker.list_async_pendings("sda")
        assert pending is not None and pending.targets == (("127.0.0.1", port, "sdx"),)

    run(test)


def test_a_delete_of_a_deleted_container_still_reports_its_newer_delete() -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        await put_container(client, at=1)
        await call(client, "DELETE", C, **{"X-Timestamp": ts(2)})
        async with fake_accounts({"sdx": 204}) as (port, seen):
            delete = {"X-Timestamp": ts(3), **account_headers((port, "sdx"))}
            assert (await call(client, "DELETE", C, **delete))[0] == 404
            assert (await call(client, "DELETE", "/sda/1/AUTH_a/never", **delete))[0] == 404
        [(_m, _p, sent)] = seen
        assert sent["X-Delete-Timestamp"] == ts(3)

    run(test)


@pytest.mark.parametrize(
    "update",
    [
        {"X-Account-Host": "127.0.0.1:1,127.0.0.1:2", "X-Account-Device": "sdx"},
        {"X-Account-Host": "127.0.0.1", "X-Account-Device": "sdx"},
        {"X-Account-Host": "127.0.0.1:1", "X-Account-Device": "../x"},
        {"X-Account-Host": "127.0.0.1:1", "X-Account-Device": "sdx", "X-Account-Partition": "-1"},
    ],
)
def test_malformed_account_headers_are_400_before_any_write(update: dict[str, str]) -> None:
    async def test(client: TestClient, broker: MemoryContainerBroker) -> None:
        headers = {"X-Account-Partition": "1", **update}
        assert await put_container(client, **headers) == 400
        with pytest.raises(ContainerNotFound):
            broker.info("sda", "AUTH_a", "c")

    run(test)
