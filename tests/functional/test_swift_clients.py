"""The Swift API end to end: the real `swift` CLI and python-swiftclient against `torus up`.

One all-in-one cluster (4 storage nodes, 3 replicas, proxy, identity; tests/aio_cluster.py)
serves the whole module; each test works in containers of its own.  The node-failure test starts
a cluster of its own, since it kills one node.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client as http_client
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aio_cluster import AioCluster, running_cluster
from swiftclient import client as swift_client
from swiftclient.exceptions import ClientException

SWIFT_CLI = [sys.executable, "-m", "swiftclient.shell"]


def swift(cluster: AioCluster, *args: str, user: str = "test:tester", cwd: Path | None = None):
    """Run the `swift` CLI; its completed process (output as text)."""
    return subprocess.run(
        [*SWIFT_CLI, *cluster.swift_auth_args(user), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def connect(cluster: AioCluster, user: str = "test:tester") -> swift_client.Connection:
    return swift_client.Connection(
        authurl=cluster.auth_url, user=user, key=cluster.users[user], retries=0
    )


def anonymous(method: str, url: str, token: str | None = None) -> int:
    """The status of a bare request (swiftclient always sends a token)."""
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def conn(aio_cluster: AioCluster) -> Iterator[swift_client.Connection]:
    connection = connect(aio_cluster)
    yield connection
    connection.close()


# the swift CLI


def test_cli_upload_download_list_stat_post_copy_delete(
    aio_cluster: AioCluster, tmp_path: Path
) -> None:
    container = new_name("cli")
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_bytes(b"hello torus\n")
    (src / "dir").mkdir()
    (src / "dir" / "nested.bin").write_bytes(os.urandom(200_000))

    done = swift(aio_cluster, "upload", container, ".", cwd=src)
    assert done.returncode == 0, done.stderr
    listed = swift(aio_cluster, "list", container)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["dir/nested.bin", "hello.txt"]

    stat = swift(aio_cluster, "stat", container, "hello.txt")
    assert stat.returncode == 0, stat.stderr
    assert "Content Length: 12" in stat.stdout
    # Swift sends object ETags quoted (swob quotes them); the CLI prints what it got.
    etag = hashlib.md5(b"hello torus\n").hexdigest()
    assert f'ETag: "{etag}"' in stat.stdout

    posted = swift(aio_cluster, "post", container, "hello.txt", "-m", "Color:blue")
    assert posted.returncode == 0, posted.stderr
    stat = swift(aio_cluster, "stat", container, "hello.txt")
    assert "Meta Color: blue" in stat.stdout

    copied = swift(aio_cluster, "copy", container, "hello.txt", "-d", f"/{container}/copy.txt")
    assert copied.returncode == 0, copied.stderr

    out = tmp_path / "out"
    done = swift(aio_cluster, "download", container, "-D", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "hello.txt").read_bytes() == b"hello torus\n"
    assert (out / "copy.txt").read_bytes() == b"hello torus\n"
    assert (out / "dir" / "nested.bin").read_bytes() == (src / "dir" / "nested.bin").read_bytes()

    account = swift(aio_cluster, "stat")
    assert account.returncode == 0, account.stderr
    assert "Account: AUTH_test" in account.stdout

    done = swift(aio_cluster, "delete", container)
    assert done.returncode == 0, done.stderr
    gone = swift(aio_cluster, "list", container)
    assert gone.returncode != 0
    assert "not found" in gone.stderr.lower()


def test_cli_bad_key_fails_with_401(aio_cluster: AioCluster) -> None:
    done = subprocess.run(
        [*SWIFT_CLI, "-A", aio_cluster.auth_url, "-U", "test:tester", "-K", "wrong", "stat"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "401" in done.stderr or "Unauthorized" in done.stderr


# a large streamed object


@pytest.mark.slow
def test_300_mib_object_streams_through_with_its_md5(
    aio_cluster: AioCluster, conn: swift_client.Connection
) -> None:
    size = 300 * 1024 * 1024
    block = os.urandom(1 << 20)
    container = new_name("big")
    conn.put_container(container)

    def body() -> Iterator[bytes]:
        for i in range(size // len(block)):
            yield i.to_bytes(8, "big") + block[8:]  # every MiB differs

    expected = hashlib.md5()
    for chunk in body():
        expected.update(chunk)
    # A generator: swiftclient sends it with Transfer-Encoding: chunked, a block at a time.
    etag = conn.put_object(container, "big.bin", contents=body())
    assert etag == expected.hexdigest()

    headers, chunks = conn.get_object(container, "big.bin", resp_chunk_size=1 << 20)
    assert int(headers["content-length"]) == size
    got = hashlib.md5()
    length = 0
    for chunk in chunks:
        got.update(chunk)
        length += len(chunk)
    assert length == size
    assert got.hexdigest() == expected.hexdigest() == headers["etag"].strip('"')
    conn.delete_object(container, "big.bin")
    conn.delete_container(container)


# listings


@pytest.mark.slow
def test_10000_objects_listed_in_pages(aio_cluster: AioCluster) -> None:
    container = new_name("many")
    first = connect(aio_cluster)
    first.put_container(container)
    first.close()
    names = [f"obj-{i:05d}" for i in range(10_000)]

    def put_range(chunk: list[str]) -> None:
        c = connect(aio_cluster)
        for name in chunk:
            c.put_object(container, name, contents=b"x")
        c.close()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put_range, [names[i::16] for i in range(16)]))

    c = connect(aio_cluster)
    headers = c.head_container(container)
    assert int(headers["x-container-object-count"]) == 10_000
    seen: list[str] = []
    marker = ""
    while True:
        _, page = c.get_container(container, marker=marker, limit=1000)
        if not page:
            break
        assert len(page) == 1000
        seen += [row["name"] for row in page]
        marker = page[-1]["name"]
    assert seen == names
    _, everything = c.get_container(container, full_listing=True)
    assert [row["name"] for row in everything] == names
    _, past_end = c.get_container(container, marker="zzz")
    assert past_end == []
    _, limited = c.get_container(container, prefix="obj-099", limit=5, query_string="reverse=true")
    assert [row["name"] for row in limited] == [f"obj-0999{i}" for i in range(9, 4, -1)]
    c.close()
    listed = swift(aio_cluster, "list", container)
    assert listed.returncode == 0
    assert listed.stdout.split() == names


# ACLs between two accounts


def test_acls_between_two_accounts(aio_cluster: AioCluster) -> None:
    owner = connect(aio_cluster, "test:tester")
    other = connect(aio_cluster, "test2:tester2")
    container = new_name("shared")
    owner.put_container(container)
    owner.put_object(container, "doc", contents=b"shared bytes")
    owner_url = owner.get_auth()[0]
    other_token = other.get_auth()[1]

    with pytest.raises(ClientException) as denied:
        swift_client.get_object(owner_url, other_token, container, "doc")
    assert denied.value.http_status == 403

    owner.post_container(
        container,
        {"X-Container-Read": "test2:tester2", "X-Container-Write": "test2:tester2"},
    )
    _, body = swift_client.get_object(owner_url, other_token, container, "doc")
    assert body == b"shared bytes"
    swift_client.put_object(owner_url, other_token, container, "from-other", b"hi")
    assert owner.get_object(container, "from-other")[1] == b"hi"

    # The ACL grants objects, not the account: no account listing, no container writes.
    with pytest.raises(ClientException) as denied:
        swift_client.get_account(owner_url, other_token)
    assert denied.value.http_status == 403
    with pytest.raises(ClientException) as denied:
        swift_client.post_container(owner_url, other_token, container, {"X-Container-Meta-A": "b"})
    assert denied.value.http_status == 403

    # .r:* lets anyone read objects without a token; .rlistings adds the listing.
    owner.post_container(container, {"X-Container-Read": ".r:*"})
    assert anonymous("GET", f"{owner_url}/{container}/doc") == 200
    assert anonymous("GET", f"{owner_url}/{container}") == 401
    assert anonymous("PUT", f"{owner_url}/{container}/new") == 401
    owner.post_container(container, {"X-Container-Read": ".r:*,.rlistings"})
    assert anonymous("GET", f"{owner_url}/{container}?format=json") == 200


def test_non_admin_user_needs_an_acl(aio_cluster: AioCluster) -> None:
    owner = connect(aio_cluster, "test:tester")
    tester3 = connect(aio_cluster, "test:tester3")
    container = new_name("t3")
    owner.put_container(container)
    owner.put_object(container, "doc", contents=b"x")
    with pytest.raises(ClientException) as denied:
        tester3.get_object(container, "doc")
    assert denied.value.http_status == 403
    owner.post_container(container, {"X-Container-Read": "test:tester3"})
    assert tester3.get_object(container, "doc")[1] == b"x"


# error paths


def test_a_content_encoded_body_is_stored_as_sent(conn: swift_client.Connection) -> None:
    """A gzip body is bytes like any other (the servers once inflated it: a 499)."""
    body = gzip.compress(b"<p>compressible</p>" * 1000)
    container = "enc-" + uuid.uuid4().hex[:8]
    conn.put_container(container)
    etag = conn.put_object(container, "page", body, headers={"Content-Encoding": "gzip"})
    assert etag == hashlib.md5(body).hexdigest()
    url, token = conn.get_auth()
    request = urllib.request.Request(f"{url}/{container}/page", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request, timeout=30) as response:  # urllib never inflates
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.read() == body


def test_an_answer_before_100_continue_closes_the_connection(
    aio_cluster: AioCluster, conn: swift_client.Connection
) -> None:
    """Refused before its body was asked for, a PUT's client may send the body or not: the
    connection cannot carry another request (it would start inside that body)."""
    url, token = conn.get_auth()
    path = urllib.parse.urlsplit(url).path + "/no-such-container-" + uuid.uuid4().hex[:8] + "/o"
    port = urllib.parse.urlsplit(aio_cluster.endpoint).port
    http = http_client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        http.putrequest("PUT", path)
        for name, value in (
            ("X-Auth-Token", token),
            ("Content-Length", "5"),
            ("Expect", "100-continue"),
        ):
            http.putheader(name, value)
        http.endheaders()
        response = http.getresponse()  # the body is never sent
        response.read()
        assert response.status == 404
        assert response.getheader("Connection", "").lower() == "close"
    finally:
        http.close()


def test_bad_token_is_401(aio_cluster: AioCluster, conn: swift_client.Connection) -> None:
    url = conn.get_auth()[0]
    assert anonymous("HEAD", url, token="AUTH_tkNOTATOKEN") == 401
    assert anonymous("HEAD", url) == 401


def test_missing_is_404(conn: swift_client.Connection) -> None:
    with pytest.raises(ClientException) as failed:
        conn.get_object(new_name("nope"), "nothing")
    assert failed.value.http_status == 404
    container = new_name("empty")
    conn.put_container(container)
    with pytest.raises(ClientException) as failed:
        conn.head_object(container, "nothing")
    assert failed.value.http_status == 404


def test_invalid_utf8_name_is_412(conn: swift_client.Connection) -> None:
    url, token = conn.get_auth()
    container = new_name("utf8")
    conn.put_container(container)
    with pytest.raises(ClientException) as failed:
        swift_client.put_object(url + f"/{container}/bad%FFname", token, contents=b"x")
    assert failed.value.http_status == 412


def test_limits_are_400(conn: swift_client.Connection) -> None:
    container = new_name("limits")
    conn.put_container(container)
    with pytest.raises(ClientException) as failed:
        conn.put_object(container, "o" * 1025, contents=b"x")
    assert failed.value.http_status == 400
    with pytest.raises(ClientException) as failed:
        conn.put_object(container, "o", contents=b"x", headers={"X-Object-Meta-" + "k" * 129: "v"})
    assert failed.value.http_status == 400
    with pytest.raises(ClientException) as failed:
        conn.put_object(container, "o", contents=b"x", headers={"X-Object-Meta-K": "v" * 257})
    assert failed.value.http_status == 400
    with pytest.raises(ClientException) as failed:
        conn.put_container("c" * 257)
    assert failed.value.http_status == 400


def test_info_and_healthcheck(aio_cluster: AioCluster) -> None:
    with urllib.request.urlopen(aio_cluster.endpoint + "/healthcheck", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["X-Trans-Id"]
    with urllib.request.urlopen(aio_cluster.endpoint + "/info", timeout=10) as resp:
        info = json.loads(resp.read())
    assert info["swift"]["max_file_size"] == 5 * 1024**3 + 2  # Swift's default, to the byte
    assert info["swift"]["container_listing_limit"] == 10_000
    assert "tempauth" in info


# a storage node down


@pytest.mark.slow
def test_one_storage_node_killed_puts_and_gets_still_succeed(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "data") as cluster:
        c = connect(cluster)
        container = new_name("failover")
        c.put_container(container)
        before = {f"before-{i}": os.urandom(5000) for i in range(20)}
        for name, body in before.items():
            c.put_object(container, name, contents=body)

        victims = [  # every server of node 1: object, container, account
            server
            for server in cluster.servers.values()
            if server.service in ("object", "container", "account")
            and server.name.rsplit("-", 1)[-1] == "1"
        ]
        assert len(victims) == 3, cluster.servers
        for server in victims:
            os.kill(server.pid, signal.SIGKILL)

        after = {f"after-{i}": os.urandom(70_000) for i in range(20)}
        for name, body in after.items():
            c.put_object(container, name, contents=body)  # raises on any non-2xx
        for name, body in {**before, **after}.items():
            assert c.get_object(container, name)[1] == body
        _, rows = c.get_container(container)
        assert {row["name"] for row in rows} == set(before) | set(after)
        c.close()
