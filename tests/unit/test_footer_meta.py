"""Late sysmeta in the checksum footer (version ``md5+xxh3-64+meta``): the format
(service/checksum_footer.py), the object server's holdback of the footer and its meta part
(objectd/checksum_footer.py), a real object server process storing the sysmeta with the
object (objectd/upload.py, http_headers.py), and the proxy's PUT fan-out sending it
(proxy/streaming.py ``put_replicas`` with ``late_sysmeta``) to real object servers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st
from server_process import ServerProcess

from objectd.checksum_footer import FOOTER_BYTES, FooterHoldback
from proxy import backend, streaming
from proxy.config import ProxyConfig
from proxy.context import Proxy, open_pool
from proxy.nodes import NodeErrors
from proxy.streaming import LateSysmeta, put_replicas
from ring.builder import RingBuilder
from ring.device import Device
from ring.ring import Ring
from service import checksum_footer
from service.checksum_footer import (
    FOOTER_HEADER,
    FOOTER_KIND,
    FOOTER_KIND_META,
    META_HEADER,
    ChecksumFooter,
    FooterFormatError,
)
from service.config import ClusterConfig
from service.timestamp import Timestamp

CRC32 = "X-Object-Sysmeta-S3-Checksum-Crc32"
SHA256 = "X-Object-Sysmeta-S3-Checksum-Sha256"
LAYOUT = ((CRC32, 8),)


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def footer_of(data: bytes) -> bytes:
    return checksum_footer.encode(ChecksumFooter(md5(data), xxhash.xxh3_64(data).hexdigest()))


def body_of(data: bytes, values: Mapping[str, str], layout=LAYOUT) -> bytes:  # type: ignore[no-untyped-def]
    return data + footer_of(data) + checksum_footer.encode_meta(layout, values)


# -- the format ------------------------------------------------------------------------------


def test_golden_bytes() -> None:
    assert checksum_footer.encode_meta_header(LAYOUT) == "X-Object-Sysmeta-S3-Checksum-Crc32=8"
    assert crc32_b64(b"hello") == "NhCmhg=="
    part = checksum_footer.encode_meta(LAYOUT, {CRC32: "NhCmhg=="})
    assert part == b"NhCmhg==" + b"86e4e8f0f0483b78"  # the values, then their xxh3-64
    assert checksum_footer.meta_part_bytes(LAYOUT) == len(part) == 24
    assert checksum_footer.decode_meta(LAYOUT, part) == {CRC32: "NhCmhg=="}
    two = checksum_footer.decode_meta_header(f" {CRC32}=8 , {SHA256}=44")
    assert two == ((CRC32, 8), (SHA256, 44))


_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
_VALUE = st.text(
    st.characters(
        min_codepoint=0x21,
        max_codepoint=0x2FFF,
        exclude_categories=("Cs",),
        exclude_characters="\x7f",
    ),
    min_size=1,
    max_size=40,
)


@given(st.dictionaries(_NAME, _VALUE, min_size=1, max_size=5))
def test_round_trip(items: dict[str, str]) -> None:
    values = {"X-Object-Sysmeta-" + name: value for name, value in items.items()}
    layout = tuple((name, len(value.encode())) for name, value in values.items())
    header = checksum_footer.encode_meta_header(layout)
    assert checksum_footer.decode_meta_header(header) == layout
    part = checksum_footer.encode_meta(layout, values)
    assert len(part) == checksum_footer.meta_part_bytes(layout)
    assert checksum_footer.decode_meta(layout, part) == values


@pytest.mark.parametrize(
    "declared",
    [
        "",
        "X-Object-Meta-Color=3",  # user metadata: only sysmeta may come late
        "X-Object-Transient-Sysmeta-Crypto=3",
        "Content-Type=3",
        "X-Object-Sysmeta-=3",  # the prefix alone names nothing
        f"{CRC32}",
        f"{CRC32}=",
        f"{CRC32}=0",
        f"{CRC32}=-1",
        f"{CRC32}=8x",
        f"{CRC32}=\uff18",  # a full-width 8: isdigit() but not ASCII
        f"{CRC32}=999999",
        f"{CRC32}=8,{CRC32.lower()}=8",  # twice
        "X-Object-Sysmeta-A B=3",
        f"{CRC32}=4097,{SHA256}=4096",  # over MAX_META_VALUE_BYTES together
    ],
)
def test_bad_declarations_are_refused(declared: str) -> None:
    with pytest.raises(FooterFormatError):
        checksum_footer.decode_meta_header(declared)


def test_encode_refuses_what_decode_would() -> None:
    with pytest.raises(FooterFormatError):
        checksum_footer.encode_meta_header((("X-Object-Meta-Color", 3),))
    with pytest.raises(FooterFormatError):
        checksum_footer.encode_meta_header(())
    for values in (
        {CRC32: "NhCmhg="},  # 7 bytes for 8
        {CRC32: "NhCmhg==="},
        {},
        {CRC32: "NhCmhg==", SHA256: "x"},
        {CRC32: "NhCm\r\n=="},
        {CRC32: " NhCmhg="},
        {CRC32: "NhCmhg\ud800"},
    ):
        with pytest.raises(FooterFormatError):
            checksum_footer.encode_meta(LAYOUT, values)


@pytest.mark.parametrize(
    "part",
    [
        b"",
        b"NhCmhg==86e4e8f0f0483b7",  # one byte short
        b"NhCmhg==86e4e8f0f0483b788",
        b"NhCmhg=+86e4e8f0f0483b78",  # a value byte changed: its xxh3 no longer matches
        b"NhCmhg==86e4e8f0f0483b79",
        b"NhCmhg==86E4E8F0F0483B78",
        b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"
        + xxhash.xxh3_64(b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8").hexdigest().encode(),
        b"Nh\r\ng===" + xxhash.xxh3_64(b"Nh\r\ng===").hexdigest().encode(),
    ],
)
def test_malformed_meta_parts_are_refused(part: bytes) -> None:
    with pytest.raises(FooterFormatError):
        checksum_footer.decode_meta(LAYOUT, part)


# -- the holdback ----------------------------------------------------------------------------


def _split(stream: bytes, cuts: tuple[int, ...], tail_bytes: int) -> tuple[bytes, bytes | None]:
    holdback, released, at = FooterHoldback(tail_bytes), [], 0
    for cut in (*cuts, len(stream)):
        chunk = stream[at:cut]
        if chunk:
            pieces = holdback.feed(chunk)
            assert all(type(p) is bytes for p in pieces)  # whole chunks, never copied or cut
            released += pieces
        at = max(at, cut)
    rest, tail = holdback.end()
    assert all(released) and all(rest)  # no empty pieces
    return b"".join(released) + b"".join(bytes(p) for p in rest), tail


def test_holdback_of_the_footer_and_meta_part_at_every_split() -> None:
    """Every way to cut a stream in two and in three (the cuts inside or near the tail):
    the data and the whole tail (48 + the meta part) always come out apart."""
    data = random.Random(5).randbytes(40)
    stream = body_of(data, {CRC32: crc32_b64(data)})
    tail_bytes = FOOTER_BYTES + checksum_footer.meta_part_bytes(LAYOUT)
    assert len(stream) == len(data) + tail_bytes == 112
    for i in range(len(stream) + 1):
        assert _split(stream, (i,), tail_bytes) == (data, stream[len(data) :])
        for j in range(max(i, 30), len(stream) + 1):
            assert _split(stream, (i, j), tail_bytes) == (data, stream[len(data) :])


def test_holdback_of_a_stream_shorter_than_the_tail() -> None:
    tail_bytes = FOOTER_BYTES + 24
    for size in range(tail_bytes):
        assert _split(b"x" * size, (size // 2,), tail_bytes) == (b"", None)
    assert _split(b"x" * tail_bytes, (3,), tail_bytes) == (b"", b"x" * tail_bytes)


# -- a real object server ------------------------------------------------------------------

_last_raw = 0


def next_ts() -> str:
    global _last_raw
    _last_raw = max(Timestamp.from_seconds(time.time()).raw, _last_raw + 1)
    return Timestamp(_last_raw).normal


@pytest.fixture(scope="module")
def object_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One object server with four devices (the proxy tests' ring uses all of them)."""
    server = ServerProcess("object", tmp_path_factory.mktemp("footer-meta"))
    for device in DEVICES:
        (server.devices / device).mkdir()
    server.start()
    yield server
    server.stop()


