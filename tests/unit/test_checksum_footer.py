"""The checksum footer (objectd/checksum_footer.py): its format, and the object server's side
of it over MemoryObjectEngine (statuses, what is stored)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import xxhash
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from objectd import checksum_footer
from objectd.checksum_footer import (
    FOOTER_BYTES,
    FOOTER_HEADER,
    ChecksumFooter,
    FooterFormatError,
    FooterHoldback,
)
from objectd.errors import ObjectNotFound
from objectd.memory import MemoryObjectEngine
from objectd.server import build_app
from service.config import ClusterConfig, ObjectServerConfig
from service.timestamp import Timestamp

SECRET = "unit-secret"
T0 = 1_700_000_000.0
PATH = "/sda/1/AUTH_a/c/o"


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def footer_of(data: bytes) -> bytes:
    return checksum_footer.encode(ChecksumFooter(md5(data), xxhash.xxh3_64(data).hexdigest()))


# -- the format ------------------------------------------------------------------------------


def test_golden_bytes() -> None:
    footer = footer_of(b"hello")
    assert footer == b"5d41402abc4b2a76b9719d911017c592" + b"9555e8555c62dcfd"
    assert checksum_footer.decode(footer) == ChecksumFooter(
        "5d41402abc4b2a76b9719d911017c592", "9555e8555c62dcfd"
    )


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"0" * 47,
        b"0" * 49,
        b"5D41402ABC4B2A76B9719D911017C592" + b"9555e8555c62dcfd",  # lowercase only
        b"g" * 48,
        b" " * 48,
    ],
)
def test_malformed_footers_are_refused(bad: bytes) -> None:
    with pytest.raises(FooterFormatError):
        checksum_footer.decode(bad)


def test_encode_refuses_what_decode_would() -> None:
    with pytest.raises(FooterFormatError):
        checksum_footer.encode(ChecksumFooter("0" * 31, "0" * 16))


@given(st.binary(max_size=300), st.lists(st.integers(0, 120), max_size=12))
def test_holdback_splits_any_chunking(stream: bytes, cuts: list[int]) -> None:
    holdback, released, at = FooterHoldback(), [], 0
    for size in [*cuts, len(stream)]:
        chunk = stream[at : at + size]
        if chunk:
            pieces = holdback.feed(chunk)
            assert all(type(p) is bytes for p in pieces)  # whole chunks, never copied or cut
            released += pieces
        at += size
    assert holdback.held_bytes == len(stream) - len(b"".join(released))
    rest, footer = holdback.end()
    data = b"".join(released) + b"".join(bytes(p) for p in rest)
    if len(stream) >= FOOTER_BYTES:
        assert data == stream[:-FOOTER_BYTES]
        assert footer == stream[-FOOTER_BYTES:]
    else:
        assert (data, footer) == (b"", None)
    assert all(released) and all(rest)  # no empty pieces


def test_holdback_releases_one_chunk_per_chunk() -> None:
    holdback = FooterHoldback()
    chunks = [bytes([i]) * 1000 for i in range(5)]
    assert holdback.feed(chunks[0]) == []
    for previous, chunk in itertools.pairwise(chunks):
        assert holdback.feed(chunk) == [previous]
    rest, footer = holdback.end()
    assert [bytes(p) for p in rest] == [chunks[4][:-FOOTER_BYTES]]
    assert footer == chunks[4][-FOOTER_BYTES:]


# -- the object server's side ----------------------------------------------------------------


def run(test: Callable[[TestClient, MemoryObjectEngine], Awaitable[None]]) -> None:
    """The object server app over MemoryObjectEngine (64-byte inline bodies, 16-byte blocks)."""

    async def main() -> None:
        engine = MemoryObjectEngine(
            ["sda"], SECRET.encode(), inline_max_bytes=64, block_size_bytes=16, clock=lambda: T0
        )
        config = ObjectServerConfig(mount_check=False)
        app = build_app(config, ClusterConfig(SECRET), engine=engine, rng=random.Random(0))
        async with TestClient(TestServer(app)) as client:
            await test(client, engine)

    asyncio.run(main())


async def put(client: TestClient, path: str, body: Any, at: float = 0, **headers: str) -> Any:
    sent = {
        "X-Timestamp": Timestamp.from_seconds(T0 + at).normal,
        "Content-Type": "application/octet-stream",
        **headers,
    }
    async with client.put(path, data=body, headers=sent) as response:
        await response.read()
        return response


def footer_headers(**extra: str) -> dict[str, str]:
    return {FOOTER_HEADER: "md5+xxh3-64", **extra}


def chunked(body: bytes, size: int = 37) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(body), size):
            yield body[i : i + size]

    return gen()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 1000])  # inline is 64 bytes here
@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_good_footer_stores_the_data_with_the_footers_etag(size: int, transfer: str) -> None:
    data = random.Random(size).randbytes(size)
    body = data + footer_of(data)

    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        sent = body if transfer == "content-length" else chunked(body)
        reply = await put(client, PATH, sent, **footer_headers())
        assert reply.status == 201, await reply.text()
        assert reply.headers["ETag"] == f'"{md5(data)}"'
        async with client.get(PATH) as got:
            assert (got.status, await got.read()) == (200, data)
            assert got.headers["Content-Length"] == str(size)
            assert got.headers["ETag"] == f'"{md5(data)}"'
        meta = engine.get("sda", 1, "AUTH_a", "c", "o")
        assert (meta.size_bytes, meta.etag) == (size, md5(data))

    run(test)


def test_the_md5_is_not_computed_with_a_footer() -> None:
    data = b"x" * 500
    # A footer whose MD5 is not the data's (but whose xxh3 is): the server trusts the MD5.
    footer = checksum_footer.encode(ChecksumFooter("0" * 32, xxhash.xxh3_64(data).hexdigest()))

    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        reply = await put(client, PATH, data + footer, **footer_headers())
        assert (reply.status, reply.headers["ETag"]) == (201, f'"{"0" * 32}"')

    run(test)


@pytest.mark.parametrize("size", [10, 1000], ids=["inline", "file"])
@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_damaged_body_is_422_and_stores_nothing(size: int, transfer: str) -> None:
    data = random.Random(1).randbytes(size)
    damaged = bytearray(data)
    damaged[size // 2] ^= 0x01
    body = bytes(damaged) + footer_of(data)

    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        sent = body if transfer == "content-length" else chunked(body)
        reply = await put(client, PATH, sent, **footer_headers())
        assert reply.status == 422
        assert "xxh3" in await reply.text()
        with pytest.raises(ObjectNotFound):
            engine.get("sda", 1, "AUTH_a", "c", "o")

    run(test)


@pytest.mark.parametrize(
    "footer",
    [b"Z" * 48, b"5D41402ABC4B2A76B9719D911017C592" + b"9555e8555c62dcfd"],
    ids=["not-hex", "uppercase"],
)
def test_a_malformed_footer_is_422(footer: bytes) -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        reply = await put(client, PATH, b"hello" + footer, **footer_headers())
        assert reply.status == 422
        with pytest.raises(ObjectNotFound):
            engine.get("sda", 1, "AUTH_a", "c", "o")

    run(test)


def test_a_client_etag_that_differs_from_the_footers_md5_is_422() -> None:
    data = b"what the proxy saw"

    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        reply = await put(
            client, PATH, data + footer_of(data), **footer_headers(ETag=md5(b"something else"))
        )
        assert reply.status == 422
        with pytest.raises(ObjectNotFound):
            engine.get("sda", 1, "AUTH_a", "c", "o")
        reply = await put(
            client, PATH, data + footer_of(data), at=1, **footer_headers(ETag=f'"{md5(data)}"')
        )
        assert reply.status == 201

    run(test)


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_a_body_shorter_than_the_footer_is_400(transfer: str) -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        body = b"0" * (FOOTER_BYTES - 1)
        sent = body if transfer == "content-length" else chunked(body, 10)
        reply = await put(client, PATH, sent, **footer_headers())
        assert reply.status == 400
        with pytest.raises(ObjectNotFound):
            engine.get("sda", 1, "AUTH_a", "c", "o")

    run(test)


def test_an_unknown_footer_kind_is_400() -> None:
    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        data = b"abc"
        reply = await put(client, PATH, data + footer_of(data), **{FOOTER_HEADER: "sha256"})
        assert reply.status == 400

    run(test)


def test_without_the_header_the_last_48_bytes_are_data() -> None:
    data = b"abc"
    body = data + footer_of(data)

    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        reply = await put(client, PATH, body)
        assert (reply.status, reply.headers["ETag"]) == (201, f'"{md5(body)}"')
        async with client.get(PATH) as got:
            assert await got.read() == body

    run(test)


def test_the_footer_header_is_not_stored() -> None:
    data = b"abc"

    async def test(client: TestClient, engine: MemoryObjectEngine) -> None:
        assert (await put(client, PATH, data + footer_of(data), **footer_headers())).status == 201
        async with client.head(PATH) as got:
            assert FOOTER_HEADER not in got.headers

    run(test)
