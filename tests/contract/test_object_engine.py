"""The object engine's contract, run against ObjectEngine (LMDB) and MemoryObjectEngine.

Both must behave the same wherever a caller can tell; tests of what only the real engine has
(files on disk, group commit, ENOSPC, a full LMDB map) are marked with ``only_lmdb``.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import os
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xxhash

from objectd import checksum_footer, layout
from objectd.checksum_footer import FOOTER_BYTES, ChecksumFooter
from objectd.engine import ObjectEngine
from objectd.errors import (
    ChecksumFooterMismatch,
    ChecksumFooterMissing,
    DeviceUnavailable,
    DiskFull,
    EtagMismatch,
    ObjectConflict,
    ObjectNotFound,
    Quarantined,
    SizeMismatch,
)
from objectd.memory import MemoryObjectEngine
from objectd.metadata import ObjectMetadata
from service.timestamp import Timestamp

SECRET = b"contract-suite-secret"
DEV = "sda"
PART = 7
INLINE = 3000  # small sizes so that every boundary is cheap to reach
BLOCK = 1024
T0 = 1_700_000_000.0


def ts(offset_s: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + offset_s)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0 + 10_000

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    kind: str
    root: Path
    clock: FakeClock
    engine: Any = None

    def make(self, **options: Any) -> Any:
        """A new engine over the same storage (the LMDB one must be closed first)."""
        options = {"inline_max_bytes": INLINE, "block_size_bytes": BLOCK, **options}
        if self.kind == "lmdb":
            return ObjectEngine(str(self.root), SECRET, clock=self.clock, **options)
        options.pop("max_batch", None)
        options.pop("map_size_bytes", None)
        return MemoryObjectEngine([DEV], SECRET, clock=self.clock, **options)

    def reopen(self) -> Any:
        if self.kind == "lmdb":
            self.engine.close()
            self.engine = self.make()
        return self.engine

    def corrupt(self, meta: ObjectMetadata, offset: int) -> None:
        if self.kind == "lmdb":
            _corrupt_lmdb_body_for_test(self.engine, meta, offset)
        else:
            self.engine.corrupt_body_for_test(meta, offset)

    def data_files(self) -> list[str]:
        """Every data file under <device>/objects (none for the in-memory engine)."""
        top = self.root / DEV / "objects"
        return sorted(str(p.relative_to(top)) for p in top.rglob("*.data")) if top.exists() else []

    def temp_files(self) -> list[str]:
        top = self.root / DEV / "tmp"
        return sorted(os.listdir(top)) if top.exists() else []


def _corrupt_lmdb_body_for_test(engine: ObjectEngine, meta: ObjectMetadata, offset: int) -> None:
    """Test only: flip one stored byte behind the engine's back, as a failing disk would."""
    path = engine.data_file_path(meta)
    if path is not None:
        with open(path, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0xFF]))
        return
    assert meta.device is not None and meta.partition is not None
    dev = engine._device(meta.device)
    key = layout.index_key(meta.partition, layout.name_hash(SECRET, meta.name), meta.timestamp)
    with dev.env.begin(write=True) as txn:
        body = bytearray(txn.get(key, db=dev.bodies))
        body[offset] ^= 0xFF
        txn.put(key, bytes(body), db=dev.bodies)


@pytest.fixture(params=["lmdb", "memory"])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    (tmp_path / DEV).mkdir()
    harness = Harness(request.param, tmp_path, FakeClock())
    harness.engine = harness.make()
    yield harness
    harness.engine.close()


def only_lmdb(h: Harness) -> None:
    if h.kind != "lmdb":
        pytest.skip("the in-memory engine has no files, LMDB map or writer thread")


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return run


def body_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def put(
    engine: Any,
    obj: str,
    timestamp: Timestamp,
    body: bytes,
    *,
    chunk_bytes: int = 65536,
    content_length: int | None = -1,
    content_type: str = "application/octet-stream",
    user_meta: dict[str, str] | None = None,
    delete_at: int | None = None,
    expected_etag: str | None = None,
    device: str = DEV,
    partition: int = PART,
) -> ObjectMetadata:
    length = len(body) if content_length == -1 else content_length
    write = await engine.open_write(
        device, partition, "AUTH_a", "c", obj, timestamp, content_length=length
    )
    for i in range(0, len(body), chunk_bytes):
        await write.write(body[i : i + chunk_bytes])
    assert (write.size_bytes, write.etag) == (len(body), md5(body))
    return await write.commit(content_type, user_meta, expected_etag, delete_at=delete_at)


def get(engine: Any, obj: str, *, partition: int = PART) -> ObjectMetadata:
    return engine.get(DEV, partition, "AUTH_a", "c", obj)


