"""Late sysmeta after the checksum footer (``ObjectWrite.expect_footer_meta``, version
``md5+xxh3-64+meta``), run against ObjectEngine (LMDB) and MemoryObjectEngine alike: the
meta part is held back with the footer, its sysmeta stored in the same commit as the object,
kept by a POST, and a bad one stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xxhash

from objectd import checksum_footer
from objectd.checksum_footer import FOOTER_BYTES, ChecksumFooter
from objectd.engine import ObjectEngine
from objectd.errors import ChecksumFooterMismatch, ChecksumFooterMissing, ObjectNotFound
from objectd.memory import MemoryObjectEngine
from objectd.metadata import ObjectMetadata
from service.timestamp import Timestamp

SECRET = b"contract-suite-secret"
DEV = "sda"
PART = 7
INLINE = 3000
BLOCK = 1024
T0 = 1_700_000_000.0
CRC32 = "X-Object-Sysmeta-S3-Checksum-Crc32"
SHA1 = "x-object-sysmeta-s3-checksum-sha1"  # any case: stored title-cased, as a header is
LAYOUT = ((CRC32, 8), (SHA1, 28))
VALUES = {CRC32: "NhCmhg==", SHA1: "qvTGHdzF6KLavt4PO0gs2a6pQ00="}
STORED = {
    "X-Object-Sysmeta-S3-Checksum-Crc32": "NhCmhg==",
    "X-Object-Sysmeta-S3-Checksum-Sha1": "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
}


def ts(offset_s: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + offset_s)


@pytest.fixture(params=["lmdb", "memory"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    (tmp_path / DEV).mkdir()
    options: dict[str, Any] = {"inline_max_bytes": INLINE, "block_size_bytes": BLOCK}
    if request.param == "lmdb":
        made: Any = ObjectEngine(str(tmp_path), SECRET, clock=lambda: T0 + 10_000, **options)
    else:
        made = MemoryObjectEngine([DEV], SECRET, clock=lambda: T0 + 10_000, **options)
    made.test_root = tmp_path
    yield made
    made.close()


def leftovers(engine: Any) -> list[str]:
    """Data and temporary files on the device (none for the in-memory engine)."""
    top: Path = engine.test_root / DEV
    return sorted(str(p) for p in top.rglob("*") if p.parent.name == "tmp" or p.suffix == ".data")


def stream_of(data: bytes, values: dict[str, str] = VALUES) -> bytes:
    md5_hex = hashlib.md5(data, usedforsecurity=False).hexdigest()
    footer = checksum_footer.encode(ChecksumFooter(md5_hex, xxhash.xxh3_64(data).hexdigest()))
    return data + footer + checksum_footer.encode_meta(LAYOUT, values)


async def put_late(
    engine: Any,
    stream: bytes,
    timestamp: Timestamp,
    *,
    chunk_bytes: int = 65_536,
    declared: bool = True,
) -> ObjectMetadata:
    tail = FOOTER_BYTES + checksum_footer.meta_part_bytes(LAYOUT)
    length = len(stream) - tail if declared else None
    write = await engine.open_write(
        DEV, PART, "AUTH_a", "c", "o", timestamp, content_length=length, checksum_footer=True
    )
    async with write:
        write.expect_footer_meta(LAYOUT)
        assert write.footer_bytes == tail
        for i in range(0, len(stream), chunk_bytes):
            await write.write(stream[i : i + chunk_bytes])
        return await write.commit("text/plain", {"X-Object-Meta-Color": "blue"})


def get(engine: Any) -> ObjectMetadata:
    return engine.get(DEV, PART, "AUTH_a", "c", "o")


@pytest.mark.parametrize("size", [0, 1, INLINE, INLINE + 1, 3 * BLOCK + 7], ids=str)
@pytest.mark.parametrize("chunk_bytes", [1, 48, 83, 84, 85, 1025])  # the tail is 84 bytes
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_late_sysmeta_is_committed_with_the_object(
    engine: Any, size: int, chunk_bytes: int, declared: bool
) -> None:
    data = random.Random(size).randbytes(size)

    async def main() -> None:
        meta = await put_late(
            engine, stream_of(data), ts(1), chunk_bytes=chunk_bytes, declared=declared
        )
        assert meta.user_meta == {"X-Object-Meta-Color": "blue", **STORED}
        assert (meta.size_bytes, meta.etag) == (size, hashlib.md5(data).hexdigest())
        assert get(engine) == meta
        read = b"".join([chunk async for chunk in engine.read(meta, 0, None)])
        assert read == data

    asyncio.run(main())


def test_a_post_keeps_late_sysmeta(engine: Any) -> None:
    async def main() -> None:
        await put_late(engine, stream_of(b"posted"), ts(1))
        await engine.post(DEV, PART, "AUTH_a", "c", "o", ts(2), None, {"X-Object-Meta-Shape": "o"})
        assert get(engine).user_meta == {"X-Object-Meta-Shape": "o", **STORED}

    asyncio.run(main())


@pytest.mark.parametrize("size", [100, INLINE + 100], ids=["inline", "file"])
@pytest.mark.parametrize("damage", ["value", "check", "data"])
def test_a_bad_meta_part_stores_nothing(engine: Any, size: int, damage: str) -> None:
    data = random.Random(3).randbytes(size)
    stream = bytearray(stream_of(data))
    if damage == "value":
        stream[-17] ^= 0x02  # the last value's last byte
    elif damage == "check":
        stream[-1] = ord("0") if stream[-1] != ord("0") else ord("1")
    else:
        stream[size // 2] ^= 0x01

    async def main() -> None:
        with pytest.raises(ChecksumFooterMismatch):
            await put_late(engine, bytes(stream), ts(1))
        with pytest.raises(ObjectNotFound):
            get(engine)
        assert leftovers(engine) == []

    asyncio.run(main())


def test_a_stream_shorter_than_the_tail_stores_nothing(engine: Any) -> None:
    async def main() -> None:
        with pytest.raises(ChecksumFooterMissing):
            await put_late(engine, b"0" * 83, ts(1), declared=False)
        with pytest.raises(ObjectNotFound):
            get(engine)

    asyncio.run(main())


def test_expect_footer_meta_needs_a_footer_and_no_chunk_yet(engine: Any) -> None:
    async def main() -> None:
        plain = await engine.open_write(DEV, PART, "AUTH_a", "c", "o", ts(1), content_length=3)
        async with plain:
            with pytest.raises(RuntimeError):
                plain.expect_footer_meta(LAYOUT)
        started = await engine.open_write(
            DEV, PART, "AUTH_a", "c", "o", ts(2), content_length=3, checksum_footer=True
        )
        async with started:
            await started.write(b"abc")
            with pytest.raises(RuntimeError):
                started.expect_footer_meta(LAYOUT)

    asyncio.run(main())
