"""async_pendings kept by the object engines (LMDB and in-memory): save, list, delete."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from objectd.engine import ObjectEngine
from objectd.errors import DeviceUnavailable
from objectd.memory import MemoryObjectEngine
from service.async_pending import AsyncPending
from service.timestamp import Timestamp

SECRET = b"async-pending-contract"


@pytest.fixture(params=["lmdb", "memory"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield MemoryObjectEngine(["sda"], SECRET)
        return
    (tmp_path / "sda").mkdir()
    opened = ObjectEngine(str(tmp_path), SECRET)
    yield opened
    opened.close()


def pending(seconds: float, obj: str = "o") -> AsyncPending:
    return AsyncPending(
        op="PUT",
        account="a",
        container="c",
        obj=obj,
        targets=(("10.0.0.1", 6201, "sdb"),),
        partition=3,
        headers={"X-Timestamp": Timestamp.from_seconds(seconds).internal, "X-Size": "1"},
        timestamp=Timestamp.from_seconds(seconds),
    )


def test_saved_pendings_list_oldest_first_and_delete(engine: Any) -> None:
    async def main() -> None:
        rng = random.Random(3)
        newer = await engine.save_async_pending("sda", pending(200, "new"), rng)
        older = await engine.save_async_pending("sda", pending(100, "old"), rng)
        listed = engine.list_async_pendings("sda")
        assert [key for key, _ in listed] == [older, newer]
        assert [p.obj for _, p in listed] == ["old", "new"]
        assert listed[0][1] == pending(100, "old")
        assert engine.list_async_pendings("sda", after=older) == [listed[1]]
        assert engine.list_async_pendings("sda", limit=1) == [listed[0]]
        assert await engine.delete_async_pending("sda", older) is True
        assert await engine.delete_async_pending("sda", older) is False
        assert [key for key, _ in engine.list_async_pendings("sda")] == [newer]

    asyncio.run(main())


def test_an_unavailable_device_keeps_no_pending(engine: Any) -> None:
    async def main() -> None:
        with pytest.raises(DeviceUnavailable):
            await engine.save_async_pending("sdz", pending(1), random.Random(1))

    asyncio.run(main())