DEVICES = ("d0", "d1", "d2", "d3")


def call(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    chunked: bool = False,
    **headers: str,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = server.connection()
    try:
        sent = (
            (body[i : i + 65_537] for i in range(0, len(body), 65_537))
            if chunked and body
            else body
        )
        conn.request(method, path, body=sent, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def put(server: ServerProcess, path: str, body: bytes, *, chunked: bool = False, **headers: str):  # type: ignore[no-untyped-def]
    sent = {"X-Timestamp": next_ts(), "Content-Type": "application/octet-stream", **headers}
    return call(server, "PUT", path, body, chunked=chunked, **sent)


def meta_headers(layout=LAYOUT, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        FOOTER_HEADER: FOOTER_KIND_META,
        META_HEADER: checksum_footer.encode_meta_header(layout),
        **extra,
    }


def left_no_files(server: ServerProcess) -> bool:
    for device in DEVICES:
        tmp = server.devices / device / "tmp"
        if tmp.exists() and list(tmp.iterdir()):
            return False
    return True


@pytest.mark.parametrize("size", [10, 200_000], ids=["inline", "file"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_late_sysmeta_is_stored_with_the_object(
    object_server: ServerProcess, size: int, chunked: bool
) -> None:
    data = random.Random(size).randbytes(size)
    values = {CRC32: crc32_b64(data), SHA256: sha256_b64(data)}
    layout = ((CRC32, 8), (SHA256, 44))
    path = f"/d0/1/AUTH_a/c/late-{size}-{chunked}"
    status, headers, reply = put(
        object_server,
        path,
        body_of(data, values, layout),
        chunked=chunked,
        **meta_headers(layout, **{"X-Object-Meta-Color": "blue"}),
    )
    assert status == 201, reply
    assert headers["ETag"] == f'"{md5(data)}"'
    for method in ("HEAD", "GET"):
        status, headers, body = call(object_server, method, path)
        assert status == 200
        assert headers["X-Object-Sysmeta-S3-Checksum-Crc32"] == values[CRC32]
        assert headers["X-Object-Sysmeta-S3-Checksum-Sha256"] == values[SHA256]
        assert headers["X-Object-Meta-Color"] == "blue"
        assert headers["Content-Length"] == str(size)
        assert body == (data if method == "GET" else b"")


def test_a_post_keeps_late_sysmeta(object_server: ServerProcess) -> None:
    data = b"kept through a POST"
    path = "/d0/1/AUTH_a/c/posted"
    status, _, _ = put(
        object_server,
        path,
        body_of(data, {CRC32: crc32_b64(data)}),
        **meta_headers(**{"X-Object-Meta-Color": "blue"}),
    )
    assert status == 201
    status, _, _ = call(
        object_server,
        "POST",
        path,
        **{"X-Timestamp": next_ts(), "X-Object-Meta-Shape": "round"},
    )
    assert status == 202
    status, headers, _ = call(object_server, "HEAD", path)
    assert status == 200
    assert headers[CRC32] == crc32_b64(data)
    assert headers["X-Object-Meta-Shape"] == "round"
    assert "X-Object-Meta-Color" not in headers  # a POST replaces user metadata


@pytest.mark.parametrize("size", [10, 200_000], ids=["inline", "file"])
@pytest.mark.parametrize("damage", ["value", "xxh3", "short", "not-utf8", "data"])
def test_a_bad_meta_part_commits_nothing(
    object_server: ServerProcess, size: int, damage: str
) -> None:
    data = random.Random(7).randbytes(size)
    path = f"/d0/1/AUTH_a/c/bad-{size}-{damage}"
    status, _, _ = put(
        object_server, path, b"old" + footer_of(b"old"), **{FOOTER_HEADER: FOOTER_KIND}
    )
    assert status == 201
    body = bytearray(body_of(data, {CRC32: crc32_b64(data)}))
    if damage == "value":
        body[-20] ^= 0x01  # a value byte: still base64-ish, but not what its xxh3 says
    elif damage == "xxh3":
        body[-1] = ord("0") if body[-1] != ord("0") else ord("1")
    elif damage == "short":
        del body[-1]
    elif damage == "not-utf8":
        bad = b"\xff" * 8
        body[-24:] = bad + xxhash.xxh3_64(bad).hexdigest().encode()
    else:  # the data's last byte: the footer's xxh3 no longer matches
        body[size - 1] ^= 0x01
    status, _, reply = put(object_server, path, bytes(body), **meta_headers())
    assert status == 422, reply  # short: the tail held back begins a byte early
    status, headers, got = call(object_server, "GET", path)
    assert (status, got) == (200, b"old")
    assert CRC32 not in headers
    assert left_no_files(object_server)


@pytest.mark.parametrize(
    "headers",
    [
        {FOOTER_HEADER: FOOTER_KIND_META},  # no declaration
        {FOOTER_HEADER: FOOTER_KIND, META_HEADER: f"{CRC32}=8"},  # a declaration, old version
        {META_HEADER: f"{CRC32}=8"},  # a declaration, no footer
        {FOOTER_HEADER: FOOTER_KIND_META, META_HEADER: "X-Object-Meta-Color=8"},
        {FOOTER_HEADER: FOOTER_KIND_META, META_HEADER: f"{CRC32}=8", CRC32: "AAAAAA=="},
    ],
    ids=["undeclared", "old-version", "no-footer", "not-sysmeta", "also-a-header"],
)
def test_a_bad_declaration_is_400_before_the_body(
    object_server: ServerProcess, headers: dict[str, str]
) -> None:
    """Answered before any body byte: with Expect: 100-continue, no 100 comes."""
    data = b"never sent"
    body = body_of(data, {CRC32: crc32_b64(data)})
    conn = object_server.connection()
    try:
        conn.putrequest("PUT", "/d0/1/AUTH_a/c/refused")
        sent = {
            "X-Timestamp": next_ts(),
            "Content-Type": "text/plain",
            "Content-Length": str(len(body)),
            "Expect": "100-continue",
            **headers,
        }
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()  # the final answer, not a 100: http.client skips 1xx
        assert response.status == 400, response.read()
    finally:
        conn.close()
    assert call(object_server, "HEAD", "/d0/1/AUTH_a/c/refused")[0] == 404


# -- the proxy's fan-out, to real object servers ---------------------------------------------

PART = 0


def path_for(node: Device) -> str:
    return backend.backend_path(node.device, PART, "a", "c", "o")


def run_proxy(server: ServerProcess, test: Callable[[Proxy, Ring], Awaitable[None]]) -> None:
    """A proxy (its config, pool, a 4-device 3-replica ring over ``server``) in this process."""

    async def main() -> None:
        builder = RingBuilder(1, 3, 0)
        for i, device in enumerate(DEVICES):
            builder.add_dev(
                region=1, zone=i, ip="127.0.0.1", port=server.port, device=device, weight=1.0
            )
        builder.rebalance(seed=3)
        ring = Ring(builder.get_ring(), server.secret.encode())
        config = ProxyConfig(conn_timeout_s=2.0, node_timeout_s=5.0, post_quorum_timeout_s=2.0)
        async with open_pool(config) as pool:
            proxy = Proxy(
                config=config,
                cluster=ClusterConfig(server.secret),
                account_ring=ring,
                container_ring=ring,
                object_ring=ring,
                pool=pool,
                errors=NodeErrors(10, 60.0),
                tokens=None,  # type: ignore[arg-type]
            )
            await test(proxy, ring)

    asyncio.run(main())


def body_source(data: bytes, piece: int = 65_536) -> Callable[[], Awaitable[list[bytes]]]:
    offset = 0

    async def read() -> list[bytes]:
        nonlocal offset
        await asyncio.sleep(0)
        chunk = data[offset : offset + piece]
        offset += len(chunk)
        return [chunk] if chunk else []

    return read


async def ready() -> None:
    return None


class CrcAtTheEnd:
    """As the S3 layer's trailer checksum: the value exists only once the body has passed."""

    def __init__(self, data: bytes, read: Callable[[], Awaitable[list[bytes]]]) -> None:
        self.data, self._read, self.value, self.asked = data, read, None, 0

    async def read(self) -> list[bytes]:
        chunk = await self._read()
        if not chunk:
            self.value = crc32_b64(self.data)
        return chunk

    def values(self) -> dict[str, str]:
        self.asked += 1
        assert self.value is not None, "asked for before the body's end"
        return {CRC32: self.value}


@pytest.mark.parametrize("size", [1000, 300_000], ids=["small", "streamed"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_put_replicas_sends_late_sysmeta_to_every_replica(
    object_server: ServerProcess, size: int, chunked: bool
) -> None:
    data = random.Random(size + chunked).randbytes(size)
    late = CrcAtTheEnd(data, body_source(data))
    obj = f"/a/c/o-{size}-{chunked}"

    async def test(proxy: Proxy, ring: Ring) -> None:
        responses = await put_replicas(
            proxy,
            ring,
            PART,
            lambda node: backend.backend_path(node.device, PART, "a", "c", obj[5:]),
            [{"X-Timestamp": next_ts(), "Content-Type": "text/plain"}] * 3,
            late.read,
            None if chunked else size,
            ready,
            late_sysmeta=LateSysmeta(names_and_lengths=LAYOUT, values=late.values),
        )
        assert [r.status if r else None for r in responses] == [201, 201, 201]
        assert {r.headers["ETag"] for r in responses if r} == {f'"{md5(data)}"'}
        for node in ring.get_part_nodes(PART):
            path = backend.backend_path(node.device, PART, "a", "c", obj[5:])
            status, headers, body = call(object_server, "GET", path)
            assert (status, body) == (200, data)
            assert headers[CRC32] == crc32_b64(data)

    run_proxy(object_server, test)
    assert late.asked == 1


@pytest.mark.parametrize("size", [1000, 300_000], ids=["small", "streamed"])
def test_a_late_value_of_the_wrong_length_stores_nothing(
    object_server: ServerProcess, size: int
) -> None:
    data = b"w" * size
    name = f"wrong-{size}"

    async def test(proxy: Proxy, ring: Ring) -> None:
        with pytest.raises(FooterFormatError):
            await put_replicas(
                proxy,
                ring,
                PART,
                lambda node: backend.backend_path(node.device, PART, "a", "c", name),
                [{"X-Timestamp": next_ts(), "Content-Type": "text/plain"}] * 3,
                body_source(data),
                size,
                ready,
                late_sysmeta=LateSysmeta(LAYOUT, lambda: {CRC32: "too long for 8"}),
            )
        await asyncio.sleep(0.2)  # any replica that would commit has had the time to

    run_proxy(object_server, test)
    for device in DEVICES:
        path = backend.backend_path(device, PART, "a", "c", name)
        assert call(object_server, "HEAD", path)[0] == 404
    assert left_no_files(object_server)


def test_without_late_sysmeta_the_footer_is_as_before() -> None:
    """The hot path: same headers, same 48 bytes, as the plain footer always sent."""
    digest = streaming.FooterDigest()
    digest.update(b"hello")
    assert digest.headers == {FOOTER_HEADER: FOOTER_KIND}
    assert digest.tail_bytes == FOOTER_BYTES
    assert digest.encode() == footer_of(b"hello")
    late = streaming.FooterDigest(LateSysmeta(LAYOUT, lambda: {CRC32: "NhCmhg=="}))
    late.update(b"hello")
    assert late.headers == {FOOTER_HEADER: FOOTER_KIND_META, META_HEADER: f"{CRC32}=8"}
    assert late.tail_bytes == FOOTER_BYTES + 24
    assert late.encode() == footer_of(b"hello") + b"NhCmhg==86e4e8f0f0483b78"


def test_a_bad_declaration_fails_before_any_request() -> None:
    with pytest.raises(FooterFormatError):
        streaming.FooterDigest(LateSysmeta((("X-Object-Meta-Color", 3),), dict))


def test_with_footer_meta_off_late_sysmeta_is_not_sent(
    object_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rolling-upgrade switch: off, the PUT is as before (plain footer), nothing stored
    late, and the values are never asked for."""
    monkeypatch.setattr(streaming, "SEND_FOOTER_META", False)
    data = b"o" * 5000
    asked = []

    async def test(proxy: Proxy, ring: Ring) -> None:
        responses = await put_replicas(
            proxy,
            ring,
            PART,
            lambda node: backend.backend_path(node.device, PART, "a", "c", "off"),
            [{"X-Timestamp": next_ts(), "Content-Type": "text/plain"}] * 3,
            body_source(data),
            len(data),
            ready,
            late_sysmeta=LateSysmeta(LAYOUT, lambda: asked.append(1) or {CRC32: "NhCmhg=="}),
        )
        assert [r.status if r else None for r in responses] == [201, 201, 201]
        for node in ring.get_part_nodes(PART):
            path = backend.backend_path(node.device, PART, "a", "c", "off")
            status, headers, body = call(object_server, "GET", path)
            assert (status, body) == (200, data)
            assert CRC32 not in headers

    run_proxy(object_server, test)
    assert asked == []
