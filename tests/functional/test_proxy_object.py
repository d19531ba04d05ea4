"""The proxy's object controller end to end: real storage servers, rings, `torus serve proxy`.

One cluster (tests/proxy_cluster.py: four object servers, one container and one account
server, 3 replicas) serves the module; each test uses containers of its own.  The tests that
kill an object server restart it before they end.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from proxy_cluster import ProxyCluster
from swiftclient import client as swift_client
from swiftclient.exceptions import ClientException

pytestmark = pytest.mark.slow

TRANS_ID = re.compile(r"^tx[0-9a-f]{21}-[0-9a-f]{10}$")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyCluster]:
    cluster = ProxyCluster(tmp_path_factory.mktemp("proxy-object"))
    with cluster:
        yield cluster
        print(cluster.logs()[-20000:])  # shown if a test failed
        assert "Traceback" not in cluster.proxy.log(), "the proxy logged an unexpected error"


@pytest.fixture(scope="module")
def auth(cluster: ProxyCluster) -> tuple[str, str]:
    return cluster.auth()


@pytest.fixture
def conn(cluster: ProxyCluster) -> swift_client.Connection:
    return swift_client.Connection(
        authurl=cluster.auth_url, user="test:tester", key="testing", retries=0
    )


@pytest.fixture
def container(conn: swift_client.Connection) -> str:
    name = f"c-{uuid.uuid4().hex[:10]}"
    conn.put_container(name)
    return name


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def call(
    cluster: ProxyCluster,
    auth: tuple[str, str],
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterable[bytes] | None = None,
) -> Reply:
    """``method`` on ``<storage url><path>`` with the token; ``body`` iterable: chunked."""
    token, url = auth
    full = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    conn = cluster.connection()
    try:
        chunked = body is not None and not isinstance(body, bytes)
        sent = {"X-Auth-Token": token, **(headers or {})}
        conn.request(method, f"/{full}{path}", body=body, headers=sent, encode_chunked=chunked)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- round trips ---------------------------------------------------------------------------


def test_put_get_head_post_delete(conn: swift_client.Connection, container: str) -> None:
    body = b"hello, proxy"
    etag = conn.put_object(container, "dir/obj.txt", body, headers={"X-Object-Meta-Color": "blue"})
    assert etag == md5(body)
    headers, got = conn.get_object(container, "dir/obj.txt")
    assert got == body
    assert headers["content-type"] == "text/plain"  # guessed from the name
    assert headers["x-object-meta-color"] == "blue"
    assert headers["etag"].strip('"') == md5(body)
    assert not any(k.startswith("x-backend-") for k in headers)
    conn.post_object(container, "dir/obj.txt", headers={"X-Object-Meta-Shape": "round"})
    headers = conn.head_object(container, "dir/obj.txt")
    assert headers["x-object-meta-shape"] == "round"
    assert "x-object-meta-color" not in headers  # a POST replaces user metadata, as Swift's
    assert headers["content-type"] == "text/plain"  # ... and keeps the content type
    assert int(headers["content-length"]) == len(body)
    listing = conn.get_container(container)[1]
    assert [(o["name"], o["bytes"], o["hash"]) for o in listing] == [
        ("dir/obj.txt", len(body), md5(body))
    ]
    conn.delete_object(container, "dir/obj.txt")
    with pytest.raises(ClientException) as err:
        conn.get_object(container, "dir/obj.txt")
    assert err.value.http_status == 404
    with pytest.raises(ClientException) as err:
        conn.delete_object(container, "dir/obj.txt")
    assert err.value.http_status == 404


def test_names_with_slashes_quotes_and_unicode(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    for name in ("a/b//c", "per%2Fcent", "sp ace?q=1#frag", "ünïcødé/☃"):
        path = f"/{container}/{quote(name)}"
        assert call(cluster, auth, "PUT", path, body=name.encode()).status == 201
        reply = call(cluster, auth, "GET", path)
        assert (reply.status, reply.body) == (200, name.encode())


def test_content_type_guessed_kept_or_detected(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    def put_type(name: str, headers: dict[str, str]) -> str:
        assert call(cluster, auth, "PUT", f"/{container}/{name}", headers, b"x").status == 201
        return call(cluster, auth, "HEAD", f"/{container}/{name}").headers["Content-Type"]

    assert put_type("page.html", {}) == "text/html"
    assert put_type("noext", {}) == "application/octet-stream"
    assert put_type("given.html", {"Content-Type": "text/x-mine"}) == "text/x-mine"
    detect = {"Content-Type": "text/x-mine", "X-Detect-Content-Type": "true"}
    assert put_type("detect.json", detect) == "application/json"


def test_chunked_put(conn: swift_client.Connection, container: str) -> None:
    pieces = [os.urandom(100_000) for _ in range(7)]
    etag = conn.put_object(container, "chunked", iter(pieces))  # no length: chunked
    whole = b"".join(pieces)
    assert etag == md5(whole)
    headers, got = conn.get_object(container, "chunked")
    assert got == whole
    assert int(headers["content-length"]) == len(whole)


def test_small_chunked_put(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    reply = call(cluster, auth, "PUT", f"/{container}/tiny", body=iter([b"ab", b"c"]))
    assert reply.status == 201
    assert call(cluster, auth, "GET", f"/{container}/tiny").body == b"abc"
    reply = call(cluster, auth, "PUT", f"/{container}/empty", body=iter([]))
    assert reply.status == 201
    reply = call(cluster, auth, "GET", f"/{container}/empty")
    assert (reply.status, reply.body) == (200, b"")


def test_etag_mismatch_is_422(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    for size in (10, 300_000):  # the small path and the streamed one
        path = f"/{container}/etag-{size}"
        body = os.urandom(size)
        reply = call(cluster, auth, "PUT", path, {"ETag": md5(b"other")}, body)
        assert reply.status == 422
        assert call(cluster, auth, "HEAD", path).status == 404
        reply = call(cluster, auth, "PUT", path, {"ETag": f'"{md5(body)}"'}, body)
        assert (reply.status, reply.headers["ETag"]) == (201, md5(body))


def test_length_required_and_too_large(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    token, url = auth
    conn = cluster.connection()
    try:
        conn.putrequest("PUT", f"{url.split(str(cluster.proxy.port), 1)[1]}/{container}/x")
        conn.putheader("X-Auth-Token", token)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 411
        response.read()
    finally:
        conn.close()
    conn = cluster.connection()
    try:
        conn.putrequest("PUT", f"{url.split(str(cluster.proxy.port), 1)[1]}/{container}/x")
        conn.putheader("X-Auth-Token", token)
        conn.putheader("Content-Length", str(5 * 2**30 + 3))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()


def test_put_to_a_missing_container_is_404(cluster: ProxyCluster, auth: tuple[str, str]) -> None:
    missing = f"/nope-{uuid.uuid4().hex[:8]}/obj"
    assert call(cluster, auth, "PUT", missing, body=b"x").status == 404
    assert call(cluster, auth, "POST", missing).status == 404
    assert call(cluster, auth, "DELETE", missing).status == 404
    assert call(cluster, auth, "GET", missing).status == 404


# -- ranges and conditionals (the object servers answer; the proxy passes them on) ----------


def test_ranges_and_multirange(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    body = bytes(range(256)) * 1024  # 256 KiB: the streamed GET path
    path = f"/{container}/ranged"
    assert call(cluster, auth, "PUT", path, body=body).status == 201
    reply = call(cluster, auth, "GET", path, {"Range": "bytes=10-19"})
    assert (reply.status, reply.body) == (206, body[10:20])
    assert reply.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    reply = call(cluster, auth, "GET", path, {"Range": "bytes=-100000"})
    assert (reply.status, reply.body) == (206, body[-100000:])
    reply = call(cluster, auth, "GET", path, {"Range": "bytes=0-1,100-101,-2"})
    assert reply.status == 206
    boundary = reply.headers["Content-Type"].split("boundary=")[1]
    parts = reply.body.split(f"--{boundary}".encode())
    assert [p.split(b"\r\n\r\n", 1)[1][:-2] for p in parts[1:-1]] == [
        body[0:2],
        body[100:102],
        body[-2:],
    ]
    reply = call(cluster, auth, "GET", path, {"Range": f"bytes={len(body)}-"})
    assert reply.status == 416


def test_conditional_requests(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    body = b"conditional"
    path = f"/{container}/cond"
    etag = call(cluster, auth, "PUT", path, body=body).headers["ETag"]
    assert call(cluster, auth, "GET", path, {"If-None-Match": f'"{etag}"'}).status == 304
    assert call(cluster, auth, "GET", path, {"If-Match": '"other"'}).status == 412
    assert call(cluster, auth, "GET", path, {"If-Match": f'"{etag}"'}).body == body
    last_modified = call(cluster, auth, "HEAD", path).headers["Last-Modified"]
    assert call(cluster, auth, "GET", path, {"If-Modified-Since": last_modified}).status == 304
    assert call(cluster, auth, "PUT", path, {"If-None-Match": "*"}, b"again").status == 412
    big = os.urandom(200_000)  # the streamed PUT: the 412 comes before any 100 Continue
    assert call(cluster, auth, "PUT", path, {"If-None-Match": "*"}, big).status == 412
    assert call(cluster, auth, "GET", path).body == body
    fresh = f"/{container}/cond-new"
    assert call(cluster, auth, "PUT", fresh, {"If-None-Match": "*"}, big).status == 201


# -- copy ----------------------------------------------------------------------------------


def test_copy_and_copy_from(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    body = os.urandom(150_000)
    src = f"/{container}/src.bin"
    meta = {"X-Object-Meta-Color": "red", "Content-Type": "app/x-src", "Content-Encoding": "gz"}
    assert call(cluster, auth, "PUT", src, meta, body).status == 201
    other = f"c2-{uuid.uuid4().hex[:8]}"
    assert call(cluster, auth, "PUT", f"/{other}").status in (201, 202)

    reply = call(cluster, auth, "COPY", src, {"Destination": f"{other}/dst"})
    assert reply.status == 201
    assert reply.headers["X-Copied-From"] == f"{container}/src.bin"
    assert reply.headers["ETag"] == md5(body)
    got = call(cluster, auth, "GET", f"/{other}/dst")
    assert got.body == body
    assert got.headers["X-Object-Meta-Color"] == "red"
    assert got.headers["Content-Type"] == "app/x-src"
    assert got.headers["Content-Encoding"] == "gz"

    headers = {"X-Copy-From": f"/{container}/src.bin", "X-Object-Meta-Size": "L"}
    reply = call(cluster, auth, "PUT", f"/{container}/dst2", headers, b"")
    assert reply.status == 201
    got = call(cluster, auth, "GET", f"/{container}/dst2")
    assert got.body == body
    assert (got.headers["X-Object-Meta-Color"], got.headers["X-Object-Meta-Size"]) == ("red", "L")

    headers = {"X-Copy-From": quote(f"{container}/src.bin"), "X-Fresh-Metadata": "true"}
    headers["X-Object-Meta-Only"] = "me"
    assert call(cluster, auth, "PUT", f"/{container}/fresh", headers, b"").status == 201
    got = call(cluster, auth, "HEAD", f"/{container}/fresh")
    assert got.headers["X-Object-Meta-Only"] == "me"
    assert "X-Object-Meta-Color" not in got.headers
    assert got.headers["Content-Type"] == "app/x-src"

    missing = call(cluster, auth, "COPY", f"/{container}/nope", {"Destination": f"{other}/x"})
    assert missing.status == 404
    bad = call(cluster, auth, "COPY", src, {"Destination": "no-slash"})
    assert bad.status == 412
    body_sent = call(cluster, auth, "PUT", f"/{other}/y", {"X-Copy-From": src[1:]}, b"data")
    assert body_sent.status == 400


def test_copy_with_swiftclient(conn: swift_client.Connection, container: str) -> None:
    conn.put_object(container, "a", b"alpha", headers={"X-Object-Meta-K": "v"})
    conn.copy_object(container, "a", f"/{container}/b")
    headers, body = conn.get_object(container, "b")
    assert (body, headers["x-object-meta-k"]) == (b"alpha", "v")


# -- expiry --------------------------------------------------------------------------------


def test_delete_after_and_delete_at(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    path = f"/{container}/expiring"
    before = int(time.time())
    assert call(cluster, auth, "PUT", path, {"X-Delete-After": "2"}, b"soon").status == 201
    at = int(call(cluster, auth, "HEAD", path).headers["X-Delete-At"])
    assert before + 1 <= at <= int(time.time()) + 3
    deadline = time.monotonic() + 10
    while call(cluster, auth, "GET", path).status != 404:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    for headers in (
        {"X-Delete-At": "100"},
        {"X-Delete-After": "-5"},
        {"X-Delete-After": "soon"},
        {"X-Delete-At": "tomorrow"},
    ):
        assert call(cluster, auth, "PUT", path, headers, b"x").status == 400
    kept = f"/{container}/kept"
    assert call(cluster, auth, "PUT", kept, body=b"x").status == 201
    assert call(cluster, auth, "POST", kept, {"X-Delete-After": "3600"}).status == 202
    assert int(call(cluster, auth, "HEAD", kept).headers["X-Delete-At"]) > time.time() + 3500


# -- the pipeline --------------------------------------------------------------------------


def test_trans_id_everywhere_and_logged(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    replies = [
        call(cluster, auth, "PUT", f"/{container}/t", body=b"x"),
        call(cluster, auth, "GET", f"/{container}/t"),
        call(cluster, auth, "GET", f"/{container}/missing"),
        call(cluster, (("AUTH_tkbogus", auth[1])), "GET", f"/{container}/t"),
    ]
    assert [r.status for r in replies] == [201, 200, 404, 401]
    ids = [r.headers["X-Trans-Id"] for r in replies]
    assert all(TRANS_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert replies[0].headers["X-Openstack-Request-Id"] == ids[0]
    extra = call(cluster, auth, "GET", f"/{container}/t", {"X-Trans-Id-Extra": "mine"})
    assert extra.headers["X-Trans-Id"].endswith("-mine")
    conn = cluster.connection()
    try:
        conn.request("GET", "/healthcheck")
        health = conn.getresponse()
        assert (health.status, health.read()) == (200, b"OK")
        assert TRANS_ID.match(health.headers["X-Trans-Id"])
    finally:
        conn.close()
    deadline = time.monotonic() + 5
    while not all(i in cluster.proxy.log() for i in ids):
        assert time.monotonic() < deadline, "the access lines lack the transaction ids"
        time.sleep(0.1)
    line = next(x for x in cluster.proxy.log().splitlines() if ids[1] in x and "access" in x)
    assert f"GET {auth[1].split(str(cluster.proxy.port))[1]}/{container}/t 200" in line


def test_gatekeeper(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    path = f"/{container}/gk"
    headers = {"X-Object-Sysmeta-Secret": "no", "X-Backend-Replication": "true"}
    assert call(cluster, auth, "PUT", path, headers, b"x").status == 201
    reply = call(cluster, auth, "GET", path)
    assert not any(k.lower().startswith(("x-backend-", "x-object-sysmeta-")) for k in reply.headers)
    # A client's X-Backend-Replication would let an X-Delete-At in the past through.
    past = {"X-Backend-Replication": "true", "X-Delete-At": "1000"}
    assert call(cluster, auth, "PUT", path, past, b"x").status == 400


def test_options(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    reply = call(cluster, ("", auth[1]), "OPTIONS", f"/{container}/any")
    assert reply.status == 200
    assert "PUT" in reply.headers["Allow"] and "COPY" in reply.headers["Allow"]
    preflight = {"Origin": "http://example.com", "Access-Control-Request-Method": "GET"}
    assert call(cluster, ("", auth[1]), "OPTIONS", f"/{container}/any", preflight).status == 401
    cors = {"X-Container-Meta-Access-Control-Allow-Origin": "http://example.com"}
    assert call(cluster, auth, "POST", f"/{container}", cors).status == 204
    deadline = time.monotonic() + 10  # the info cache may still hold the container's old view
    while call(cluster, ("", auth[1]), "OPTIONS", f"/{container}/any", preflight).status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_x_newest(cluster: ProxyCluster, auth: tuple[str, str], container: str) -> None:
    path = f"/{container}/newest"
    assert call(cluster, auth, "PUT", path, body=b"one").status == 201
    assert call(cluster, auth, "PUT", path, body=b"two").status == 201
    for _ in range(5):
        assert call(cluster, auth, "GET", path, {"X-Newest": "true"}).body == b"two"


# -- failures ------------------------------------------------------------------------------


def test_a_dead_object_server_is_replaced_by_a_handoff(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    account = auth[1].rsplit("/", 1)[1]
    name = "handoff-obj"
    primaries = cluster.object_primaries(account, container, name)
    victim = primaries[0]
    victim.kill()
    try:
        for size in (100, 300_000):  # small and streamed PUTs
            body = os.urandom(size)
            reply = call(cluster, auth, "PUT", f"/{container}/{name}", body=body)
            assert reply.status == 201, reply.body
            for _ in range(6):  # primaries in random order: the dead one is met, and skipped
                got = call(cluster, auth, "GET", f"/{container}/{name}")
                assert (got.status, got.body) == (200, body)
        assert (
            call(cluster, auth, "POST", f"/{container}/{name}", {"X-Object-Meta-A": "b"}).status
            == 202
        )
        assert call(cluster, auth, "HEAD", f"/{container}/{name}").status == 200
        assert call(cluster, auth, "DELETE", f"/{container}/{name}").status == 204
        assert call(cluster, auth, "GET", f"/{container}/{name}").status == 404
    finally:
        victim.start()
    # The handoff holds a copy: the fourth node, not one of the three primaries.
    handoff = next(s for s in cluster.object_servers if s not in primaries)
    assert any(handoff.devices.rglob("*")), "nothing was written to the handoff"


def test_two_dead_object_servers_still_serve_reads(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    account = auth[1].rsplit("/", 1)[1]
    name = "two-down"
    body = os.urandom(1000)
    assert call(cluster, auth, "PUT", f"/{container}/{name}", body=body).status == 201
    primaries = cluster.object_primaries(account, container, name)
    for server in primaries[:2]:
        server.kill()
    try:
        for _ in range(4):
            got = call(cluster, auth, "GET", f"/{container}/{name}")
            assert (got.status, got.body) == (200, body)
    finally:
        for server in primaries[:2]:
            server.start()


def test_concurrent_overwrites_never_mix(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    size = 3 * 1024 * 1024 + 17
    bodies = [bytes([i]) * size for i in range(4)]
    sums = {md5(b) for b in bodies}
    path = f"/{container}/racy"
    assert call(cluster, auth, "PUT", path, body=bodies[0]).status == 201
    stop = threading.Event()
    seen: list[str] = []

    def writer(i: int) -> None:
        while not stop.is_set():
            # 202: a newer PUT got there first (Swift's answer to the object servers' 409)
            assert call(cluster, auth, "PUT", path, body=bodies[i]).status in (201, 202)

    def reader() -> None:
        for _ in range(12):
            got = call(cluster, auth, "GET", path)
            assert got.status == 200
            seen.append(md5(got.body))

    with ThreadPoolExecutor(6) as pool:
        writers = [pool.submit(writer, i) for i in range(1, 4)]
        readers = [pool.submit(reader) for _ in range(2)]
        for future in readers:
            future.result()
        stop.set()
        for future in writers:
            future.result()
    assert len(seen) == 24
    assert set(seen) <= sums, "a GET returned a mix of bodies"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_50_mib_object_streams_through(
    cluster: ProxyCluster, auth: tuple[str, str], container: str
) -> None:
    size = 50 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    expected = hashlib.md5()
    for _ in range(size // len(block)):
        expected.update(block)
    assert cluster.proxy.proc is not None
    pid = cluster.proxy.proc.pid
    path = f"/{container}/big"
    call(cluster, auth, "PUT", path, body=block)  # warm up: pools, buffers
    before = _rss_kib(pid)

    def blocks() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    token, url = auth
    conn = cluster.connection()
    try:  # a known length, sent in pieces: the streamed path, not chunked
        conn.putrequest("PUT", f"{url.split(str(cluster.proxy.port), 1)[1]}{path}")
        conn.putheader("X-Auth-Token", token)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for piece in blocks():
            conn.send(piece)
        response = conn.getresponse()
        assert (response.status, response.headers["ETag"]) == (201, expected.hexdigest())
        response.read()
    finally:
        conn.close()
    conn = cluster.connection()
    try:
        conn.request(
            "GET",
            f"{url.split(str(cluster.proxy.port), 1)[1]}{path}",
            headers={"X-Auth-Token": token},
        )
        response = conn.getresponse()
        assert response.status == 200
        got = hashlib.md5()
        while piece := response.read(1024 * 1024):
            got.update(piece)
        assert got.hexdigest() == expected.hexdigest()
    finally:
        conn.close()
    grown_kib = _rss_kib(pid) - before
    assert grown_kib < 20 * 1024, f"the proxy grew by {grown_kib} KiB for a 50 MiB object"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_client_gone_mid_body_stores_nothing(
    cluster: ProxyCluster, auth: tuple[str, str], container: str, chunked: bool
) -> None:
    token, url = auth
    path = f"{url.split(str(cluster.proxy.port), 1)[1]}/{container}/cut-{chunked}"
    conn = cluster.connection()
    try:
        conn.putrequest("PUT", path)
        conn.putheader("X-Auth-Token", token)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(2_000_000))
        conn.endheaders()
        piece = os.urandom(100_000)
        for _ in range(3):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        time.sleep(0.3)
    finally:
        conn.close()  # gone, mid-body (no last chunk)
    time.sleep(1.0)
    assert call(cluster, auth, "HEAD", f"/{container}/cut-{chunked}").status == 404
    names = [o["name"] for o in swift_client.get_container(url, token, container)[1]]
    assert f"cut-{chunked}" not in names
