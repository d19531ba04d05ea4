"""The object server over HTTP, as a real process (`torus serve object`) on a loopback port."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import lmdb
import pytest
from server_process import ServerProcess, free_port

from objectd import layout
from service import async_pending
from service.timestamp import Timestamp

_last_raw = 0


def next_ts(offset_s: float = 0.0) -> str:
    """A new X-Timestamp, strictly after every earlier one this test run made."""
    global _last_raw
    raw = max(Timestamp.from_seconds(time.time() + offset_s).raw, _last_raw + 1)
    _last_raw = raw
    return Timestamp(raw).normal


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def call(
    server: ServerProcess,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterable[bytes] | None = None,
) -> Reply:
    conn = server.connection()
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def put(server: ServerProcess, path: str, body: bytes = b"", **headers: str) -> Reply:
    sent = {"X-Timestamp": next_ts(), "Content-Type": "application/octet-stream"}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return call(server, "PUT", path, sent, body)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- round trips ---------------------------------------------------------------------------


def test_put_get_head_delete_round_trip(object_server: ServerProcess) -> None:
    path = "/sda/1/AUTH_a/c/dir/obj"
    ts = next_ts()
    headers = {
        "X-Timestamp": ts,
        "Content-Type": "text/plain",
        "X-Object-Meta-Color": "blue",
        "Content-Disposition": "inline",
        "X-Trans-Id": "tx-round-trip",
    }
    reply = call(object_server, "PUT", path, headers, b"hello world")
    assert reply.status == 201
    assert reply.headers["ETag"] == f'"{md5(b"hello world")}"'
    assert reply.headers["X-Trans-Id"] == "tx-round-trip"

    got = call(object_server, "GET", path)
    assert (got.status, got.body) == (200, b"hello world")
    for name, value in {
        "Content-Type": "text/plain",
        "Content-Length": "11",
        "X-Object-Meta-Color": "blue",
        "Content-Disposition": "inline",
        "X-Timestamp": ts,
        "X-Backend-Timestamp": ts,
        "X-Backend-Data-Timestamp": ts,
        "ETag": f'"{md5(b"hello world")}"',
    }.items():
        assert got.headers[name] == value, name
    assert got.headers["Last-Modified"].endswith(" GMT")

    head = call(object_server, "HEAD", path)
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "11")
    assert head.headers["X-Object-Meta-Color"] == "blue"

    delete_ts = next_ts()
    assert call(object_server, "DELETE", path, {"X-Timestamp": delete_ts}).status == 204
    gone = call(object_server, "GET", path)
    assert gone.status == 404
    assert gone.headers["X-Backend-Timestamp"] == delete_ts
    assert call(object_server, "DELETE", path, {"X-Timestamp": next_ts()}).status == 404


def test_post_replaces_metadata_and_content_type(object_server: ServerProcess) -> None:
    path = "/sda/1/a/c/posted"
    put_ts = next_ts()
    headers = {
        "X-Timestamp": put_ts,
        "Content-Type": "text/plain",
        "X-Object-Meta-Old": "1",
        "X-Object-Sysmeta-Kept": "yes",
    }
    assert call(object_server, "PUT", path, headers, b"data").status == 201
    post_ts = next_ts()
    reply = call(
        object_server,
        "POST",
        path,
        {"X-Timestamp": post_ts, "X-Object-Meta-New": "2", "Content-Type": "image/png"},
    )
    assert reply.status == 202
    assert reply.headers["X-Object-Sysmeta-Kept"] == "yes"
    got = call(object_server, "GET", path)
    assert got.body == b"data"
    assert got.headers["X-Object-Meta-New"] == "2"
    assert "X-Object-Meta-Old" not in got.headers
    assert got.headers["X-Object-Sysmeta-Kept"] == "yes"
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Timestamp"] == post_ts
    assert got.headers["X-Backend-Data-Timestamp"] == put_ts
    older = call(object_server, "POST", path, {"X-Timestamp": put_ts})
    assert older.status == 409
    missing = call(object_server, "POST", "/sda/1/a/c/nothing", {"X-Timestamp": next_ts()})
    assert missing.status == 404


def test_5_mib_chunked_upload_streams_and_reads_back(object_server: ServerProcess) -> None:
    data = random.Random(5).randbytes(5 * 1024 * 1024)
    pieces = (data[i : i + 65536] for i in range(0, len(data), 65536))
    reply = put(object_server, "/sda/2/a/c/big", pieces)  # type: ignore[arg-type]
    assert reply.status == 201
    assert reply.headers["ETag"] == f'"{md5(data)}"'
    got = call(object_server, "GET", "/sda/2/a/c/big")
    assert got.status == 200
    assert int(got.headers["Content-Length"]) == len(data)
    assert md5(got.body) == md5(data)
    data_files = list((object_server.devices / "sda" / "objects" / "2").rglob("*.data"))
    assert len(data_files) == 1  # over inline_max_bytes: a data file, not inline in LMDB


def test_inline_and_file_bodies(object_server: ServerProcess) -> None:
    small, large = b"s" * 100, random.Random(1).randbytes(200_000)
    assert put(object_server, "/sda/3/a/c/small", small).status == 201
    assert put(object_server, "/sda/3/a/c/large", large).status == 201
    assert call(object_server, "GET", "/sda/3/a/c/small").body == small
    assert call(object_server, "GET", "/sda/3/a/c/large").body == large
    data_files = list((object_server.devices / "sda" / "objects" / "3").rglob("*.data"))
    assert len(data_files) == 1


# -- ranges and conditionals ---------------------------------------------------------------


def parse_byteranges(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """(Content-Range, bytes) of each part of a multipart/byteranges body."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    delimiter = b"--" + boundary
    assert body.startswith(delimiter) and body.endswith(delimiter + b"--")
    parts = []
    for raw in body[len(delimiter) : -len(delimiter) - 2].split(delimiter):
        head, _, rest = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        assert rest.endswith(b"\r\n")
        parts.append((fields["Content-Range"], rest[:-2]))
    return parts


