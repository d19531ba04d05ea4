"""REPLICATE's suffix hashing runs beside the device's writer, not in it.

The scan is a read transaction in a worker thread; writes go on meanwhile.  The writer then
stores a hash only where the suffix's cache entry is still what the scan read, so a write that
landed during the scan is never hidden behind a hash computed without it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from objectd import hashes, layout
from objectd.engine import ObjectEngine
from objectd.memory import MemoryObjectEngine
from service.timestamp import Timestamp

SECRET = b"hash-secret"
DEV, PART = "sda", 9
T0 = 1_700_000_000.0


def ts(offset_s: float) -> Timestamp:
    return Timestamp.from_seconds(T0 + offset_s)


class Clock:
    now = T0 + 100

    def __call__(self) -> float:
        return self.now


def suffix(obj: str) -> int:
    return layout.suffix_of(layout.name_hash(SECRET, f"/a/c/{obj}"))


async def put(engine: Any, obj: str, timestamp: Timestamp, body: bytes = b"x") -> None:
    write = await engine.open_write(DEV, PART, "a", "c", obj, timestamp, content_length=len(body))
    await write.write(body)
    await write.commit("text/plain")


def held_scan(monkeypatch: pytest.MonkeyPatch, held: int) -> tuple[threading.Event, Callable]:
    """Make the scan of suffix ``held`` wait; (scan reached it, release it)."""
    reached, release = threading.Event(), threading.Event()
    real = hashes._compute

    def compute(txn: Any, dev: Any, partition: int, suffix: int, *args: Any) -> Any:
        if suffix == held:
            reached.set()
            release.wait(10)
        return real(txn, dev, partition, suffix, *args)

    monkeypatch.setattr(hashes, "_compute", compute)
    return reached, release.set


def test_writes_go_on_while_a_partition_is_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        (tmp_path / DEV).mkdir()
        engine = ObjectEngine(str(tmp_path), SECRET)
        try:
            await put(engine, "one", ts(1))
            reached, release = held_scan(monkeypatch, suffix("one"))
            replicate = asyncio.create_task(engine.suffix_hashes(DEV, PART))
            try:
                assert await asyncio.to_thread(reached.wait, 5)
                # The old scan held the write transaction: this PUT waited for all of it.
                async with asyncio.timeout(5):
                    await put(engine, "two", ts(2))
                    await engine.delete(DEV, PART, "a", "c", "three", ts(3))
            finally:
                release()
            assert layout.suffix_hex(suffix("one")) in await replicate
        finally:
            engine.close()

    asyncio.run(main())


def test_a_write_during_the_scan_keeps_its_suffix_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        (tmp_path / DEV).mkdir()
        clock = Clock()
        engine = ObjectEngine(str(tmp_path), SECRET, clock=clock)
        twin = MemoryObjectEngine([DEV], SECRET, clock=clock)
        try:
            for target in (engine, twin):
                await put(target, "one", ts(1))
            first = await engine.suffix_hashes(DEV, PART)
            for target in (engine, twin):
                await put(target, "one", ts(2))  # invalidates the suffix
            reached, release = held_scan(monkeypatch, suffix("one"))
            replicate = asyncio.create_task(engine.suffix_hashes(DEV, PART))
            try:
                assert await asyncio.to_thread(reached.wait, 5)
                async with asyncio.timeout(5):
                    for target in (engine, twin):
                        await put(target, "one", ts(3))  # after the scan's snapshot
            finally:
                release()
            during = await replicate
            monkeypatch.undo()
            key = layout.suffix_hex(suffix("one"))
            assert during[key] != first[key]  # the snapshot's: ts(2)
            after = await engine.suffix_hashes(DEV, PART)  # not the cached ts(2) hash
            assert after == await twin.suffix_hashes(DEV, PART)
            assert after[key] != during[key]
            assert await engine.suffix_hashes(DEV, PART) == after  # cached now
        finally:
            engine.close()

    asyncio.run(main())


def test_old_tombstones_are_reclaimed_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        monkeypatch.setattr(hashes, "RECLAIM_BATCH", 2)
        (tmp_path / DEV).mkdir()
        clock = Clock()
        clock.now = T0 + 20
        engine = ObjectEngine(str(tmp_path), SECRET, clock=clock, reclaim_age_s=50)
        twin = MemoryObjectEngine([DEV], SECRET, clock=clock, reclaim_age_s=50)
        try:
            for target in (engine, twin):
                for i in range(5):
                    await target.delete(DEV, PART, "a", "c", f"gone{i}", ts(i))
                await put(target, "kept", ts(10))
            assert await engine.suffix_hashes(DEV, PART) == await twin.suffix_hashes(DEV, PART)
            clock.now = T0 + 5 + 50 + 1  # every tombstone is now older than reclaim_age
            commits = engine.writer(DEV).commits
            gone = [layout.suffix_hex(suffix(f"gone{i}")) for i in range(5)]
            reclaimed = await engine.suffix_hashes(DEV, PART, gone)
            assert engine.writer(DEV).commits - commits == 3 + 1  # 2 + 2 + 1, then the hashes
            assert reclaimed == await twin.suffix_hashes(DEV, PART)
            assert list(reclaimed) == [layout.suffix_hex(suffix("kept"))]
            assert await engine.suffix_hashes(DEV, PART) == reclaimed
            dev = engine._device(DEV)
            with dev.env.begin() as txn:
                assert txn.stat(dev.index)["entries"] == 1
        finally:
            engine.close()

    asyncio.run(main())
