"""service.lmdb_writer: a batch's callers are woken together, once per event loop.

(Group commit itself is tested in test_service_timestamp_writer.py.)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import lmdb
import pytest

from service.lmdb_writer import GroupCommitWriter


@pytest.fixture
def env(tmp_path):
    env = lmdb.open(str(tmp_path / "db"), max_dbs=2, map_size=1 << 26)
    yield env
    env.close()


def test_a_batch_wakes_its_loop_once_with_every_outcome(env) -> None:
    writer = GroupCommitWriter(env, max_batch=64)
    gate = threading.Event()
    wakeups: list[int] = []

    def slow_first(txn: lmdb.Transaction) -> str:  # holds the writer so the others queue up
        gate.wait(5)
        return "first"

    def fails(txn: lmdb.Transaction) -> None:
        raise KeyError("boom")

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            if threading.current_thread().name.startswith("writer-"):
                wakeups.append(len(args[0]))  # the batch's (future, ok, value) triples
            return original(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        first = asyncio.ensure_future(writer.submit(slow_first))
        await asyncio.sleep(0.05)
        others = [
            asyncio.ensure_future(writer.submit(lambda txn, i=i: i)) if i != 3 else None
            for i in range(10)
        ]
        failing = asyncio.ensure_future(writer.submit(fails))
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(
            first, *(o for o in others if o is not None), failing, return_exceptions=True
        )
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
        return results

    results = asyncio.run(main())
    writer.close()
    assert results[0] == "first"
    assert results[1:-1] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert isinstance(results[-1], KeyError)
    assert wakeups == [1, 10]  # the first alone, then the nine and the failure together


def test_a_caller_that_gave_up_does_not_stop_the_others(env) -> None:
    writer = GroupCommitWriter(env, max_batch=64)
    gate = threading.Event()

    def slow_first(txn: lmdb.Transaction) -> None:
        gate.wait(5)

    async def main() -> list[Any]:
        first = asyncio.ensure_future(writer.submit(slow_first))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(writer.submit(lambda txn: txn.put(b"gone", b"1")))
        kept = asyncio.ensure_future(writer.submit(lambda txn: txn.put(b"kept", b"1")))
        await asyncio.sleep(0.01)
        gone.cancel()
        gate.set()
        return await asyncio.gather(first, gone, kept, return_exceptions=True)

    results = asyncio.run(main())
    writer.close()
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[2] is True
    with env.begin() as txn:
        assert txn.get(b"kept") == b"1"
        assert txn.get(b"gone") == b"1"  # cancelling the wait does not undo the write
