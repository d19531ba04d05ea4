"""proxy/backend.py and proxy/streaming.py: quorum answers, handoffs, timeouts and the PUT fan-out.

The pure parts (quorum sizes, best_response, paths, headers) are tested directly; the rest
against fake storage nodes: small aiohttp servers in this process, one per device of a
4-device, 3-replica ring, each told how to misbehave.  Each test runs its own event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import xxhash
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy import backend, streaming
from proxy.config import ProxyConfig
from proxy.context import TRANS_ID, Proxy, open_pool
from proxy.nodes import NodeErrors
from proxy.object_get import find_object
from proxy.server import new_trans_id
from proxy.streaming import (
    FOOTER_BYTES,
    FOOTER_HEADER,
    FOOTER_KIND,
    ClientDisconnected,
    EtagMismatch,
    put_replicas,
)
from ring.builder import RingBuilder
from ring.device import Device
from ring.ring import Ring
from service.config import ClusterConfig

PART = 0

# -- pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "quorum"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)])
def test_quorum_size(n: int, quorum: int) -> None:
    assert backend.quorum_size(n) == quorum


@pytest.mark.parametrize(
    ("statuses", "index"),
    [
        ([201, 201, 201], 0),
        ([201, 503, 201], 0),
        ([503, 202, 201], 1),  # the highest status of the class
        ([404, 404, 201], 0),
        ([201, 404, 503], None),
        ([503, 503, 201], None),
        ([409, 404, 201], 0),  # 4xx: 409 over 404
        ([304, 304, 200], 0),
        ([], None),
    ],
)
def test_best_response_index(statuses: list[int], index: int | None) -> None:
    assert backend.best_response_index(statuses, backend.quorum_size(len(statuses))) == index


def test_have_quorum() -> None:
    assert backend.have_quorum([201, 201], 2)
    assert not backend.have_quorum([201, 404], 2)
    assert not backend.have_quorum([503, 503], 2)  # 5xx never decides


def test_backend_path_quotes_names_as_utf8() -> None:
    assert backend.backend_path("sda", 7, "AUTH_a") == "/sda/7/AUTH_a"
    assert backend.backend_path("sda", 7, "a", "c") == "/sda/7/a/c"
    assert backend.backend_path("sda", 7, "a", "c", "o/p q?%☃") == (
        "/sda/7/a/c/o/p%20q%3F%25%E2%98%83"
    )


def test_backend_headers_pass_the_clients_minus_what_the_proxy_owns() -> None:
    request = make_mocked_request(
        "PUT",
        "/v1/a/c/o",
        headers={
            "x-object-meta-color": "blue",
            "Content-Length": "5",
            "Transfer-Encoding": "chunked",
            "X-Auth-Token": "AUTH_tk",
            "X-Timestamp": "1.0",
            "X-Backend-Replication": "true",
            "X-Object-Sysmeta-Secret": "s",
            "Connection": "close",
            "If-None-Match": "*",
            "X-Container-Host": "10.9.9.9:1",  # a client must not aim updates anywhere
            "X-Delete-At-Host": "10.9.9.9:2",
        },
    )
    request[TRANS_ID] = "tx-test"
    headers = backend.backend_headers(request, X_Container_Host="1.2.3.4:5")
    assert headers["X-Object-Meta-Color"] == "blue"
    assert headers["If-None-Match"] == "*"
    assert headers["X-Trans-Id"] == "tx-test"
    assert headers["X-Container-Host"] == "1.2.3.4:5"
    for dropped in ("Content-Length", "Transfer-Encoding", "X-Auth-Token", "Connection"):
        assert dropped not in headers
    assert "X-Backend-Replication" not in headers and "X-Object-Sysmeta-Secret" not in headers
    assert "X-Delete-At-Host" not in headers
    assert headers["X-Timestamp"] != "1.0"
    assert "X-Container-Host" not in backend.backend_headers(request)
    again = backend.backend_headers(request)
    assert again["X-Timestamp"] == headers["X-Timestamp"]  # one timestamp per request


def test_reads_carry_no_timestamp() -> None:
    request = make_mocked_request("GET", "/v1/a/c/o", headers={"Range": "bytes=0-1"})
    headers = backend.backend_headers(request)
    assert "X-Timestamp" not in headers
    assert headers["Range"] == "bytes=0-1"


def test_gatekept_headers() -> None:
    for name in (
        "x-backend-timestamp",
        "x-object-sysmeta-a",
        "x-container-sysmeta-b",
        "x-account-sysmeta-c",
        "x-object-transient-sysmeta-d",
    ):
        assert backend.is_gatekept(name)
    for name in ("x-object-meta-a", "x-container-read", "etag", "x-sysmeta-x"):
        assert not backend.is_gatekept(name)


def test_trans_id_format() -> None:
    trans_id = new_trans_id(clock=0x6B0C91CD)
    assert re.fullmatch(r"tx[0-9a-f]{21}-006b0c91cd", trans_id)
    assert new_trans_id() != new_trans_id()
    assert new_trans_id("x y" + "z" * 40).endswith("-x%20y" + "z" * 29)


def test_the_access_line_gets_the_proxys_transaction_id() -> None:
    import contextvars
    import logging

    from proxy import server

    record = logging.LogRecord(
        "torus.access", logging.INFO, __file__, 1, "%s %s", ("GET /x", "-"), None
    )
    context = contextvars.copy_context()
    context.run(server._TRANS_ID_VAR.set, "tx-mine")
    assert context.run(server.TransIdLogFilter().filter, record)
    assert record.getMessage() == "GET /x tx-mine"
    untouched = logging.LogRecord("torus.access", logging.INFO, __file__, 1, "%s", ("-",), None)
    assert contextvars.Context().run(server.TransIdLogFilter().filter, untouched)
    assert untouched.getMessage() == "-"


# -- fake nodes ----------------------------------------------------------------------------


@dataclass
class FakeNode:
    """One device's server.  ``mode``: ok, 507, 500, 404, hang (never answers), die (cut the
    connection after 100 KB of a PUT body), slow-continue (the 100 comes late)."""

    mode: str = "ok"
    stored: dict[str, bytes] = field(default_factory=dict)
    timestamps: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    aborted: int = 0
    footers: int = 0  # PUTs that came with a checksum footer
    port: int = 0
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        mode = self.mode
        if mode in ("507", "500", "404"):
            return web.Response(status=int(mode), text=mode)
        if mode == "hang":
            await asyncio.sleep(60)
        if request.method == "PUT":
            return await self._put(request, mode)
        if request.method in ("GET", "HEAD"):
            return await self._get(request, mode)
        return web.Response(status=202 if request.method == "POST" else 204)

    async def _get(self, request: web.Request, mode: str) -> web.StreamResponse:
        """GET with a single Range and If-Match; ``die-get`` cuts the body half-way."""
        body = self.stored.get(request.path)
        if body is None:
            return web.Response(status=404)
        etag = hashlib.md5(body).hexdigest()
        headers = {
            "X-Backend-Timestamp": self.timestamps.get(request.path, "1.00000"),
            "ETag": f'"{etag}"',
        }
        if request.headers.get("If-Match", etag).strip('"') != etag:
            return web.Response(status=412)
        status, start, stop = 200, 0, len(body)
        if "Range" in request.headers:
            first, last = request.headers["Range"].removeprefix("bytes=").split("-")
            status, start, stop = 206, int(first), int(last) + 1
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(body)}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = stop - start
        await response.prepare(request)
        if mode == "die-get":
            await response.write(body[start : start + (stop - start) // 2])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write(body[start:stop])
        return response

    async def _put(self, request: web.Request, mode: str) -> web.Response:
        if request.headers.get("If-None-Match") == "*" and request.path in self.stored:
            return web.Response(status=412)
        if request.headers.get("Expect", "").lower() == "100-continue":
            if mode == "slow-continue":
                await asyncio.sleep(60)
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        data = bytearray()
        try:
            while chunk := await request.content.read(65536):
                data += chunk
                if mode == "die" and len(data) >= 100_000:
                    assert request.transport is not None
                    request.transport.abort()
                    await asyncio.sleep(1)
        except BaseException:  # a cut connection: a read error, or the handler cancelled
            self.aborted += 1
            raise
        etag = hashlib.md5(data).hexdigest()
        if request.headers.get(FOOTER_HEADER) == FOOTER_KIND:  # the object server's side
            self.footers += 1
            data, footer = data[:-FOOTER_BYTES], bytes(data[-FOOTER_BYTES:])
            etag = footer[:32].decode()
            if footer[32:].decode() != xxhash.xxh3_64(data).hexdigest():
                return web.Response(status=422, text="footer mismatch")
        if request.headers.get("Etag", etag) != etag:
            return web.Response(status=422)
        self.stored[request.path] = bytes(data)
        self.timestamps[request.path] = request.headers.get("X-Timestamp", "1.00000")
        return web.Response(status=201, headers={"ETag": etag})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle, expect_handler=_no_continue)
        self.runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]


async def _no_continue(request: web.Request) -> None:
    return None


@dataclass
class Cluster:
    proxy: Proxy
    ring: Ring
    nodes: dict[int, FakeNode]  # by port; the down node has no server

    def node(self, device: Device) -> FakeNode:
        return self.nodes[device.port]

    @property
    def primaries(self) -> list[FakeNode]:
        return [self.node(d) for d in self.ring.get_part_nodes(PART)]

    @property
    def handoff(self) -> FakeNode:
        return self.node(next(self.ring.get_more_nodes(PART)))


def run(test: Callable[[Cluster], Awaitable[None]], **config: float) -> None:
    """Run ``test`` against four fake nodes and a proxy over them."""

    async def main() -> None:
        nodes = [FakeNode() for _ in range(4)]
        for node in nodes:
            await node.start()
        builder = RingBuilder(1, 3, 0)
        for i, node in enumerate(nodes):
            builder.add_dev(
                region=1, zone=i, ip="127.0.0.1", port=node.port, device=f"d{i}", weight=1.0
            )
        builder.rebalance(seed=3)
        ring = Ring(builder.get_ring(), b"secret")
        settings = {"conn_timeout_s": 0.5, "node_timeout_s": 0.5, "post_quorum_timeout_s": 0.2}
        proxy_config = ProxyConfig(**{**settings, **config})  # type: ignore[arg-type]
        async with open_pool(proxy_config) as pool:
            proxy = Proxy(
                config=proxy_config,
                cluster=ClusterConfig("secret"),
                account_ring=ring,
                container_ring=ring,
                object_ring=ring,
                pool=pool,
                errors=NodeErrors(10, 60.0),
                tokens=None,  # type: ignore[arg-type]
            )
            try:
                await test(Cluster(proxy, ring, {n.port: n for n in nodes}))
            finally:
                for node in nodes:
                    assert node.runner is not None
                    await node.runner.cleanup()

    asyncio.run(main())


def path_for(node: Device) -> str:
    return backend.backend_path(node.device, PART, "a", "c", "o")


def per_replica(n: int = 3, **extra: str) -> list[dict[str, str]]:
    return [{"X-Timestamp": "1700000000.00000", **extra} for _ in range(n)]


# -- quorum_request ------------------------------------------------------------------------


def test_quorum_request_answers_the_quorums_response() -> None:
    async def test(cluster: Cluster) -> None:
        response = await backend.quorum_request(
            cluster.proxy, cluster.ring, PART, "POST", path_for, per_replica()
        )
        assert response.status == 202
        assert [len(n.requests) for n in cluster.primaries] == [1, 1, 1]
        assert cluster.handoff.requests == []

    run(test)


@pytest.mark.parametrize("mode", ["507", "500", "hang", "down"])
def test_a_failing_primary_is_replaced_by_a_handoff(mode: str) -> None:
    async def test(cluster: Cluster) -> None:
        victim = cluster.primaries[1]
        if mode == "down":
            assert victim.runner is not None
            await victim.runner.cleanup()
        else:
            victim.mode = mode
        response = await backend.quorum_request(
            cluster.proxy, cluster.ring, PART, "DELETE", path_for, per_replica()
        )
        assert response.status == 204
        assert len(cluster.handoff.requests) == 1
        victim_device = cluster.ring.get_part_nodes(PART)[1]
        limited = cluster.proxy.errors.limited(victim_device)
        assert limited == (mode == "507")  # a 507 limits at once; others count
        assert cluster.proxy.errors.count(victim_device) >= 1

    # Long enough after the quorum for the hung node to time out and its handoff to answer.
    run(test, post_quorum_timeout_s=2.0)


def test_no_quorum_is_a_503() -> None:
    async def test(cluster: Cluster) -> None:
        cluster.primaries[0].mode = "404"
        cluster.primaries[1].mode = "500"
        cluster.handoff.mode = "500"
        response = await backend.quorum_request(
            cluster.proxy, cluster.ring, PART, "DELETE", path_for, per_replica()
        )
        assert response.status == 503

    run(test)


def test_a_404_quorum_is_the_answer() -> None:
    async def test(cluster: Cluster) -> None:
        cluster.primaries[0].mode = "404"
        cluster.primaries[2].mode = "404"
        response = await backend.quorum_request(
            cluster.proxy, cluster.ring, PART, "DELETE", path_for, per_replica()
        )
        assert response.status == 404
        assert response.body == b"404"

    run(test)


def test_a_slow_replica_is_not_waited_for_past_the_post_quorum_timeout() -> None:
    async def test(cluster: Cluster) -> None:
        cluster.primaries[2].mode = "hang"
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await backend.quorum_request(
            cluster.proxy, cluster.ring, PART, "POST", path_for, per_replica()
        )
        assert response.status == 202
        assert loop.time() - started < 0.45  # post_quorum_timeout_s, not node_timeout_s

    run(test, node_timeout_s=5.0)


# -- first_response ------------------------------------------------------------------------


def test_first_response_moves_past_404s_and_failures() -> None:
    async def test(cluster: Cluster) -> None:
        for i, node in enumerate(cluster.primaries):
            node.mode = ["404", "500", "ok"][i]
            node.stored = {path_for(d): b"found" for d in cluster.ring.devices if d}
        for _ in range(5):  # primaries in random order
            response = await backend.first_response(
                cluster.proxy, cluster.ring, PART, "GET", path_for, {}
            )
            assert response is not None
            assert (response.status, response.body) == (200, b"found")

    run(test)


def test_first_response_gives_the_404_or_none() -> None:
    async def test(cluster: Cluster) -> None:
        response = await backend.first_response(
            cluster.proxy, cluster.ring, PART, "HEAD", path_for, {}
        )
        assert response is not None and response.status == 404
        for node in cluster.nodes.values():
            node.mode = "500"
        assert (
            await backend.first_response(cluster.proxy, cluster.ring, PART, "HEAD", path_for, {})
            is None
        )

    run(test)


# -- object GET: newest seen ---------------------------------------------------------------


def test_a_newer_tombstone_seen_first_hides_an_older_success() -> None:
    async def test(cluster: Cluster) -> None:
        old, new = "1700000000.00000", "1700000001.00000"
        primaries = cluster.primaries
        for node in primaries:
            node.stored = {path_for(d): b"old" for d in cluster.ring.devices if d}
            node.timestamps = {p: old for p in node.stored}

        # One primary has the newer tombstone: a 404 with X-Backend-Timestamp.

        async def tombstone(request: web.Request) -> web.Response:
            return web.Response(status=404, headers={"X-Backend-Timestamp": new})

        primaries[0].handle = tombstone  # type: ignore[method-assign]
        assert primaries[0].runner is not None
        await primaries[0].runner.cleanup()
        await primaries[0].start()
        new_ring = _ring_with_port(cluster, 0, primaries[0].port)
        statuses = set()
        for seed in range(12):
            cluster.proxy.rng.seed(seed)
            found = await find_object(
                cluster.proxy,
                new_ring,
                PART,
                new_ring.get_part_nodes(PART),
                "GET",
                path_for,
                {},
            )
            statuses.add(found.status)
            found.release()
        # Depending on the shuffle: the tombstone first (404), or a success first (200).
        assert statuses == {200, 404}
        found = await find_object(
            cluster.proxy,
            new_ring,
            PART,
            new_ring.get_part_nodes(PART),
            "GET",
            path_for,
            {},
            newest=True,
        )
        assert found.status == 404

    run(test)


def _ring_with_port(cluster: Cluster, replica: int, port: int) -> Ring:
    """The cluster's ring with primary ``replica``'s device moved to ``port``."""
    device = cluster.ring.get_part_nodes(PART)[replica]
    builder_devices = list(cluster.ring.devices)
    moved = device.replace(port=port)
    builder_devices[device.id] = moved
    cluster.nodes[port] = cluster.nodes.pop(device.port)
    from ring.state import RingData

    data = RingData(
        part_power=cluster.ring.part_power,
        replicas=cluster.ring.replica_count,
        version=cluster.ring.version,
        builder_id="test",
        devices=builder_devices,
        replica2part2dev=[_row(cluster.ring, r) for r in range(int(cluster.ring.replica_count))],
    )
    return Ring(data, b"secret")


def _row(ring: Ring, replica: int):  # type: ignore[no-untyped-def]
    from array import array

    return array("I", [ring.get_part_nodes(p)[replica].id for p in range(ring.partition_count)])


def test_x_newest_serves_the_newest_version() -> None:
    async def test(cluster: Cluster) -> None:
        for i, node in enumerate(cluster.primaries):
            node.stored = {path_for(d): f"v{i}".encode() for d in cluster.ring.devices if d}
            node.timestamps = {p: f"170000000{i}.00000" for p in node.stored}
        for _ in range(4):
            found = await find_object(
                cluster.proxy,
                cluster.ring,
                PART,
                cluster.ring.get_part_nodes(PART),
                "GET",
                path_for,
                {},
                newest=True,
            )
            assert found.response is not None
            assert await found.response.read() == b"v2"
            found.release()

    run(test)


# -- the PUT fan-out -----------------------------------------------------------------------


def body_source(data: bytes, piece: int = 65536) -> Callable[[], Awaitable[list[bytes]]]:
    offset = 0

    async def read() -> list[bytes]:
        nonlocal offset
        await asyncio.sleep(0)  # as a read from the client's socket: the nodes get to run
        chunk = data[offset : offset + piece]
        offset += len(chunk)
        return [chunk] if chunk else []

    return read


async def ready() -> None:
    return None


async def put(  # type: ignore[no-untyped-def]
    cluster: Cluster,
    data: bytes,
    *,
    length: int | None = -1,
    read=None,
    client_etag: str | None = None,
    **extra: str,
):
    return await put_replicas(
        cluster.proxy,
        cluster.ring,
        PART,
        path_for,
        per_replica(**extra),
        read or body_source(data),
        len(data) if length == -1 else length,
        ready,
        client_etag=client_etag,
    )


def statuses(responses) -> list[int]:  # type: ignore[no-untyped-def]
    return [503 if r is None else r.status for r in responses]


@pytest.mark.parametrize("size", [0, 1000, 65536, 65537, 1_000_000])
@pytest.mark.parametrize("chunked", [False, True])
def test_put_reaches_every_primary(size: int, chunked: bool) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    async def test(cluster: Cluster) -> None:
        responses = await put(cluster, data, length=None if chunked else len(data))
        assert statuses(responses) == [201, 201, 201]
        for node in cluster.primaries:
            assert list(node.stored.values()) == [data]
        assert cluster.handoff.requests == []

    run(test)


@pytest.mark.parametrize("footer", [True, False])
@pytest.mark.parametrize("size", [1000, 1_000_000])
@pytest.mark.parametrize("chunked", [False, True])
def test_the_checksum_footer_carries_the_proxys_md5_and_xxh3(
    footer: bool, size: int, chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With footers on, every replica's body ends with the MD5 and xxh3-64 of the data (the
    fake node checks the xxh3 and stores what precedes the footer, under the footer's MD5);
    off, bodies are the data alone and the nodes hash them."""
    monkeypatch.setattr(streaming, "SEND_CHECKSUM_FOOTER", footer)
    data = bytes(range(256)) * (size // 256) + b"f" * (size % 256)

    async def test(cluster: Cluster) -> None:
        responses = await put(cluster, data, length=None if chunked else len(data))
        assert statuses(responses) == [201, 201, 201]
        etag = hashlib.md5(data).hexdigest()
        assert {r.headers["ETag"] for r in responses if r is not None} == {etag}
        for node in cluster.primaries:
            assert list(node.stored.values()) == [data]
            assert node.footers == (1 if footer else 0)

    run(test)


@pytest.mark.parametrize("size", [1000, 1_000_000])
def test_a_client_etag_that_does_not_match_stores_nothing(size: int) -> None:
    """The proxy's own MD5 differs from the client's ETag: no replica gets the body's end
    (each request is cut), and the client gets 422 (store_object turns the error into it)."""
    data = b"e" * size

    async def test(cluster: Cluster) -> None:
        with pytest.raises(EtagMismatch):
            await put(cluster, data, client_etag="0" * 32, Etag="0" * 32)
        await asyncio.sleep(0.2)
        for node in cluster.nodes.values():
            assert node.stored == {}
        good = hashlib.md5(data).hexdigest()
        responses = await put(cluster, data, client_etag=f'"{good.upper()}"', Etag=good)
        assert statuses(responses) == [201, 201, 201]

    run(test)


def test_a_footer_damaged_on_the_way_is_refused_by_the_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The xxh3 checks the hop: a body changed between proxy and node is a 422, not stored."""
    data = b"x" * 200_000
    encode = streaming.FooterDigest.encode
    monkeypatch.setattr(
        streaming.FooterDigest, "encode", lambda self: encode(self)[:32] + b"0" * 16
    )

    async def test(cluster: Cluster) -> None:
        responses = await put(cluster, data)
        assert statuses(responses) == [422, 422, 422]
        assert all(node.stored == {} for node in cluster.nodes.values())

    run(test)


@pytest.mark.parametrize("mode", ["507", "down", "slow-continue"])
@pytest.mark.parametrize("size", [1000, 500_000])
def test_put_moves_a_failing_primary_to_the_handoff(mode: str, size: int) -> None:
    if mode == "slow-continue" and size <= 65536:
        pytest.skip("a small body is sent without Expect: no 100 Continue to wait for")
    data = b"h" * size

    async def test(cluster: Cluster) -> None:
        victim = cluster.primaries[0]
        if mode == "down":
            assert victim.runner is not None
            await victim.runner.cleanup()
        else:
            victim.mode = mode
        responses = await put(cluster, data)
        assert statuses(responses) == [201, 201, 201]
        assert list(cluster.handoff.stored.values()) == [data]
        assert victim.stored == {}

    run(test)


def test_a_replica_dying_mid_body_is_dropped_and_a_quorum_still_wins() -> None:
    data = b"d" * 1_000_000

    async def test(cluster: Cluster) -> None:
        cluster.primaries[1].mode = "die"
        responses = await put(cluster, data)
        assert sorted(statuses(responses)) == [201, 201, 503]
        assert cluster.handoff.requests == []  # half a body cannot move to a handoff
        assert cluster.primaries[1].stored == {}

    run(test)


def test_two_replicas_dying_mid_body_fail_the_put_and_nothing_is_stored() -> None:
    data = b"d" * 2_000_000

    async def test(cluster: Cluster) -> None:
        cluster.primaries[0].mode = "die"
        cluster.primaries[1].mode = "die"
        responses = await put(cluster, data, length=None)  # chunked: the end marker matters
        assert backend.best_response_index(statuses(responses), 2) is None
        await asyncio.sleep(0.2)
        for node in cluster.nodes.values():
            assert node.stored == {}, "a backend committed a cut body"

    run(test)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_client_gone_mid_body_cuts_every_replica(chunked: bool) -> None:
    data = b"c" * 300_000
    sent = body_source(data)
    calls = 0

    async def read() -> list[bytes]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ClientDisconnected("gone")
        return await sent()

    async def test(cluster: Cluster) -> None:
        with pytest.raises(ClientDisconnected):
            await put(cluster, data, length=None if chunked else len(data), read=read)
        await asyncio.sleep(0.3)
        for node in cluster.nodes.values():
            assert node.stored == {}
        assert sum(node.aborted for node in cluster.primaries) == 3

    run(test)


def test_if_none_match_412s_come_back_before_any_body() -> None:
    data = b"n" * 500_000

    async def test(cluster: Cluster) -> None:
        for node in cluster.primaries:
            node.stored[path_for(cluster.ring.get_part_nodes(PART)[0])] = b"old"
            node.stored.update({path_for(d): b"old" for d in cluster.ring.devices if d})
        responses = await put(cluster, data, **{"If-None-Match": "*"})
        assert statuses(responses) == [412, 412, 412]

    run(test)


def test_a_replica_that_stops_reading_is_cut_after_node_timeout() -> None:
    data = b"s" * 8_000_000

    async def test(cluster: Cluster) -> None:
        stalled = cluster.primaries[2]

        async def stall(request: web.Request) -> web.Response:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await asyncio.sleep(60)  # takes the 100, never reads the body
            return web.Response(status=201)

        stalled.handle = stall  # type: ignore[method-assign]
        assert stalled.runner is not None
        await stalled.runner.cleanup()
        await stalled.start()
        ring = _ring_with_port(cluster, 2, stalled.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        responses = await put_replicas(
            cluster.proxy,
            ring,
            PART,
            path_for,
            per_replica(),
            body_source(data),
            len(data),
            ready,
        )
        assert sorted(statuses(responses)) == [201, 201, 503]
        assert loop.time() - started < 5

    run(test, node_timeout_s=0.5)


# -- object GET: resuming from another replica ---------------------------------------------


async def get_through_proxy(cluster: Cluster, *, newest: bool = False) -> tuple[int, bytes]:
    """GET the object through a one-route app that serves it as the proxy does."""
    from proxy.object_get import answer

    async def handler(request: web.Request) -> web.StreamResponse:
        found = await find_object(
            cluster.proxy,
            cluster.ring,
            PART,
            cluster.ring.get_part_nodes(PART),
            "GET",
            path_for,
            {},
            newest=newest,
        )
        return await answer(request, cluster.proxy, found)

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            try:
                return response.status, await response.read()
            except Exception:
                return -1, b""  # cut short
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("newest", [False, True])
def test_a_get_cut_mid_body_continues_from_another_replica(newest: bool) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: the streamed path

    async def test(cluster: Cluster) -> None:
        for node in cluster.nodes.values():
            node.stored = {path_for(d): data for d in cluster.ring.devices if d}
            node.timestamps = {p: "1700000000.00000" for p in node.stored}
        for node in cluster.primaries:
            node.mode = "die-get"
        cluster.handoff.mode = "ok"  # only the handoff serves whole bodies
        status, body = await get_through_proxy(cluster, newest=newest)
        assert (status, body) == (200, data)
        ranges = [r for r in cluster.handoff.requests if r[0] == "GET"]
        assert len(ranges) == 1

    run(test)


def test_a_get_cut_mid_body_never_continues_with_another_version() -> None:
    data = bytes(range(256)) * 4096
    other = b"x" * len(data)

    async def test(cluster: Cluster) -> None:
        for node in cluster.nodes.values():
            node.stored = {path_for(d): other for d in cluster.ring.devices if d}
        for node in cluster.primaries:
            node.stored = {path_for(d): data for d in cluster.ring.devices if d}
            node.mode = "die-get"
        status, _ = await get_through_proxy(cluster)
        assert status == -1, "a body cut short must not be completed from another version"

    run(test)
