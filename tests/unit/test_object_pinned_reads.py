"""A GET reads the version it found, even when an overwrite or DELETE lands meanwhile.

``open_version`` pins the body with the metadata (an inline body read in the same transaction,
a data file's open fd), so a GET racing an overwrite serves the old or the new version, never a
404 for an object that exists.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from objectd.engine import ObjectEngine
from objectd.errors import ObjectNotFound
from objectd.memory import MemoryObjectEngine
from objectd.server import build_app
from service.config import ClusterConfig, ObjectServerConfig
from service.timestamp import Timestamp

SECRET = b"pinned-secret"
DEV, PART = "sda", 5
INLINE, BLOCK = 100, 64
T0 = 1_700_000_000.0


def ts(offset_s: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + offset_s)


def make_engine(kind: str, root: Path) -> Any:
    if kind == "lmdb":
        (root / DEV).mkdir(exist_ok=True)
        return ObjectEngine(str(root), SECRET, inline_max_bytes=INLINE, block_size_bytes=BLOCK)
    return MemoryObjectEngine([DEV], SECRET, inline_max_bytes=INLINE, block_size_bytes=BLOCK)


async def put(engine: Any, timestamp: Timestamp, body: bytes) -> None:
    write = await engine.open_write(DEV, PART, "a", "c", "o", timestamp, content_length=len(body))
    await write.write(body)
    await write.commit("application/octet-stream")


async def read(version: Any, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in version.read(start, end)])


@pytest.mark.parametrize("kind", ["lmdb", "memory"])
@pytest.mark.parametrize("size", [10, 1000], ids=["inline", "file"])
def test_an_open_version_survives_an_overwrite_and_a_delete(
    tmp_path: Path, kind: str, size: int
) -> None:
    async def main() -> None:
        engine = make_engine(kind, tmp_path)
        try:
            old = random.Random(1).randbytes(size)
            await put(engine, ts(1), old)
            with await engine.open_version(DEV, PART, "a", "c", "o") as version:
                assert version.meta == engine.get(DEV, PART, "a", "c", "o")
                await put(engine, ts(2), b"new" * size)  # unlinks the old data file
                assert await read(version) == old
                await engine.delete(DEV, PART, "a", "c", "o", ts(3))
                assert await read(version, 3, size - 2) == old[3 : size - 2]
                assert await read(version, 0, 0) == b""
            with pytest.raises(RuntimeError):
                await read(version)
            with pytest.raises(ObjectNotFound):
                await engine.open_version(DEV, PART, "a", "c", "o")
        finally:
            engine.close()

    asyncio.run(main())


def test_closing_an_open_version_closes_its_file(tmp_path: Path) -> None:
    async def main() -> None:
        engine = make_engine("lmdb", tmp_path)
        try:
            await put(engine, ts(1), b"f" * 1000)
            before = len(os.listdir("/proc/self/fd"))
            version = await engine.open_version(DEV, PART, "a", "c", "o")
            assert len(os.listdir("/proc/self/fd")) == before + 1
            version.close()
            version.close()
            assert len(os.listdir("/proc/self/fd")) == before
        finally:
            engine.close()

    asyncio.run(main())


def test_get_racing_overwrites_is_never_a_404(tmp_path: Path) -> None:
    """A GET loop against an overwrite loop, over HTTP on the LMDB engine: 200s only."""

    async def main() -> None:
        engine = make_engine("lmdb", tmp_path)
        bodies = {size: random.Random(size).randbytes(size) for size in (50, 5000)}
        etags = {hashlib.md5(b).hexdigest(): b for b in bodies.values()}
        app = build_app(ObjectServerConfig(mount_check=False), ClusterConfig("s"), engine=engine)
        statuses: dict[int, int] = {}
        try:
            async with TestClient(TestServer(app)) as client:
                stop = time.monotonic() + 2.0
                turns = iter(range(1, 1 << 30))

                async def overwrite() -> None:
                    while time.monotonic() < stop:
                        turn = next(turns)
                        body = bodies[5000 if turn % 3 else 50]
                        headers = {"X-Timestamp": ts(turn).normal, "Content-Type": "a/b"}
                        async with client.put("/sda/5/a/c/o", data=body, headers=headers) as r:
                            assert r.status in (201, 409)  # 409: a later turn got in first

                async def get(ranged: bool) -> None:
                    while time.monotonic() < stop:
                        extra = {"Range": "bytes=0-9,20-29"} if ranged else {}
                        async with client.get("/sda/5/a/c/o", headers=extra) as r:
                            body = await r.read()
                            statuses[r.status] = statuses.get(r.status, 0) + 1
                            if r.status == 200:
                                assert etags[r.headers["ETag"].strip('"')] == body

                await put(engine, ts(0), bodies[5000])
                await asyncio.gather(overwrite(), overwrite(), *(get(i == 0) for i in range(4)))
        finally:
            engine.close()
        assert set(statuses) <= {200, 206}, statuses
        assert statuses.get(200, 0) > 20

    asyncio.run(main())