def test_ranges(start_server) -> None:
    server = start_server("object", inline_max_bytes=1024, block_size_bytes=4096)
    data = random.Random(7).randbytes(20_000)  # five blocks, file-backed
    path = "/sda/4/a/c/ranged"
    assert put(server, path, data, Content_Type="text/plain").status == 201

    one = call(server, "GET", path, {"Range": "bytes=4000-8999"})
    assert (one.status, one.body) == (206, data[4000:9000])
    assert one.headers["Content-Range"] == "bytes 4000-8999/20000"
    suffix = call(server, "GET", path, {"Range": "bytes=-10"})
    assert (suffix.status, suffix.body) == (206, data[-10:])

    many = call(server, "GET", path, {"Range": "bytes=0-9,5000-5009,19990-"})
    assert many.status == 206
    assert int(many.headers["Content-Length"]) == len(many.body)
    parts = parse_byteranges(many.body, many.headers["Content-Type"])
    assert parts == [
        ("bytes 0-9/20000", data[0:10]),
        ("bytes 5000-5009/20000", data[5000:5010]),
        ("bytes 19990-19999/20000", data[19990:]),
    ]

    unsatisfiable = call(server, "GET", path, {"Range": "bytes=30000-"})
    assert unsatisfiable.status == 416
    assert unsatisfiable.headers["Content-Range"] == "bytes */20000"
    ignored = call(server, "GET", path, {"Range": "bytes=oops"})
    assert (ignored.status, ignored.body) == (200, data)


def test_conditional_requests(object_server: ServerProcess) -> None:
    path = "/sda/5/a/c/cond"
    etag = put(object_server, path, b"v1").headers["ETag"]
    last_modified = call(object_server, "HEAD", path).headers["Last-Modified"]

    not_modified = call(object_server, "GET", path, {"If-None-Match": etag})
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert not_modified.headers["ETag"] == etag
    assert call(object_server, "GET", path, {"If-Modified-Since": last_modified}).status == 304
    assert call(object_server, "GET", path, {"If-Match": '"nope"'}).status == 412
    assert call(object_server, "HEAD", path, {"If-Match": '"nope"'}).status == 412
    early = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert call(object_server, "GET", path, {"If-Unmodified-Since": early}).status == 412
    assert call(object_server, "GET", path, {"If-Match": etag}).body == b"v1"

    assert put(object_server, path, b"v2", If_None_Match="*").status == 412
    assert put(object_server, path, b"v2", If_None_Match=etag).status == 412
    assert put(object_server, "/sda/5/a/c/new", b"x", If_None_Match="*").status == 201