async def read_all(engine: Any, meta: ObjectMetadata, start: int = 0, end: int | None = None):
    return b"".join([chunk async for chunk in engine.read(meta, start, end)])


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK, INLINE - 1, INLINE, INLINE + 1, 5 * BLOCK + 7], ids=str
)
@async_test
async def test_put_get_read_round_trip(h: Harness, size: int) -> None:
    body = body_of(size, size)
    stored = await put(
        h.engine,
        "o",
        ts(1),
        body,
        content_type="text/plain",
        user_meta={"X-Object-Meta-Color": "blue"},
    )
    meta = get(h.engine, "o")
    assert meta == stored
    assert (meta.name, meta.timestamp, meta.meta_timestamp) == ("/AUTH_a/c/o", ts(1), ts(1))
    assert (meta.etag, meta.size_bytes, meta.content_type) == (md5(body), size, "text/plain")
    assert meta.user_meta == {"X-Object-Meta-Color": "blue"}
    assert meta.body == ("inline" if size <= INLINE else "file")
    assert len(meta.block_hashes) == -(-size // BLOCK)
    assert await read_all(h.engine, meta) == body
    if h.kind == "lmdb":
        assert (h.engine.data_file_path(meta) is not None) == (size > INLINE)


@pytest.mark.parametrize("size", [0, 64 * 1024, 64 * 1024 + 1, (5 << 20) // 2])
@async_test
async def test_default_sizes(h: Harness, size: int) -> None:
    h.engine.close()
    engine = h.engine = h.make(inline_max_bytes=64 * 1024, block_size_bytes=1 << 20)
    body = body_of(size, 3)
    await put(engine, "big", ts(1), body)
    meta = get(engine, "big")
    assert meta.body == ("inline" if size <= 64 * 1024 else "file")
    assert len(meta.block_hashes) == -(-size // (1 << 20))
    assert await read_all(engine, meta) == body
    start, end = min(size, (1 << 20) - 5), min(size, (2 << 20) + 5)  # across block boundaries
    assert await read_all(engine, meta, start, end) == body[start:end]


@pytest.mark.parametrize("size", [2 * BLOCK + 10, 5 * BLOCK + 100], ids=["inline", "file"])
@async_test
async def test_ranges_at_every_boundary(h: Harness, size: int) -> None:
    body = body_of(size, 11)
    meta = await put(h.engine, "r", ts(1), body)
    points = {0, 1, size - 1, size}
    for boundary in range(0, size + 1, BLOCK):
        points |= {boundary - 1, boundary, boundary + 1}
    points = sorted(p for p in points if 0 <= p <= size)
    for start in points:
        for end in points:
            if start <= end:
                assert await read_all(h.engine, meta, start, end) == body[start:end], (start, end)
    assert await read_all(h.engine, meta, 5) == body[5:]
    for start, end in [(-1, 3), (4, 3), (0, size + 1)]:
        with pytest.raises(ValueError):
            await read_all(h.engine, meta, start, end)


@pytest.mark.parametrize("chunk_bytes", [1, 7, 1023, 1025, 4097, 300_001])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@async_test
async def test_streaming_writes_in_odd_chunk_sizes(
    h: Harness, chunk_bytes: int, declared: bool
) -> None:
    size = 700_000 if chunk_bytes > 1 else 3 * BLOCK + 3  # crosses the writer's flush batches
    body = body_of(size, chunk_bytes)
    length = len(body) if declared else None
    meta = await put(h.engine, "s", ts(1), body, chunk_bytes=chunk_bytes, content_length=length)
    assert meta.etag == md5(body)
    assert await read_all(h.engine, meta) == body
    assert h.temp_files() == []


# -- what fails stores nothing ---------------------------------------------------------------


@pytest.mark.parametrize("size", [100, INLINE + 100], ids=["inline", "file"])
@async_test
async def test_etag_mismatch_stores_nothing(h: Harness, size: int) -> None:
    old = await put(h.engine, "e", ts(1), b"old body")
    files_before = h.data_files()
    with pytest.raises(EtagMismatch) as caught:
        await put(h.engine, "e", ts(2), body_of(size), expected_etag="0" * 32)
    assert caught.value.actual == md5(body_of(size))
    assert get(h.engine, "e") == old
    assert await read_all(h.engine, get(h.engine, "e")) == b"old body"
    assert h.data_files() == files_before and h.temp_files() == []
    body = body_of(size)
    meta = await put(h.engine, "e", ts(3), body, expected_etag=f'"{md5(body).upper()}"')
    assert meta.etag == md5(body)


@pytest.mark.parametrize("size", [100, INLINE + 100], ids=["inline", "file"])
@async_test
async def test_size_mismatch_stores_nothing(h: Harness, size: int) -> None:
    body = body_of(size)
    write = await h.engine.open_write(DEV, PART, "AUTH_a", "c", "z", ts(1), content_length=size + 1)
    await write.write(body)
    with pytest.raises(SizeMismatch) as short:
        await write.commit("text/plain")
    assert short.value.short and short.value.received_bytes == size
    with pytest.raises(RuntimeError):
        await write.write(b"more")

    write = await h.engine.open_write(DEV, PART, "AUTH_a", "c", "z", ts(2), content_length=size - 1)
    with pytest.raises(SizeMismatch) as long:
        await write.write(body)
    assert not long.value.short
    with pytest.raises(RuntimeError):
        await write.commit("text/plain")
    with pytest.raises(ObjectNotFound):
        get(h.engine, "z")
    assert h.data_files() == [] and h.temp_files() == []


@async_test
async def test_abort_and_context_manager_discard(h: Harness) -> None:
    write = await h.engine.open_write(DEV, PART, "AUTH_a", "c", "a", ts(1))
    await write.write(body_of(INLINE * 3))
    await write.abort()
    await write.abort()
    with pytest.raises(RuntimeError):
        await write.commit("text/plain")
    async with await h.engine.open_write(DEV, PART, "AUTH_a", "c", "a", ts(2)) as write:
        await write.write(body_of(INLINE * 3))
    with pytest.raises(ObjectNotFound):
        get(h.engine, "a")
    assert h.data_files() == [] and h.temp_files() == []


@async_test
async def test_reserved_headers_are_refused(h: Harness) -> None:
    with pytest.raises(ValueError, match="own field"):
        await put(h.engine, "r", ts(1), b"x", user_meta={"X-Delete-At": "123"})
    with pytest.raises(ObjectNotFound):
        get(h.engine, "r")


# -- the checksum footer (objectd/checksum_footer.py) ---------------------------------------


def with_footer(data: bytes, *, md5_hex: str | None = None, xxh3_hex: str | None = None) -> bytes:
    footer = ChecksumFooter(md5_hex or md5(data), xxh3_hex or xxhash.xxh3_64(data).hexdigest())
    return data + checksum_footer.encode(footer)


async def put_with_footer(
    engine: Any,
    obj: str,
    timestamp: Timestamp,
    stream: bytes,
    *,
    chunk_bytes: int = 65536,
    declared: bool = True,
    expected_etag: str | None = None,
) -> ObjectMetadata:
    length = len(stream) - FOOTER_BYTES if declared else None
    write = await engine.open_write(
        DEV, PART, "AUTH_a", "c", obj, timestamp, content_length=length, checksum_footer=True
    )
    async with write:
        for i in range(0, len(stream), chunk_bytes):
            await write.write(stream[i : i + chunk_bytes])
        return await write.commit("application/octet-stream", None, expected_etag)


@pytest.mark.parametrize("size", [0, 1, BLOCK, INLINE, INLINE + 1, 5 * BLOCK + 7], ids=str)
@pytest.mark.parametrize("chunk_bytes", [1, 47, 48, 49, 1025, 300_001])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@async_test
async def test_a_footer_is_held_back_and_its_md5_stored(
    h: Harness, size: int, chunk_bytes: int, declared: bool
) -> None:
    data = body_of(size, size)
    stream = with_footer(data)
    meta = await put_with_footer(
        h.engine, "f", ts(1), stream, chunk_bytes=chunk_bytes, declared=declared
    )
    assert (meta.etag, meta.size_bytes) == (md5(data), size)
    assert meta.body == ("inline" if size <= INLINE else "file")
    assert len(meta.block_hashes) == -(-size // BLOCK)
    assert get(h.engine, "f") == meta
    assert await read_all(h.engine, meta) == data
    assert h.temp_files() == []


@async_test
async def test_with_a_footer_the_md5_comes_from_it(h: Harness) -> None:
    data = body_of(INLINE + 5)
    meta = await put_with_footer(h.engine, "f", ts(1), with_footer(data, md5_hex="ab" * 16))
    assert meta.etag == "ab" * 16  # the proxy's MD5 is trusted once the xxh3 vouches for the data


@pytest.mark.parametrize("size", [100, INLINE + 100], ids=["inline", "file"])
@pytest.mark.parametrize(
    "damage", ["data", "xxh3", "malformed"], ids=["data-flipped", "xxh3-wrong", "malformed"]
)
@async_test
async def test_a_footer_mismatch_stores_nothing(h: Harness, size: int, damage: str) -> None:
    old = await put(h.engine, "f", ts(1), b"old body")
    data = body_of(size)
    stream = bytearray(with_footer(data))
    if damage == "data":
        stream[size // 2] ^= 0x01
    elif damage == "xxh3":
        stream = bytearray(with_footer(data, xxh3_hex="0" * 16))
    else:
        stream[-1:] = b"X"
    with pytest.raises(ChecksumFooterMismatch):
        await put_with_footer(h.engine, "f", ts(2), bytes(stream))
    assert get(h.engine, "f") == old
    assert h.data_files() == [] and h.temp_files() == []


@pytest.mark.parametrize("size", [100, INLINE + 100], ids=["inline", "file"])
@async_test
async def test_a_footer_and_a_different_client_etag_store_nothing(h: Harness, size: int) -> None:
    data = body_of(size)
    with pytest.raises(EtagMismatch):
        await put_with_footer(h.engine, "f", ts(1), with_footer(data), expected_etag="0" * 32)
    with pytest.raises(ObjectNotFound):
        get(h.engine, "f")
    assert h.data_files() == [] and h.temp_files() == []
    meta = await put_with_footer(
        h.engine, "f", ts(2), with_footer(data), expected_etag=f'"{md5(data)}"'
    )
    assert meta.etag == md5(data)


@pytest.mark.parametrize("length", [0, 1, FOOTER_BYTES - 1])
@async_test
async def test_a_stream_shorter_than_its_footer_stores_nothing(h: Harness, length: int) -> None:
    with pytest.raises(ChecksumFooterMissing):
        await put_with_footer(h.engine, "f", ts(1), b"0" * length, declared=False)
    with pytest.raises(ObjectNotFound):
        get(h.engine, "f")


@pytest.mark.parametrize("extra", [-1, 1])
@async_test
async def test_a_footer_stream_of_the_wrong_length_is_a_size_mismatch(
    h: Harness, extra: int
) -> None:
    data = body_of(INLINE + 10)
    stream = with_footer(data)
    write = await h.engine.open_write(
        DEV, PART, "AUTH_a", "c", "f", ts(1), content_length=len(data) + extra, checksum_footer=True
    )
    with pytest.raises(SizeMismatch) as caught:
        await write.write(stream)
        await write.commit("text/plain")
    assert caught.value.short == (extra > 0)
    assert caught.value.received_bytes == len(data)
    with pytest.raises(ObjectNotFound):
        get(h.engine, "f")
    assert h.data_files() == [] and h.temp_files() == []


# -- timestamps: newest wins -----------------------------------------------------------------


@async_test
async def test_conflict_on_older_or_equal_timestamp(h: Harness) -> None:
    await put(h.engine, "c", ts(2), b"two")
    for older in (ts(1), ts(2)):
        with pytest.raises(ObjectConflict) as caught:  # before the body is sent
            await h.engine.open_write(DEV, PART, "AUTH_a", "c", "c", older)
        assert caught.value.timestamp == ts(2)
    late = await h.engine.open_write(DEV, PART, "AUTH_a", "c", "c", ts(3))
    await late.write(body_of(INLINE + 1))
    await put(h.engine, "c", ts(4), b"four")  # lands while the ts(3) body streams
    with pytest.raises(ObjectConflict):
        await late.commit("text/plain")
    assert get(h.engine, "c").timestamp == ts(4)
    assert await read_all(h.engine, get(h.engine, "c")) == b"four"
    assert h.data_files() == [] and h.temp_files() == []
    same_offset_later = ts(4).with_offset(1)  # the offset orders writes at one instant
    await put(h.engine, "c", same_offset_later, b"four+")
    assert get(h.engine, "c").timestamp == same_offset_later


@async_test
async def test_concurrent_puts_of_one_name_newest_wins(h: Harness) -> None:
    stamps = [ts(i) for i in range(1, 31)]
    random.Random(5).shuffle(stamps)
    bodies = {t: body_of(INLINE - 10 if i % 2 else INLINE + 500, i) for i, t in enumerate(stamps)}

    async def one(t: Timestamp) -> str:
        try:
            await put(h.engine, "hot", t, bodies[t], chunk_bytes=700)
        except ObjectConflict:
            return "conflict"
        return "stored"

    outcomes = await asyncio.gather(*(one(t) for t in stamps))
    assert "stored" in outcomes
    newest = max(stamps)
    meta = get(h.engine, "hot")
    assert meta.timestamp == newest and meta.etag == md5(bodies[newest])
    assert await read_all(h.engine, meta) == bodies[newest]
    expected_files = [newest.internal + ".data"] if meta.body == "file" else []
    expected_files = expected_files if h.kind == "lmdb" else []
    assert [os.path.basename(p) for p in h.data_files()] == expected_files
    assert h.temp_files() == []


@async_test
async def test_concurrent_puts_at_one_timestamp_store_exactly_one(h: Harness) -> None:
    bodies = [body_of(INLINE + 1 + 100 * i, i) for i in range(8)]

    async def one(body: bytes) -> bytes | None:
        try:
            await put(h.engine, "same", ts(1), body, chunk_bytes=1000)
        except ObjectConflict:
            return None
        return body

    winners = [b for b in await asyncio.gather(*(one(b) for b in bodies)) if b is not None]
    assert len(winners) == 1
    assert await read_all(h.engine, get(h.engine, "same")) == winners[0]
    assert len(h.data_files()) == (1 if h.kind == "lmdb" else 0) and h.temp_files() == []


# -- DELETE, expiry, POST --------------------------------------------------------------------


@async_test
async def test_delete_writes_a_tombstone(h: Harness) -> None:
    old = await put(h.engine, "d", ts(1), body_of(INLINE + 1))
    replaced = await h.engine.delete(DEV, PART, "AUTH_a", "c", "d", ts(2))
    assert replaced == old
    with pytest.raises(ObjectNotFound) as caught:
        get(h.engine, "d")
    assert caught.value.timestamp == ts(2) and caught.value.metadata.deleted
    with pytest.raises(ObjectNotFound):
        await read_all(h.engine, old)  # the replaced version's body is gone
    assert h.data_files() == []
    assert await h.engine.delete(DEV, PART, "AUTH_a", "c", "d", ts(3)) is None
    for stale in (ts(2.5), ts(3)):
        with pytest.raises(ObjectConflict):
            await h.engine.delete(DEV, PART, "AUTH_a", "c", "d", stale)
        with pytest.raises(ObjectConflict):
            await put(h.engine, "d", stale, b"stale")
    await put(h.engine, "d", ts(4), b"back")
    assert await read_all(h.engine, get(h.engine, "d")) == b"back"


@async_test
async def test_delete_of_a_missing_object_still_writes_the_tombstone(h: Harness) -> None:
    assert await h.engine.delete(DEV, PART, "AUTH_a", "c", "never", ts(5)) is None
    with pytest.raises(ObjectNotFound) as caught:
        get(h.engine, "never")
    assert caught.value.timestamp == ts(5)
    with pytest.raises(ObjectConflict):  # a PUT that lost the race to the DELETE stays lost
        await put(h.engine, "never", ts(4), b"late")


@async_test
async def test_x_delete_at_expires_by_the_clock(h: Harness) -> None:
    delete_at = int(h.clock.now) + 10
    await put(h.engine, "x", ts(1), b"soon gone", delete_at=delete_at)
    assert get(h.engine, "x").delete_at == delete_at
    h.clock.now = delete_at
    with pytest.raises(ObjectNotFound) as caught:
        get(h.engine, "x")
    assert caught.value.timestamp == ts(1) and caught.value.metadata.delete_at == delete_at
    with pytest.raises(ObjectNotFound):
        await h.engine.post(DEV, PART, "AUTH_a", "c", "x", ts(2), user_meta={})
    assert await h.engine.delete(DEV, PART, "AUTH_a", "c", "x", ts(3)) is None


@async_test
async def test_post_replaces_metadata_and_keeps_the_data(h: Harness) -> None:
    body = body_of(INLINE + 5)
    stored = {"X-Object-Meta-A": "1", "X-Object-Sysmeta-Slo": "s", "Content-Encoding": "gzip"}
    await put(h.engine, "p", ts(1), body, content_type="text/plain", user_meta=stored)
    after = await h.engine.post(
        DEV,
        PART,
        "AUTH_a",
        "c",
        "p",
        ts(2),
        "image/png",
        {"X-Object-Meta-B": "2", "X-Object-Sysmeta-Slo": "forged"},
        delete_at=int(h.clock.now) + 100,
    )
    assert after == get(h.engine, "p")
    assert after.user_meta == {"X-Object-Meta-B": "2", "X-Object-Sysmeta-Slo": "s"}
    assert (after.timestamp, after.meta_timestamp) == (ts(1), ts(2))
    assert (after.content_type, after.delete_at, after.etag) == (
        "image/png",
        int(h.clock.now) + 100,
        md5(body),
    )
    assert await read_all(h.engine, after) == body
    for stale in (ts(1.5), ts(2)):
        with pytest.raises(ObjectConflict) as caught:
            await h.engine.post(DEV, PART, "AUTH_a", "c", "p", stale, user_meta={})
        assert caught.value.timestamp == ts(2)
    cleared = await h.engine.post(DEV, PART, "AUTH_a", "c", "p", ts(3))
    assert cleared.delete_at is None and cleared.content_type == "image/png"
    assert cleared.user_meta == {"X-Object-Sysmeta-Slo": "s"}
    with pytest.raises(ObjectNotFound):
        await h.engine.post(DEV, PART, "AUTH_a", "c", "missing", ts(3))
    await h.engine.delete(DEV, PART, "AUTH_a", "c", "p", ts(4))
    with pytest.raises(ObjectNotFound) as gone:
        await h.engine.post(DEV, PART, "AUTH_a", "c", "p", ts(5))
    assert gone.value.timestamp == ts(4)


@async_test
async def test_a_put_older_than_a_post_keeps_the_post(h: Harness) -> None:
    """Replicas that see PUT t1, POST t3, PUT t2 in any order end up the same (Swift's rule)."""
    other = MemoryObjectEngine(
        [DEV], SECRET, clock=h.clock, inline_max_bytes=INLINE, block_size_bytes=BLOCK
    )
    t2_meta = {"X-Object-Meta-Put": "t2", "X-Object-Sysmeta-S": "t2"}
    for engine, order in ((h.engine, "put post put"), (other, "put put post")):
        await put(engine, "m", ts(1), b"one", content_type="text/one")
        if order == "put post put":
            await engine.post(
                DEV, PART, "AUTH_a", "c", "m", ts(3), "text/post", {"X-Object-Meta-Post": "t3"}
            )
            await put(engine, "m", ts(2), b"two", content_type="text/two", user_meta=t2_meta)
        else:
            await put(engine, "m", ts(2), b"two", content_type="text/two", user_meta=t2_meta)
            await engine.post(
                DEV, PART, "AUTH_a", "c", "m", ts(3), "text/post", {"X-Object-Meta-Post": "t3"}
            )
    first, second = get(h.engine, "m"), get(other, "m")
    assert first == second
    assert (first.timestamp, first.meta_timestamp, first.content_type) == (
        ts(2),
        ts(3),
        "text/post",
    )
    assert first.user_meta == {"X-Object-Meta-Post": "t3", "X-Object-Sysmeta-S": "t2"}
    assert await h.engine.suffix_hashes(DEV, PART) == await other.suffix_hashes(DEV, PART)


# -- suffix hashes ---------------------------------------------------------------------------


def suffix(obj: str) -> str:
    return layout.suffix_hex(layout.suffix_of(layout.name_hash(SECRET, f"/AUTH_a/c/{obj}")))


@async_test
async def test_suffix_hashes_change_on_write_and_are_stable_otherwise(h: Harness) -> None:
    engine = h.engine
    assert await engine.suffix_hashes(DEV, PART) == {}
    await put(engine, "one", ts(1), b"1")
    first = await engine.suffix_hashes(DEV, PART)
    assert list(first) == [suffix("one")]
    assert await engine.suffix_hashes(DEV, PART) == first
    assert await engine.suffix_hashes(DEV, PART, [suffix("one")]) == first
    others = [f"o{i}" for i in range(40) if suffix(f"o{i}") != suffix("one")][:3]
    for i, obj in enumerate(others):
        await put(engine, obj, ts(2 + i), b"x")
    second = await engine.suffix_hashes(DEV, PART)
    assert second[suffix("one")] == first[suffix("one")] and len(second) == 1 + len(others)
    seen = {second[suffix("one")]}
    await put(engine, "one", ts(10), b"1 again")
    await engine.post(DEV, PART, "AUTH_a", "c", "one", ts(11), user_meta={})
    hashes = await engine.suffix_hashes(DEV, PART)
    assert hashes[suffix("one")] not in seen
    seen.add(hashes[suffix("one")])
    await engine.delete(DEV, PART, "AUTH_a", "c", "one", ts(12))
    after_delete = await engine.suffix_hashes(DEV, PART)
    assert after_delete[suffix("one")] not in seen  # a tombstone is a version too
    assert {s: v for s, v in after_delete.items() if s != suffix("one")} == {
        s: v for s, v in second.items() if s != suffix("one")
    }
    assert await engine.suffix_hashes(DEV, PART + 1) == {}
    assert (
        await engine.suffix_hashes(DEV, PART, [layout.suffix_hex(s) for s in range(4096)])
        == after_delete
    )
    with pytest.raises(ValueError):
        await engine.suffix_hashes(DEV, PART, ["ABC"])


@async_test
async def test_old_tombstones_are_reclaimed_when_hashing(h: Harness) -> None:
    await h.engine.delete(DEV, PART, "AUTH_a", "c", "gone", ts(1))
    assert suffix("gone") in await h.engine.suffix_hashes(DEV, PART)
    h.clock.now = T0 + 1 + h.engine.reclaim_age_s + 1
    assert suffix("gone") not in await h.engine.suffix_hashes(DEV, PART, [suffix("gone")])
    with pytest.raises(ObjectNotFound) as caught:
        get(h.engine, "gone")
    assert caught.value.timestamp is None


@async_test
async def test_both_engines_hash_alike(tmp_path: Path) -> None:
    (tmp_path / DEV).mkdir()
    clock = FakeClock()
    real = ObjectEngine(str(tmp_path), SECRET, clock=clock, inline_max_bytes=INLINE)
    twin = MemoryObjectEngine([DEV], SECRET, clock=clock, inline_max_bytes=INLINE)
    try:
        for engine in (real, twin):
            for i in range(50):
                await put(engine, f"obj{i}", ts(i), body_of(i * 97))
            await engine.delete(DEV, PART, "AUTH_a", "c", "obj3", ts(100))
            await engine.post(
                DEV, PART, "AUTH_a", "c", "obj4", ts(101), "a/b", {"X-Object-Meta-K": "v"}
            )
        assert await real.suffix_hashes(DEV, PART) == await twin.suffix_hashes(DEV, PART)
        assert get(real, "obj4") == get(twin, "obj4")
    finally:
        real.close()


# -- quarantine ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2 * BLOCK + 10, 5 * BLOCK + 100], ids=["inline", "file"])
@async_test
async def test_a_corrupt_body_is_quarantined_and_never_served(h: Harness, size: int) -> None:
    body = body_of(size, 42)
    meta = await put(h.engine, "q", ts(1), body)
    hashes_before = await h.engine.suffix_hashes(DEV, PART)
    bad = 2 * BLOCK + 3  # in block 2
    h.corrupt(meta, bad)
    assert await read_all(h.engine, meta, 0, 2 * BLOCK) == body[: 2 * BLOCK]  # not touched
    served = []
    with pytest.raises(Quarantined) as caught:
        async for chunk in h.engine.read(meta, BLOCK - 1):
            served.append(chunk)
    assert body[BLOCK - 1 :].startswith(b"".join(served))
    assert len(b"".join(served)) <= 2 * BLOCK - (BLOCK - 1)  # nothing of block 2
    assert h.engine.quarantined_count(DEV) == 1
    with pytest.raises(ObjectNotFound) as after:
        get(h.engine, "q")
    assert after.value.timestamp is None
    with pytest.raises(ObjectNotFound):
        await read_all(h.engine, meta)
    assert h.engine.quarantined_count(DEV) == 1
    assert suffix("q") not in await h.engine.suffix_hashes(DEV, PART) != hashes_before
    if h.kind == "lmdb" and meta.body == "file":
        assert h.data_files() == []
        assert caught.value.path is not None and os.path.exists(caught.value.path)
        assert "/quarantined/objects/" in caught.value.path


@async_test
async def test_a_truncated_or_missing_data_file_is_quarantined(h: Harness) -> None:
    only_lmdb(h)
    short = await put(h.engine, "short", ts(1), body_of(INLINE + 100))
    os.truncate(h.engine.data_file_path(short), INLINE)
    with pytest.raises(Quarantined):
        await read_all(h.engine, short, 0, 10)
    lost = await put(h.engine, "lost", ts(1), body_of(INLINE + 100))
    os.unlink(h.engine.data_file_path(lost))
    with pytest.raises(Quarantined):
        await read_all(h.engine, lost)
    assert h.engine.quarantined_count(DEV) == 2


# -- devices, persistence, files -------------------------------------------------------------


@async_test
async def test_device_unavailable(h: Harness) -> None:
    if h.kind == "memory":
        h.engine.set_available(DEV, False)
        missing = DEV
    else:
        missing = "sdz"
    with pytest.raises(DeviceUnavailable):
        h.engine.get(missing, PART, "AUTH_a", "c", "o")
    with pytest.raises(DeviceUnavailable):
        await h.engine.open_write(missing, PART, "AUTH_a", "c", "o", ts(1))
    with pytest.raises(DeviceUnavailable):
        await h.engine.post(missing, PART, "AUTH_a", "c", "o", ts(1))
    with pytest.raises(DeviceUnavailable):
        await h.engine.delete(missing, PART, "AUTH_a", "c", "o", ts(1))
    with pytest.raises(DeviceUnavailable):
        await h.engine.suffix_hashes(missing, PART)
    with pytest.raises(DeviceUnavailable):
        h.engine.quarantined_count(missing)


def test_mount_check_refuses_a_plain_directory(tmp_path: Path) -> None:
    (tmp_path / DEV).mkdir()
    engine = ObjectEngine(str(tmp_path), SECRET, mount_check=True)
    with pytest.raises(DeviceUnavailable, match="not mounted"):
        engine.get(DEV, PART, "AUTH_a", "c", "o")
    with pytest.raises(ValueError):
        engine.get("../etc", PART, "AUTH_a", "c", "o")
    engine.close()


@async_test
async def test_data_persists_across_close_and_reopen(h: Harness) -> None:
    small, large = body_of(100, 1), body_of(INLINE + 100, 2)
    await put(h.engine, "small", ts(1), small)
    await put(h.engine, "large", ts(1), large, user_meta={"X-Object-Meta-K": "v"})
    await h.engine.post(
        DEV, PART, "AUTH_a", "c", "large", ts(2), user_meta={"X-Object-Meta-K": "w"}
    )
    await h.engine.delete(DEV, PART, "AUTH_a", "c", "dead", ts(3))
    bad = await put(h.engine, "bad", ts(1), body_of(50))
    h.corrupt(bad, 0)
    with pytest.raises(Quarantined):
        await read_all(h.engine, bad)
    before = (get(h.engine, "large"), await h.engine.suffix_hashes(DEV, PART))
    engine = h.reopen()
    assert (get(engine, "large"), await engine.suffix_hashes(DEV, PART)) == before
    assert await read_all(engine, get(engine, "small")) == small
    assert await read_all(engine, get(engine, "large")) == large
    assert get(engine, "large").user_meta == {"X-Object-Meta-K": "w"}
    with pytest.raises(ObjectNotFound) as caught:
        get(engine, "dead")
    assert caught.value.timestamp == ts(3)
    assert engine.quarantined_count(DEV) == 1


@async_test
async def test_replaced_versions_data_files_are_unlinked(h: Harness) -> None:
    only_lmdb(h)
    await put(h.engine, "v", ts(1), body_of(INLINE + 1, 1))
    await put(h.engine, "v", ts(2), body_of(INLINE + 2, 2))
    assert [os.path.basename(p) for p in h.data_files()] == [ts(2).internal + ".data"]
    hash_dir = Path(h.engine.data_file_path(get(h.engine, "v"))).parent
    await put(h.engine, "v", ts(3), b"inline now")
    assert h.data_files() == [] and not hash_dir.exists()
    await put(h.engine, "v", ts(4), body_of(INLINE + 4, 4))
    await h.engine.delete(DEV, PART, "AUTH_a", "c", "v", ts(5))
    assert h.data_files() == [] and not hash_dir.exists()
    await put(h.engine, "v", ts(6), body_of(INLINE + 6, 6))  # the hash dir comes back
    assert await read_all(h.engine, get(h.engine, "v")) == body_of(INLINE + 6, 6)


# -- group commit and full disks (LMDB) ------------------------------------------------------


@pytest.mark.parametrize("max_batch", [256, 1])
@async_test
async def test_group_commit_shares_commits_between_puts(h: Harness, max_batch: int) -> None:
    only_lmdb(h)
    h.engine.close()
    h.engine = h.make(max_batch=max_batch)
    puts = 200
    bodies = [body_of(4096, i) for i in range(puts)]
    await asyncio.gather(*(put(h.engine, f"g{i}", ts(1), bodies[i]) for i in range(puts)))
    commits = h.engine.writer(DEV).commits
    if max_batch == 1:
        assert commits == puts
    else:
        assert commits < puts / 2
    assert all([await read_all(h.engine, get(h.engine, f"g{i}")) == bodies[i] for i in range(puts)])


def _enospc_under(directory: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def failing(fd: int, *args: Any) -> Any:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(directory):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, *args)

    return failing


@pytest.mark.parametrize("call", ["writev", "fsync", "posix_fallocate"])
@async_test
async def test_enospc_on_a_data_file_is_disk_full(
    h: Harness, call: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_lmdb(h)
    old = await put(h.engine, "f", ts(1), b"old")
    tmp_dir = str(h.root / DEV / "tmp")
    monkeypatch.setattr(os, call, _enospc_under(tmp_dir, getattr(os, call)))
    with pytest.raises(DiskFull):
        await put(h.engine, "f", ts(2), body_of(INLINE * 200))
    monkeypatch.undo()
    assert get(h.engine, "f") == old
    assert h.data_files() == [] and h.temp_files() == []
    assert await read_all(h.engine, old) == b"old"


@pytest.mark.parametrize("size", [INLINE - 1, INLINE + 1], ids=["inline", "file"])
@async_test
async def test_a_full_lmdb_map_is_disk_full(h: Harness, size: int) -> None:
    only_lmdb(h)
    h.engine.close()
    h.engine = h.make(map_size_bytes=1 << 19)
    padding = {"X-Object-Meta-Pad": "p" * 1500}  # fills the index even when bodies are files
    stored = []
    with pytest.raises(DiskFull):
        for i in range(2000):
            await put(h.engine, f"fill{i}", ts(1), body_of(size, i), user_meta=padding)
            stored.append(i)
    assert stored
    with pytest.raises(ObjectNotFound):
        get(h.engine, f"fill{len(stored)}")
    assert len(h.data_files()) == (len(stored) if size > INLINE else 0)
    assert h.temp_files() == []
    for i in stored[-5:]:
        assert await read_all(h.engine, get(h.engine, f"fill{i}")) == body_of(size, i)
