"""The account server app over MemoryAccountBroker: fast tests of its edge cases.

Each test runs its own event loop (asyncio.run) with aiohttp's TestServer/TestClient.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from accountd.broker import AccountBroker
from accountd.errors import AccountConflict, AccountDeleted, AccountNotFound, DiskFull
from accountd.http_errors import error_status
from accountd.memory import MemoryAccountBroker
from accountd.server import build_app
from service.config import AccountServerConfig, ClusterConfig
from service.errors import BadInput
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
A = "/sda/1/AUTH_a"
NEVER = "0000000000.00000"


def ts(offset_s: float) -> str:
    return Timestamp.from_seconds(T0 + offset_s).normal


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[TestClient, MemoryAccountBroker]]:
    broker = MemoryAccountBroker(SECRET.encode())
    app = build_app(AccountServerConfig(mount_check=False), ClusterConfig(SECRET), broker=broker)
    async with TestClient(TestServer(app)) as client:
        yield client, broker


def run(test: Callable[[TestClient, MemoryAccountBroker], Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving() as served:
            await test(*served)

    asyncio.run(main())


async def call(
    client: TestClient, method: str, path: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with client.request(method, path, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def put_account(client: TestClient, at: float = 0, **headers: str) -> int:
    return (await call(client, "PUT", A, **{"X-Timestamp": ts(at), **headers}))[0]


async def report(
    client: TestClient,
    name: str,
    put_at: float = 1,
    delete: str = NEVER,
    count: int = 0,
    used: int = 0,
    **more: str,
) -> int:
    headers = {
        "X-Put-Timestamp": ts(put_at),
        "X-Delete-Timestamp": delete,
        "X-Object-Count": str(count),
        "X-Bytes-Used": str(used),
        **more,
    }
    return (await call(client, "PUT", f"{A}/{name}", **headers))[0]


async def listing(client: TestClient, query: str = "") -> list[str]:
    status, _headers, body = await call(client, "GET", f"{A}?format=json{query}")
    assert status == 200, body
    return [entry.get("name", entry.get("subdir")) for entry in json.loads(body)]


# -- account PUT, HEAD, POST, DELETE ---------------------------------------------------------


def test_put_then_head_shows_timestamps_totals_and_metadata() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        assert await put_account(client, at=1, **{"x-account-meta-COLOR": "red"}) == 201
        assert await put_account(client, at=2, **{"X-Account-Sysmeta-Q": "1"}) == 202
        await report(client, "c1", count=2, used=10)
        await report(client, "c2", count=1, used=5)
        status, headers, body = await call(client, "HEAD", A)
        assert (status, body) == (204, b"")
        assert (headers["X-Timestamp"], headers["X-PUT-Timestamp"]) == (ts(1), ts(2))
        assert headers["X-Account-Meta-Color"] == "red"
        assert headers["X-Account-Sysmeta-Q"] == "1"
        counts = ("X-Account-Container-Count", "X-Account-Object-Count", "X-Account-Bytes-Used")
        assert tuple(headers[name] for name in counts) == ("2", "3", "15")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        post = {"X-Timestamp": ts(3), "X-Account-Meta-Color": ""}
        assert (await call(client, "POST", A, **post))[0] == 204
        assert "X-Account-Meta-Color" not in (await call(client, "HEAD", A))[1]

    run(test)


def test_a_deleted_account_says_so_until_it_is_reclaimed() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        status, headers, _b = await call(client, "DELETE", A, **{"X-Timestamp": ts(1)})
        assert status == 404 and "X-Account-Status" not in headers  # never created
        await put_account(client, at=1)
        status, _h, body = await call(client, "DELETE", A, **{"X-Timestamp": ts(0.5)})
        assert (status, body) == (
            409,
            str(AccountConflict(f"/AUTH_a was put after {ts(0.5)}")).encode(),
        )
        assert (await call(client, "DELETE", A, **{"X-Timestamp": ts(2)}))[0] == 204
        for method in ("HEAD", "GET", "DELETE", "POST"):
            status, headers, _b = await call(client, method, A, **{"X-Timestamp": ts(3)})
            assert (status, headers.get("X-Account-Status")) == (404, "Deleted"), method
        status, headers, body = await call(client, "PUT", A, **{"X-Timestamp": ts(4)})
        assert (status, body, headers["X-Account-Status"]) == (403, b"Recently deleted", "Deleted")
        assert await report(client, "c") == 404
        override = {"X-Account-Override-Deleted": "yes"}
        assert await report(client, "c", delete=ts(5), **override) == 204  # the reaper's

    run(test)


def test_writes_need_a_valid_x_timestamp() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        for method in ("PUT", "POST", "DELETE"):
            status, _h, body = await call(client, method, A)
            assert (status, body) == (400, b"Missing X-Timestamp header")
            status, _h, body = await call(client, method, A, **{"X-Timestamp": "-1"})
            assert (status, body) == (400, b"Invalid X-Timestamp header")
        status, _h, body = await call(
            client, "PUT", A, **{"X-Timestamp": ts(1), "X-Account-Meta-": "x"}
        )
        assert (status, body) == (400, b"Metadata name cannot be empty")

    run(test)


# -- container rows --------------------------------------------------------------------------


def test_container_rows_merge_by_timestamp() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        assert await report(client, "c") == 404  # no account yet
        await put_account(client)
        assert await report(client, "c", count=1, used=2, **{"X-Stats-Timestamp": ts(5)}) == 201
        # An older report (a replica that missed writes) does not undo the newer totals.
        assert await report(client, "c", count=9, used=9, **{"X-Stats-Timestamp": ts(4)}) == 201
        [row] = broker.list_containers("sda", "AUTH_a")
        assert (row.object_count, row.bytes_used) == (1, 2)
        # No X-Stats-Timestamp: as fresh as the newer of the put and delete timestamps.
        assert await report(client, "c", put_at=6, count=3, used=4) == 201
        [row] = broker.list_containers("sda", "AUTH_a")
        assert (row.stats_timestamp, row.object_count) == (Timestamp.parse(ts(6)), 3)
        assert (
            await report(client, "c", put_at=6, delete=ts(7), **{"X-Stats-Timestamp": ts(7)}) == 204
        )
        assert await listing(client) == []

    run(test)


def test_at_one_stats_timestamp_the_greater_stats_sum_wins() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        await put_account(client)
        fresh = {"X-Stats-Timestamp": ts(5), "X-Stats-Sum": "13"}
        stale = {"X-Stats-Timestamp": ts(5), "X-Stats-Sum": "10"}
        assert await report(client, "c", count=1, used=20, **fresh) == 201
        assert await report(client, "c", count=2, used=30, **stale) == 201
        [row] = broker.list_containers("sda", "AUTH_a")
        assert (row.object_count, row.bytes_used, row.stats_sum) == (1, 20, 13)

    run(test)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Stats-Sum": "-1"},
        {"X-Stats-Sum": "1" * 5000},  # more digits than int() reads: still a 400
        {"X-Stats-Sum": str(1 << 192)},  # more than a container can hold
        {"X-Put-Timestamp": None},
        {"X-Delete-Timestamp": None},
        {"X-Object-Count": None},
        {"X-Bytes-Used": "-3"},
        {"X-Put-Timestamp": "yesterday"},
        {"X-Stats-Timestamp": "x"},
    ],
)
def test_bad_container_rows_are_400(headers: dict[str, str | None]) -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        await put_account(client)
        sent = {
            "X-Put-Timestamp": ts(1),
            "X-Delete-Timestamp": NEVER,
            "X-Object-Count": "0",
            "X-Bytes-Used": "0",
        }
        sent.update(headers)  # type: ignore[arg-type]
        sent = {k: v for k, v in sent.items() if v is not None}
        assert (await call(client, "PUT", f"{A}/c", **sent))[0] == 400
        assert await listing(client) == []

    run(test)


# -- listings --------------------------------------------------------------------------------

NAMES = ["a", "b-1", "b-2", "b-x-3", "é"]


async def fill(client: TestClient) -> None:
    await put_account(client)
    for i, name in enumerate(NAMES):
        assert await report(client, name, count=i, used=10 * i) == 201


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", NAMES),
        ("&prefix=b-", ["b-1", "b-2", "b-x-3"]),
        ("&delimiter=-", ["a", "b-", "é"]),
        ("&prefix=b-&delimiter=-", ["b-1", "b-2", "b-x-"]),
        ("&marker=b-2&end_marker=%C3%A9", ["b-x-3"]),
        ("&limit=2&reverse=yes", ["é", "b-x-3"]),
        ("&marker=%C3%A9", []),
        ("&path=b", NAMES),  # no path parameter for accounts
    ],
)
def test_listing_parameters(query: str, expected: list[str]) -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        await fill(client)
        assert await listing(client, query) == expected

    run(test)


def test_listing_formats() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        await fill(client)
        _s, headers, body = await call(client, "GET", f"{A}?format=json&prefix=b-x")
        assert json.loads(body) == [
            {
                "name": "b-x-3",
                "count": 3,
                "bytes": 30,
                "last_modified": "2023-11-14T22:13:21.000000",
            }
        ]
        assert headers["X-Account-Container-Count"] == "5"
        _s, headers, body = await call(client, "GET", f"{A}?delimiter=-", Accept="text/xml")
        assert headers["Content-Type"] == "text/xml; charset=utf-8"
        assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n')
        assert b'<subdir name="b-" />\n' in body
        assert b"<container><name>a</name><count>0</count><bytes>0</bytes>" in body
        status, _h, body = await call(client, "GET", f"{A}?prefix=b-&delimiter=-")
        assert (status, body) == (200, b"b-1\nb-2\nb-x-\n")
        assert (await call(client, "GET", f"{A}?prefix=z"))[0] == 204
        assert (await call(client, "GET", f"{A}?prefix=z&format=json"))[2] == b"[]"
        assert (await call(client, "GET", A, Accept="application/pdf"))[0] == 406

    run(test)


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        ("limit=10001", 412, b"Maximum limit is 10000"),
        ("end_marker=%80", 400, b'"end_marker" parameter not valid UTF-8'),
        ("delimiter=%FF", 400, b'"delimiter" parameter not valid UTF-8'),
    ],
)
def test_bad_listing_parameters(query: str, status: int, body: bytes) -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        await put_account(client)
        assert (await call(client, "GET", f"{A}?{query}"))[0::2] == (status, body)

    run(test)


# -- paths, methods, devices -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/sda/1", 400),
        ("GET", "/sda/1/AUTH_a/c/o", 400),
        ("GET", "/sda/1/AUTH_%FF", 412),
        ("GET", f"{A}/c", 405),
        ("PATCH", A, 405),
        ("HEAD", "/sdb/1/AUTH_a", 507),
        ("GET", "/sda/1/AUTH_nobody", 404),
    ],
)
def test_paths_methods_and_devices(method: str, path: str, status: int) -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        broker.offline_devices.add("sdb")
        assert (await call(client, method, path))[0] == status

    run(test)


def test_the_trans_id_is_echoed() -> None:
    async def test(client: TestClient, broker: MemoryAccountBroker) -> None:
        assert (await call(client, "GET", A, **{"X-Trans-Id": "tx2"}))[1]["X-Trans-Id"] == "tx2"

    run(test)


def test_error_status_maps_each_broker_error_once() -> None:
    assert error_status(AccountNotFound("a")) == (404, "Not Found", {})
    assert error_status(AccountDeleted("a")) == (
        403,
        "Recently deleted",
        {"X-Account-Status": "Deleted"},
    )
    assert error_status(DiskFull("sda", "full"))[0] == 507  # type: ignore[index]
    assert error_status(BadInput("bad"))[0] == 400  # type: ignore[index]
    assert error_status(KeyError("bug")) is None
    # A stored record that does not decode is no fault of the request: 500, not 400.
    assert error_status(ValueError("unknown container row version b'\\x07'")) is None
    assert error_status(json.JSONDecodeError("Expecting value", "x", 0)) is None


def test_a_corrupt_stored_row_is_a_logged_500_not_a_400(tmp_path, caplog) -> None:
    (tmp_path / "sda").mkdir()
    broker = AccountBroker(str(tmp_path), SECRET.encode())

    async def main() -> None:
        app = build_app(
            AccountServerConfig(mount_check=False), ClusterConfig(SECRET), broker=broker
        )
        async with TestClient(TestServer(app)) as client:
            await put_account(client)
            assert await report(client, "c", count=1, used=2) == 201
            env = broker._envs.get("sda").env
            with env.begin(write=True) as txn:
                db = env.open_db(b"containers", txn=txn)
                for key, _value in list(txn.cursor(db=db)):
                    txn.put(key, b"\x07 a row of an unknown version", db=db)
            assert (await call(client, "GET", A))[0] == 500
            assert await report(client, "c", put_at=2, count=1, used=2) == 500

    try:
        asyncio.run(main())
    finally:
        broker.close()
    failures = [r for r in caplog.records if r.name == "torus.accountd" and r.exc_info]
    assert len(failures) == 2


def test_an_lmdb_listing_is_read_off_the_event_loop(tmp_path, monkeypatch) -> None:
    (tmp_path / "sda").mkdir()
    broker = AccountBroker(str(tmp_path), SECRET.encode())
    threads = []
    real = broker.list_containers

    def list_containers(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(broker, "list_containers", list_containers)

    async def main() -> None:
        app = build_app(
            AccountServerConfig(mount_check=False), ClusterConfig(SECRET), broker=broker
        )
        async with TestClient(TestServer(app)) as client:
            await put_account(client)
            assert await report(client, "c", count=1, used=2) == 201
            assert await listing(client) == ["c"]

    try:
        asyncio.run(main())
    finally:
        broker.close()
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