def test_a_corrupt_block_is_never_sent(start_server) -> None:
    server = start_server("object", inline_max_bytes=1024, block_size_bytes=4096)
    data = random.Random(9).randbytes(20_000)
    for name in ("late", "early"):
        assert put(server, f"/sda/4/a/c/{name}", data).status == 201
    for name, offset in (("late", 10_000), ("early", 5)):  # in block 2, and in block 0
        digest = layout.name_hash(server.secret.encode(), f"/a/c/{name}")
        [path] = Path(layout.hash_dir(str(server.devices / "sda"), 4, digest)).glob("*.data")
        raw = bytearray(path.read_bytes())
        raw[offset] ^= 0xFF
        path.write_bytes(raw)

    conn = server.connection()
    try:
        conn.request("GET", "/sda/4/a/c/late")
        response = conn.getresponse()
        assert response.status == 200  # blocks 0 and 1 were good: the headers went out
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    finally:
        conn.close()
    sent = cut.value.partial
    assert len(sent) <= 8192 and sent == data[: len(sent)]  # only bytes that passed
    assert call(server, "GET", "/sda/4/a/c/late").status == 404  # quarantined
    assert call(server, "GET", "/sda/4/a/c/early").status == 404  # caught before any byte
    assert len(list((server.devices / "sda" / "quarantined").rglob("*.data"))) == 2


# -- refusals ------------------------------------------------------------------------------


def test_older_or_equal_timestamp_is_409(object_server: ServerProcess) -> None:
    path = "/sda/6/a/c/o"
    ts = next_ts()
    headers = {"X-Timestamp": ts, "Content-Type": "text/plain"}
    assert call(object_server, "PUT", path, headers, b"new").status == 201
    for stale in (ts, Timestamp.from_seconds(Timestamp.parse(ts).seconds - 1).normal):
        reply = call(object_server, "PUT", path, {**headers, "X-Timestamp": stale}, b"old")
        assert reply.status == 409
        assert reply.headers["X-Backend-Timestamp"] == ts
    assert call(object_server, "DELETE", path, {"X-Timestamp": ts}).status == 409
    assert call(object_server, "GET", path).body == b"new"


def test_bad_etag_is_422_and_stores_nothing(object_server: ServerProcess) -> None:
    path = "/sda/6/a/c/etag"
    reply = put(object_server, path, b"body", ETag=md5(b"other"))
    assert reply.status == 422
    missing = call(object_server, "GET", path)
    assert missing.status == 404
    assert "X-Backend-Timestamp" not in missing.headers  # not even a tombstone
    assert put(object_server, path, b"body", ETag=f'"{md5(b"body")}"').status == 201


NOW = "<a fresh X-Timestamp>"
GOOD = {"X-Timestamp": NOW, "Content-Type": "text/plain"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Content-Type": "text/plain"}, b"Missing X-Timestamp header"),
        ({"X-Timestamp": "yesterday", "Content-Type": "text/plain"}, b"X-Timestamp should be"),
        ({"X-Timestamp": NOW}, b"No content type"),
        ({**GOOD, "X-Object-Meta-" + "n" * 129: "v"}, b"Metadata name too long"),
        ({**GOOD, "X-Object-Meta-Big": "v" * 257}, b"Metadata value longer than 256"),
        ({**GOOD, **{f"X-Object-Meta-M{i}": "v" for i in range(91)}}, b"Too many metadata"),
        ({**GOOD, "X-Delete-At": "1000"}, b"X-Delete-At in past"),
        ({**GOOD, "X-Delete-At": "soon"}, b"Non-integer X-Delete-At"),
        ({**GOOD, "X-Delete-After": "0"}, b"X-Delete-After in past"),
        ({**GOOD, "X-Container-Host": "nohost", "X-Container-Partition": "1"}, b"container"),
    ],
)
def test_bad_put_requests_are_400(
    object_server: ServerProcess, headers: dict[str, str], message: bytes
) -> None:
    sent = {name: next_ts() if value == NOW else value for name, value in headers.items()}
    reply = call(object_server, "PUT", "/sda/7/a/c/o", sent, b"x")
    assert reply.status == 400
    assert message in reply.body
    assert call(object_server, "HEAD", "/sda/7/a/c/o").status == 404


