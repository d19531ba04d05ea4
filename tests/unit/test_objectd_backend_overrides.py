"""The object server's large-object headers (objectd/backend_headers.py), against a real
object server process: X-Backend-Etag-Is-At, X-Backend-Ignore-Range-If-Metadata-Present and
the container update overrides, which the proxy uses to serve a manifest (S3 multipart).
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lmdb
import pytest
from server_process import ServerProcess, free_port

from service import async_pending
from service.timestamp import Timestamp

MANIFEST_ETAG = "X-Object-Sysmeta-Manifest-Etag"
CLIENT_ETAG = '"0123456789abcdef0123456789abcdef-3"'  # what the manifest's client sees
WHOLE_SIZE = "15728640"  # the three parts' bytes
OVERRIDE_ETAG = "X-Object-Sysmeta-Container-Update-Override-Etag"
OVERRIDE_SIZE = "X-Object-Sysmeta-Container-Update-Override-Size"
BODY = b'[{"part": 1}, {"part": 2}, {"part": 3}]'

_last_raw = 0


def next_ts() -> str:
    """A new X-Timestamp, strictly after every earlier one this module made."""
    global _last_raw
    raw = max(Timestamp.from_seconds(time.time()).raw, _last_raw + 1)
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
    body: bytes | None = None,
) -> Reply:
    conn = server.connection()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def put(server: ServerProcess, path: str, body: bytes = BODY, **headers: str) -> Reply:
    sent = {"X-Timestamp": next_ts(), "Content-Type": "application/json"}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return call(server, "PUT", path, sent, body)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def start_object_server(workdir: Path) -> ServerProcess:
    server = ServerProcess("object", workdir)
    (server.devices / "sda").mkdir()
    return server.start()


@pytest.fixture(scope="module")
def object_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_object_server(tmp_path_factory.mktemp("object"))
    try:
        yield server
    finally:
        server.stop()
        print(f"--- object server log ---\n{server.log()}")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@pytest.fixture
def container_server() -> Iterator[tuple[dict[str, str], list[Recorded]]]:
    """A fake container server recording every request (201/204); yields the X-Container-*
    headers that name it, and what it saw."""
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
    targets = {
        "X-Container-Host": f"127.0.0.1:{httpd.server_address[1]}",
        "X-Container-Device": "sdc",
        "X-Container-Partition": "3",
    }
    try:
        yield targets, seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# -- X-Backend-Etag-Is-At ------------------------------------------------------------------


def test_conditional_get_and_head_match_the_etag_named(object_server: ServerProcess) -> None:
    path = "/sda/1/a/c/manifest"
    assert put(object_server, path, **{MANIFEST_ETAG: CLIENT_ETAG}).status == 201
    at = {"X-Backend-Etag-Is-At": MANIFEST_ETAG}
    body_etag = f'"{md5(BODY)}"'

    got = call(object_server, "GET", path, {**at, "If-Match": CLIENT_ETAG})
    assert (got.status, got.body) == (200, BODY)
    assert got.headers["ETag"] == body_etag  # the manifest's own: the proxy answers the rest
    assert call(object_server, "GET", path, {**at, "If-Match": body_etag}).status == 412
    assert call(object_server, "HEAD", path, {**at, "If-Match": body_etag}).status == 412
    not_modified = call(object_server, "GET", path, {**at, "If-None-Match": CLIENT_ETAG})
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert call(object_server, "HEAD", path, {**at, "If-None-Match": CLIENT_ETAG}).status == 304
    assert call(object_server, "GET", path, {**at, "If-None-Match": body_etag}).status == 200
    # Unquoted, as some clients send it; and a weak tag matches If-None-Match only.
    unquoted = CLIENT_ETAG.strip('"')
    assert call(object_server, "GET", path, {**at, "If-Match": unquoted}).status == 200
    weak = {**at, "If-None-Match": f"W/{CLIENT_ETAG}"}
    assert call(object_server, "GET", path, weak).status == 304

    # Without the header, the body's own ETag as before.
    assert call(object_server, "GET", path, {"If-Match": body_etag}).status == 200
    assert call(object_server, "GET", path, {"If-Match": CLIENT_ETAG}).status == 412


def test_the_first_name_stored_wins_in_any_case(object_server: ServerProcess) -> None:
    path = "/sda/1/a/c/two-etags"
    stored = {MANIFEST_ETAG: CLIENT_ETAG, "X-Object-Sysmeta-Other-Etag": '"other"'}
    assert put(object_server, path, **stored).status == 201
    names = "X-Object-Sysmeta-Missing, x-object-sysmeta-manifest-etag ,X-Object-Sysmeta-Other-Etag"
    at = {"X-Backend-Etag-Is-At": names}
    assert call(object_server, "GET", path, {**at, "If-Match": CLIENT_ETAG}).status == 200
    assert call(object_server, "GET", path, {**at, "If-Match": '"other"'}).status == 412


def test_an_object_without_the_name_matches_its_own_etag(object_server: ServerProcess) -> None:
    path = "/sda/1/a/c/plain"
    assert put(object_server, path, b"plain").status == 201
    at = {"X-Backend-Etag-Is-At": MANIFEST_ETAG}
    assert call(object_server, "GET", path, {**at, "If-Match": md5(b"plain")}).status == 200
    assert call(object_server, "GET", path, {**at, "If-None-Match": md5(b"plain")}).status == 304


def test_a_conditional_put_matches_the_etag_named(object_server: ServerProcess) -> None:
    path = "/sda/1/a/c/overwritten"
    assert put(object_server, path, **{MANIFEST_ETAG: CLIENT_ETAG}).status == 201
    at = {"X-Backend-Etag-Is-At": MANIFEST_ETAG}
    assert put(object_server, path, b"v2", **at, If_None_Match=CLIENT_ETAG).status == 412
    # The manifest's own ETag is not what its client saw: the PUT goes on.
    assert put(object_server, path, b"v2", **at, If_None_Match=f'"{md5(BODY)}"').status == 201
    assert call(object_server, "GET", path).body == b"v2"


# -- X-Backend-Ignore-Range-If-Metadata-Present -----------------------------------------------


def test_a_range_is_ignored_when_the_object_has_a_name(object_server: ServerProcess) -> None:
    path = "/sda/2/a/c/manifest"
    assert put(object_server, path, **{MANIFEST_ETAG: CLIENT_ETAG}).status == 201
    ignore = {
        "X-Backend-Ignore-Range-If-Metadata-Present": f"X-Static-Large-Object,{MANIFEST_ETAG}"
    }
    for wanted in ("bytes=0-1", "bytes=-5", "bytes=0-1,4-9", "bytes=1000-"):
        got = call(object_server, "GET", path, {**ignore, "Range": wanted})
        assert (got.status, got.body) == (200, BODY), wanted
        assert "Content-Range" not in got.headers
        assert got.headers["Content-Length"] == str(len(BODY))
    # Lower case names match; without the header the Range is served as always.
    lower = {"X-Backend-Ignore-Range-If-Metadata-Present": MANIFEST_ETAG.lower()}
    assert call(object_server, "GET", path, {**lower, "Range": "bytes=0-1"}).status == 200
    ranged = call(object_server, "GET", path, {"Range": "bytes=0-1"})
    assert (ranged.status, ranged.body) == (206, BODY[:2])
    assert call(object_server, "GET", path, {"Range": "bytes=1000-"}).status == 416


def test_a_range_is_served_when_the_object_lacks_the_names(object_server: ServerProcess) -> None:
    path = "/sda/2/a/c/segment"
    assert put(object_server, path, b"segment bytes", X_Object_Meta_Color="blue").status == 201
    ignore = {"X-Backend-Ignore-Range-If-Metadata-Present": MANIFEST_ETAG}
    got = call(object_server, "GET", path, {**ignore, "Range": "bytes=0-6"})
    assert (got.status, got.body) == (206, b"segment")
    assert got.headers["Content-Range"] == "bytes 0-6/13"


# -- container update overrides ---------------------------------------------------------------


def test_the_listing_row_carries_the_overrides_and_a_post_repeats_them(
    object_server: ServerProcess, container_server: tuple[dict[str, str], list[Recorded]]
) -> None:
    targets, seen = container_server
    path = "/sda/3/a/c/listed"
    overrides = {OVERRIDE_ETAG: CLIENT_ETAG.strip('"'), OVERRIDE_SIZE: WHOLE_SIZE}
    assert put(object_server, path, **targets, **overrides).status == 201
    [row] = seen
    assert (row.method, row.path) == ("PUT", "/sdc/3/a/c/listed")
    assert row.headers["X-Etag"] == CLIENT_ETAG.strip('"')
    assert row.headers["X-Size"] == WHOLE_SIZE
    assert row.headers["X-Content-Type"] == "application/json"  # not overridden

    post_ts = next_ts()
    posted = call(
        object_server, "POST", path, {"X-Timestamp": post_ts, "X-Object-Meta-A": "1", **targets}
    )
    assert posted.status == 202
    assert posted.headers[OVERRIDE_SIZE] == WHOLE_SIZE  # the POST kept the sysmeta
    row = seen[1]
    assert (row.headers["X-Etag"], row.headers["X-Size"]) == (CLIENT_ETAG.strip('"'), WHOLE_SIZE)
    assert row.headers["X-Meta-Timestamp"] == Timestamp.parse(post_ts).internal

    # A POST cannot set an override; an overwrite without one lists the body's own again.
    sneaky = {"X-Timestamp": next_ts(), OVERRIDE_SIZE: "1", **targets}
    assert call(object_server, "POST", path, sneaky).status == 202
    assert seen[2].headers["X-Size"] == WHOLE_SIZE
    assert put(object_server, path, b"small", **targets).status == 201
    assert (seen[3].headers["X-Etag"], seen[3].headers["X-Size"]) == (md5(b"small"), "5")


def test_the_backend_form_is_kept_as_sysmeta(
    object_server: ServerProcess, container_server: tuple[dict[str, str], list[Recorded]]
) -> None:
    targets, seen = container_server
    path = "/sda/3/a/c/backend-form"
    backend = {
        "X-Backend-Container-Update-Override-Etag": "from-backend",
        "X-Backend-Container-Update-Override-Size": "7",
        "X-Object-Sysmeta-Container-Update-Override-Content-Type": "application/x-manifest",
        OVERRIDE_SIZE: "9",  # the sysmeta form wins, as in Swift
    }
    assert put(object_server, path, **targets, **backend).status == 201
    expected = ("from-backend", "9", "application/x-manifest")
    row = seen[0].headers
    assert (row["X-Etag"], row["X-Size"], row["X-Content-Type"]) == expected
    head = call(object_server, "HEAD", path)
    assert head.headers[OVERRIDE_ETAG] == "from-backend"
    assert head.headers[OVERRIDE_SIZE] == "9"
    assert call(object_server, "POST", path, {"X-Timestamp": next_ts(), **targets}).status == 202
    row = seen[1].headers
    assert (row["X-Etag"], row["X-Size"], row["X-Content-Type"]) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {OVERRIDE_SIZE: "-1"},
        {OVERRIDE_SIZE: "12 bytes"},
        {"X-Backend-Container-Update-Override-Size": "1e6"},
    ],
)
def test_a_bad_size_override_is_400_and_stores_nothing(
    object_server: ServerProcess, headers: dict[str, str]
) -> None:
    path = "/sda/3/a/c/bad-override"
    assert put(object_server, path, **headers).status == 400
    assert call(object_server, "HEAD", path).status == 404


def test_a_failed_update_keeps_the_overrides_in_its_async_pending(tmp_path: Path) -> None:
    server = start_object_server(tmp_path / "object")
    try:
        closed = free_port()
        targets = {
            "X-Container-Host": f"127.0.0.1:{closed}",
            "X-Container-Device": "sdc",
            "X-Container-Partition": "7",
        }
        overrides = {OVERRIDE_ETAG: "whole-etag", OVERRIDE_SIZE: WHOLE_SIZE}
        assert put(server, "/sda/1/a/c/pending", **targets, **overrides).status == 201
    finally:
        server.stop()
    env = lmdb.open(str(server.devices / "sda" / "objects.lmdb"), max_dbs=8)
    try:
        table = async_pending.open_table(env)
        [pending] = [p for _key, p in async_pending.list_pending(env, table) if p is not None]
    finally:
        env.close()
    assert (pending.op, pending.obj) == ("PUT", "pending")
    assert pending.headers["X-Etag"] == "whole-etag"
    assert pending.headers["X-Size"] == WHOLE_SIZE
