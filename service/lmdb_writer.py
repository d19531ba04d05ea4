"""Group commit: one writer thread per LMDB environment.

LMDB allows one write transaction at a time and its commit is the fsync that
makes writes durable.  Storage classes submit small write functions; the
writer thread runs every function queued at that moment in one transaction,
each in a nested transaction of its own (a function that raises undoes only
its own writes), then commits once.  One fsync so serves many requests, and
each caller's await returns only after the commit that holds its writes.

``max_batch=1`` gives one transaction, one fsync, per write: the baseline
group commit is measured against.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import lmdb

T = TypeVar("T")
_STOP = object()


class WriterClosedError(RuntimeError):
    """The writer was closed; nothing more can be submitted."""


class GroupCommitWriter:
    def __init__(self, env: lmdb.Environment, *, max_batch: int = 256, name: str = "lmdb") -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._env = env
        self._max_batch = max_batch
        # Bounded: callers wait for their commit anyway, so the queue only
        # holds what is in flight; the bound keeps a flood from eating memory.
        self._queue: queue.Queue = queue.Queue(maxsize=max(4 * max_batch, 1024))
        self._closed = False
        self.commits = 0  # transactions committed (for tests and benchmarks)
        self.writes = 0  # functions run
        self._thread = threading.Thread(target=self._run, name=f"writer-{name}", daemon=True)
        self._thread.start()

    async def submit(self, write: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``write(txn)`` in the writer thread; return once it is durable."""
        if self._closed:
            raise WriterClosedError("writer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        item = (write, loop, future)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(self._queue.put, item)
        return await future

    def submit_sync(self, write: Callable[[lmdb.Transaction], T]) -> T:
        """The same for callers outside an event loop (tools, tests)."""
        if self._closed:
            raise WriterClosedError("writer is closed")
        done = threading.Event()
        box: list[Any] = []
        self._queue.put((write, None, (done, box)))
        done.wait()
        ok, value = box
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            work = [item for item in batch if item is not _STOP]
            if work:
                self._commit(work)
            if stop:
                return

    def _commit(self, work: list) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            with self._env.begin(write=True) as txn:
                for write, _loop, _future in work:
                    nested = self._env.begin(write=True, parent=txn)
                    try:
                        value = write(nested)
                    except BaseException as exc:  # handed to the caller
                        nested.abort()
                        results.append((False, exc))
                    else:
                        nested.commit()
                        results.append((True, value))
            self.commits += 1
            self.writes += len(work)
        except BaseException as exc:  # the commit failed: no write holds
            results = [(False, exc)] * len(work)
        # One wake-up per event loop for the whole batch, not one per write: each
        # call_soon_threadsafe writes to the loop's wake-up fd.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, bool, Any]]] = {}
        for (_write, loop, target), (ok, value) in zip(work, results, strict=True):
            if loop is None:
                done, box = target
                box[:] = [ok, value]
                done.set()
            else:
                by_loop.setdefault(loop, []).append((target, ok, value))
        for loop, settled in by_loop.items():
            # A closed loop raises: nobody waits for those futures any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