def test_put_without_a_length_is_411(object_server: ServerProcess) -> None:
    conn = object_server.connection()
    try:
        conn.putrequest("PUT", "/sda/7/a/c/o", skip_accept_encoding=True)
        conn.putheader("X-Timestamp", next_ts())
        conn.putheader("Content-Type", "text/plain")
        conn.endheaders()
        reply = conn.getresponse()
        assert (reply.status, reply.read()) == (411, b"Missing Content-Length header.")
    finally:
        conn.close()


def test_timestamp_required_on_post_and_delete(object_server: ServerProcess) -> None:
    for method in ("POST", "DELETE"):
        reply = call(object_server, method, "/sda/7/a/c/o", {})
        assert (reply.status, reply.body) == (400, b"Missing X-Timestamp header")


def test_name_limits_and_bad_utf8(object_server: ServerProcess) -> None:
    long_name = "/sda/7/a/c/" + "o" * 1025
    assert put(object_server, long_name, b"x").status == 400
    assert put(object_server, "/sda/7/a/c/" + "o" * 1024, b"x").status == 201
    bad = put(object_server, "/sda/7/a/c/%FF%FEname", b"x")
    assert (bad.status, bad.body) == (412, b"Invalid UTF8 or contains NULL")
    assert put(object_server, "/sda/7/a/c/" + quote("ünïcødé ?#%"), b"x").status == 201
    assert call(object_server, "GET", "/sda/7/a/c/" + quote("ünïcødé ?#%")).body == b"x"


def test_missing_device_is_507(object_server: ServerProcess) -> None:
    assert put(object_server, "/sdq/1/a/c/o", b"x").status == 507
    assert call(object_server, "GET", "/sdq/1/a/c/o").status == 507


def test_unknown_method_is_405_and_trans_id_is_echoed(object_server: ServerProcess) -> None:
    reply = call(object_server, "PATCH", "/sda/1/a/c/o", {"X-Trans-Id": "tx-405"})
    assert reply.status == 405
    assert reply.headers["X-Trans-Id"] == "tx-405"
    missing = call(object_server, "GET", "/sda/1/a/c/none", {"X-Trans-Id": "tx-404"})
    assert (missing.status, missing.headers["X-Trans-Id"]) == (404, "tx-404")


# -- expiry and replication ----------------------------------------------------------------


def test_x_delete_at_expires_the_object(object_server: ServerProcess) -> None:
    path = "/sda/8/a/c/expiring"
    delete_at = int(time.time()) + 2
    reply = put(object_server, path, b"soon gone", X_Delete_At=str(delete_at))
    assert reply.status == 201
    got = call(object_server, "GET", path)
    assert (got.status, got.headers["X-Delete-At"]) == (200, str(delete_at))
    time.sleep(max(delete_at - time.time(), 0) + 0.2)
    expired = call(object_server, "GET", path)
    assert expired.status == 404
    assert "X-Backend-Timestamp" in expired.headers

    ts = next_ts()
    after = call(
        object_server,
        "PUT",
        "/sda/8/a/c/after",
        {"X-Timestamp": ts, "Content-Type": "text/plain", "X-Delete-After": "100"},
        b"x",
    )
    assert after.status == 201
    head = call(object_server, "HEAD", "/sda/8/a/c/after")
    assert head.headers["X-Delete-At"] == str(int(Timestamp.parse(ts).seconds + 100))


