"""The container and account servers over HTTP, as real processes (`torus serve container`,
`torus serve account`) on loopback ports, talking to each other."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import lmdb
import pytest
from server_process import ServerProcess, free_port

from service import async_pending
from service.timestamp import Timestamp

StartServer = Callable[..., ServerProcess]  # tests/functional/conftest.py's start_server
_last_raw = 0
LONG = "é" * 511 + "xy"  # 1024 bytes of UTF-8: the longest object name Swift allows


def next_ts() -> str:
    """A new X-Timestamp, strictly after every earlier one this test run made."""
    global _last_raw
    raw = max(Timestamp.from_seconds(time.time()).raw, _last_raw + 1)
    _last_raw = raw
    return Timestamp(raw).normal


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> list[dict]:
        assert self.status == 200, (self.status, self.body)
        return json.loads(self.body)


def call(server: ServerProcess, method: str, path: str, query: str = "", **headers: str) -> Reply:
    """``path`` as plain text (quoted here); ``query`` as sent."""
    conn = server.connection()
    try:
        target = quote(path) + (f"?{query}" if query else "")
        conn.request(method, target, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def names(reply: Reply) -> list[str]:
    return [entry.get("name", entry.get("subdir")) for entry in reply.json()]


def account_headers(account_server: ServerProcess | int, device: str = "sda") -> dict[str, str]:
    port = account_server if isinstance(account_server, int) else account_server.port
    return {
        "X-Account-Host": f"127.0.0.1:{port}",
        "X-Account-Device": device,
        "X-Account-Partition": "3",
    }


def put_row(server: ServerProcess, path: str, size: int, etag: str = "e") -> None:
    headers = {"X-Size": str(size), "X-Content-Type": "text/plain", "X-Etag": etag}
    assert call(server, "PUT", path, X_Timestamp=next_ts(), **headers).status == 201


@pytest.fixture
def account_server(start_server: StartServer) -> ServerProcess:
    return start_server("account")


@pytest.fixture
def container_server(start_server: StartServer) -> ServerProcess:
    return start_server("container")


# -- the two servers together ----------------------------------------------------------------


def test_the_account_lists_what_the_container_server_reports(
    account_server: ServerProcess, container_server: ServerProcess
) -> None:
    assert call(account_server, "PUT", "/sda/3/AUTH_t", X_Timestamp=next_ts()).status == 201
    update = account_headers(account_server)
    reply = call(container_server, "PUT", "/sda/1/AUTH_t/photos", X_Timestamp=next_ts(), **update)
    assert reply.status == 201
    [row] = call(account_server, "GET", "/sda/3/AUTH_t", "format=json").json()
    assert (row["name"], row["count"], row["bytes"]) == ("photos", 0, 0)

    put_row(container_server, "/sda/1/AUTH_t/photos/a.jpg", 100)
    put_row(container_server, "/sda/1/AUTH_t/photos/b.jpg", 20)
    head = call(container_server, "HEAD", "/sda/1/AUTH_t/photos")
    assert (head.headers["X-Container-Object-Count"], head.headers["X-Container-Bytes-Used"]) == (
        "2",
        "120",
    )
    # The container server reports on container PUT and DELETE; object rows wait for one.
    reply = call(container_server, "PUT", "/sda/1/AUTH_t/photos", X_Timestamp=next_ts(), **update)
    assert reply.status == 202
    head = call(account_server, "HEAD", "/sda/3/AUTH_t")
    assert head.status == 204
    assert [
        head.headers[f"X-Account-{k}"] for k in ("Container-Count", "Object-Count", "Bytes-Used")
    ] == [
        "1",
        "2",
        "120",
    ]

    for name in ("a.jpg", "b.jpg"):
        path = f"/sda/1/AUTH_t/photos/{name}"
        assert call(container_server, "DELETE", path, X_Timestamp=next_ts()).status == 204
    reply = call(
        container_server, "DELETE", "/sda/1/AUTH_t/photos", X_Timestamp=next_ts(), **update
    )
    assert reply.status == 204
    assert call(account_server, "GET", "/sda/3/AUTH_t").status == 204  # plain, nothing listed
    assert call(account_server, "GET", "/sda/3/AUTH_t", "format=json").json() == []
    assert call(container_server, "HEAD", "/sda/1/AUTH_t/photos").status == 404


def test_an_unreachable_account_server_leaves_an_async_pending(
    container_server: ServerProcess,
) -> None:
    down = free_port()
    put_ts = next_ts()
    update = {**account_headers(down), "X-Trans-Id": "tx-pending"}
    reply = call(container_server, "PUT", "/sda/1/AUTH_t/c", X_Timestamp=put_ts, **update)
    assert reply.status == 201  # the report is kept, so the PUT still succeeds
    put_row(container_server, "/sda/1/AUTH_t/c/o", 5)
    assert container_server.stop() == 0

    env = lmdb.open(str(container_server.devices / "sda" / "containers.lmdb"), max_dbs=8)
    try:
        table = env.open_db(async_pending.TABLE, create=False)
        [(_key, pending)] = async_pending.list_pending(env, table)
    finally:
        env.close()
    assert pending is not None
    assert (pending.op, pending.path, pending.partition) == ("PUT", "/AUTH_t/c", 3)
    assert pending.targets == (("127.0.0.1", down, "sda"),)
    assert pending.timestamp == Timestamp.parse(put_ts)
    assert pending.headers["X-Put-Timestamp"] == put_ts
    assert pending.headers["X-Object-Count"] == "0"
    assert pending.headers["X-Trans-Id"] == "tx-pending"


# -- container listings ------------------------------------------------------------------------

OBJECTS = ["a", "b/1", "b/2", "b/c/3", "é", LONG, "日本/語"]  # in byte order of their UTF-8


@pytest.fixture
def filled(container_server: ServerProcess) -> ServerProcess:
    assert call(container_server, "PUT", "/sda/1/AUTH_t/c", X_Timestamp=next_ts()).status == 201
    for i, name in enumerate(OBJECTS):
        put_row(container_server, f"/sda/1/AUTH_t/c/{name}", i, etag=f"etag{i}")
    return container_server


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", OBJECTS),
        ("prefix=b/", ["b/1", "b/2", "b/c/3"]),
        ("delimiter=/", ["a", "b/", "é", LONG, "日本/"]),
        ("prefix=b/&delimiter=/", ["b/1", "b/2", "b/c/"]),
        ("marker=b/2&end_marker=" + quote("日本"), ["b/c/3", "é", LONG]),
        ("limit=3&reverse=true", ["日本/語", LONG, "é"]),
        ("reverse=1&marker=b/1&end_marker=", ["a"]),
        ("path=b", ["b/1", "b/2"]),
        ("marker=" + quote("日本/語"), []),  # past the end: an empty page
        ("marker=" + quote(LONG), ["日本/語"]),
        ("prefix=" + quote(LONG), [LONG]),
        ("prefix=" + quote("é") + "&limit=2&reverse=on", [LONG, "é"]),
    ],
)
def test_container_listing_parameters(
    filled: ServerProcess, query: str, expected: list[str]
) -> None:
    assert names(call(filled, "GET", "/sda/1/AUTH_t/c", "format=json&" + query)) == expected


def test_container_listing_formats(filled: ServerProcess) -> None:
    reply = call(filled, "GET", "/sda/1/AUTH_t/c", "prefix=b/&delimiter=/&format=json")
    assert reply.json()[0]["name"] == "b/1"
    assert set(reply.json()[0]) == {"name", "hash", "bytes", "content_type", "last_modified"}
    assert reply.json()[2] == {"subdir": "b/c/"}
    plain = call(filled, "GET", "/sda/1/AUTH_t/c", "prefix=" + quote("日本"))
    assert (plain.status, plain.body) == (200, "日本/語\n".encode())
    assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"
    xml = call(filled, "GET", "/sda/1/AUTH_t/c", "prefix=a", Accept="application/xml")
    assert xml.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert xml.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<container name="c">')
    assert b"<name>a</name><hash>etag0</hash><bytes>0</bytes>" in xml.body
    empty = call(filled, "GET", "/sda/1/AUTH_t/c", "prefix=zzz")
    assert (empty.status, empty.body) == (204, b"")
    assert call(filled, "GET", "/sda/1/AUTH_t/c", "prefix=zzz&format=json").body == b"[]"
    [long] = call(filled, "GET", "/sda/1/AUTH_t/c", "format=json&prefix=" + quote(LONG)).json()
    assert (long["name"], long["bytes"], long["hash"]) == (LONG, 5, "etag5")


def test_bad_container_requests(filled: ServerProcess) -> None:
    path = "/sda/1/AUTH_t/c"
    assert call(filled, "DELETE", path, X_Timestamp=next_ts()).status == 409  # not empty
    reply = call(filled, "GET", path, "limit=10001")
    assert (reply.status, reply.body) == (412, b"Maximum limit is 10000")
    reply = call(filled, "GET", path, "prefix=%FF")
    assert (reply.status, reply.body) == (400, b'"prefix" parameter not valid UTF-8')
    assert call(filled, "GET", path, Accept="what ever").status == 400
    assert call(filled, "PUT", f"{path}/o", X_Timestamp=next_ts(), X_Size="1").status == 400
    assert call(filled, "PUT", path).status == 400  # no X-Timestamp
    assert call(filled, "PUT", "/sda/1/AUTH_t/" + "c" * 257, X_Timestamp=next_ts()).status == 400
    assert call(filled, "HEAD", "/sdz/1/AUTH_t/c").status == 507  # no such device
    assert call(filled, "PUT", "/sdz/1/AUTH_t/c", X_Timestamp=next_ts()).status == 507


# -- account listings --------------------------------------------------------------------------


def test_account_listings_and_errors(account_server: ServerProcess) -> None:
    assert call(account_server, "HEAD", "/sda/3/AUTH_u").status == 404
    assert call(account_server, "PUT", "/sda/3/AUTH_u", X_Timestamp=next_ts()).status == 201
    for i, name in enumerate(["x-1", "x-2", "y", "ü"]):
        headers = {
            "X-Put-Timestamp": next_ts(),
            "X-Delete-Timestamp": "0",
            "X-Object-Count": str(i),
            "X-Bytes-Used": str(i * 10),
        }
        assert call(account_server, "PUT", f"/sda/3/AUTH_u/{name}", **headers).status == 201
    reply = call(account_server, "GET", "/sda/3/AUTH_u", "format=json&delimiter=-")
    assert names(reply) == ["x-", "y", "ü"]
    assert reply.json()[1]["count"] == 2 and reply.json()[1]["bytes"] == 20
    reply = call(account_server, "GET", "/sda/3/AUTH_u", "marker=x-1&end_marker=" + quote("ü"))
    assert reply.body == b"x-2\ny\n"
    reply = call(account_server, "GET", "/sda/3/AUTH_u", "format=xml&limit=1&reverse=yes")
    assert "<name>ü</name>".encode() in reply.body
    assert call(account_server, "GET", "/sda/3/AUTH_u", "marker=" + quote("ü")).status == 204
    assert call(account_server, "GET", "/sda/3/AUTH_u", "limit=10001").status == 412
    assert call(account_server, "GET", "/sda/3/AUTH_u", "marker=%C3").status == 400
    assert call(account_server, "GET", "/sdz/3/AUTH_u").status == 507
    assert call(account_server, "DELETE", "/sda/3/AUTH_u", X_Timestamp=next_ts()).status == 204
    reply = call(account_server, "PUT", "/sda/3/AUTH_u", X_Timestamp=next_ts())
    assert (reply.status, reply.body) == (403, b"Recently deleted")
    assert call(account_server, "GET", "/sda/3/AUTH_u").headers["X-Account-Status"] == "Deleted"