def test_replicate_returns_suffix_hashes_as_json(object_server: ServerProcess) -> None:
    for name in ("one", "two", "three"):
        assert put(object_server, f"/sda/9/a/c/{name}", b"x").status == 201
    override = {"X-HTTP-Method-Override": "REPLICATE"}
    reply = call(object_server, "POST", "/sda/9", override)
    assert reply.status == 200
    hashes = json.loads(reply.body)
    assert 1 <= len(hashes) <= 3
    assert all(len(suffix) == 3 and len(value) == 32 for suffix, value in hashes.items())
    suffixes = "-".join(hashes)
    again = call(object_server, "POST", f"/sda/9/{suffixes}", override)
    assert json.loads(again.body) == hashes
    assert json.loads(call(object_server, "POST", "/sda/10", override).body) == {}
    assert call(object_server, "POST", "/sda/9/zzzz", override).status == 400
    assert call(object_server, "POST", "/sdq/9", override).status == 507


# -- container updates ---------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@pytest.fixture
def container_server() -> Iterator[tuple[int, list[Recorded]]]:
    """A fake container server that records every request and answers 201/204."""
    seen: list[Recorded] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            seen.append(Recorded(self.command, self.path, dict(self.headers.items())))
            self.send_response(201 if self.command == "PUT" else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_DELETE = _record

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_container_update_reaches_the_container_server(
    object_server: ServerProcess, container_server: tuple[int, list[Recorded]]
) -> None:
    port, seen = container_server
    update = {
        "X-Container-Host": f"127.0.0.1:{port}",
        "X-Container-Device": "sdc",
        "X-Container-Partition": "42",
        "X-Trans-Id": "tx-update",
    }
    ts = next_ts()
    body = b"listed"
    headers = {"X-Timestamp": ts, "Content-Type": "text/plain", **update}
    assert call(object_server, "PUT", "/sda/1/a/c/" + quote("ö/bj"), headers, body).status == 201
    assert len(seen) == 1  # sent before the 201, not after
    row = seen[0]
    assert (row.method, row.path) == ("PUT", "/sdc/42/a/c/%C3%B6/bj")
    assert row.headers["X-Timestamp"] == ts
    assert row.headers["X-Size"] == str(len(body))
    assert row.headers["X-Content-Type"] == "text/plain"
    assert row.headers["X-Etag"] == md5(body)
    assert row.headers["X-Trans-Id"] == "tx-update"

    delete_ts = next_ts()
    reply = call(
        object_server, "DELETE", "/sda/1/a/c/" + quote("ö/bj"), {"X-Timestamp": delete_ts, **update}
    )
    assert reply.status == 204
    assert (seen[1].method, seen[1].headers["X-Timestamp"]) == ("DELETE", delete_ts)
    assert not list_async_pendings(object_server, stop_first=True)


def list_async_pendings(
    server: ServerProcess, *, stop_first: bool
) -> list[async_pending.AsyncPending]:
    if stop_first:
        server.stop()
    env = lmdb.open(str(server.devices / "sda" / "objects.lmdb"), max_dbs=8)
    try:
        table = async_pending.open_table(env)
        return [p for _key, p in async_pending.list_pending(env, table) if p is not None]
    finally:
        env.close()


def test_failed_container_update_is_saved_as_async_pending(object_server: ServerProcess) -> None:
    closed = free_port()
    ts = next_ts()
    headers = {
        "X-Timestamp": ts,
        "Content-Type": "text/plain",
        "X-Container-Host": f"127.0.0.1:{closed},127.0.0.1:{closed}",
        "X-Container-Device": "sdc,sdd",
        "X-Container-Partition": "7",
    }
    assert call(object_server, "PUT", "/sda/1/a/c/pending", headers, b"abc").status == 201
    [pending] = list_async_pendings(object_server, stop_first=True)
    assert (pending.op, pending.account, pending.container, pending.obj) == (
        "PUT",
        "a",
        "c",
        "pending",
    )
    assert pending.partition == 7
    assert pending.targets == (("127.0.0.1", closed, "sdc"), ("127.0.0.1", closed, "sdd"))
    assert pending.timestamp == Timestamp.parse(ts)
    assert pending.headers["X-Etag"] == md5(b"abc")
    assert pending.headers["X-Size"] == "3"
