"""The container broker's in-memory twin: the same API and semantics (both are
``ContainerBrokerBase``), its store service/db_broker_memory.py's over container infos and
object rows, with a change log and async_pendings of its own.

Tests take a device away with ``offline_devices`` (DeviceUnavailable) or fill it with
``full_devices`` (DiskFull on writes).
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

from service import async_pending
from service.async_pending import AsyncPending
from service.db_broker_memory import MemoryDbBroker, MemoryRowsStore

from .broker_base import ContainerBrokerBase, ContainerStore, NotedRows
from .info import NO_TOTALS, ContainerInfo, Totals
from .rows import ObjectRow


class _MemoryStore(NotedRows, MemoryRowsStore[ContainerInfo, ObjectRow, Totals]):
    no_totals = NO_TOTALS

    def __init__(self) -> None:
        super().__init__()
        self.changes = _MemoryChangeLog()

    def tombstones_after(self, cid: bytes, start: bytes, limit: int) -> list[ObjectRow]:
        dead = self._tombstones.get(cid, {})
        return [dead[name] for name in sorted(n for n in dead if n >= start)[:limit]]

    def delete_tombstone(self, cid: bytes, name: bytes) -> None:
        self._tombstones.get(cid, {}).pop(name, None)

    def with_totals(self, info: ContainerInfo, totals: Totals) -> ContainerInfo:
        object_count, bytes_used, stats_timestamp, stats_sum = totals
        return replace(
            info,
            object_count=object_count,
            bytes_used=bytes_used,
            stats_timestamp=stats_timestamp,
            stats_sum=stats_sum,
        )


class MemoryContainerBroker(MemoryDbBroker[ContainerStore], ContainerBrokerBase):
    store_type = _MemoryStore

    def __init__(self, hash_secret: bytes) -> None:
        super().__init__(hash_secret)
        self._pending: dict[str, dict[bytes, bytes]] = {}  # device → key → encoded record

    async def save_async_pending(
        self, device: str, pending: AsyncPending, rng: random.Random
    ) -> bytes:
        await self._write(device, lambda store: None)  # the same device checks as a write
        key = async_pending.make_key(pending.timestamp, rng.getrandbits(64))
        self._pending.setdefault(device, {})[key] = async_pending.encode(pending)
        return key

    def list_async_pendings(
        self, device: str, *, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, AsyncPending | None]]:
        self._store(device)
        records = self._pending.get(device, {})
        keys = sorted(key for key in records if key > after)[:limit]
        return [(key, _decode_pending(records[key])) for key in keys]

    async def delete_async_pending(self, device: str, key: bytes) -> bool:
        await self._write(device, lambda store: None)
        return self._pending.get(device, {}).pop(key, None) is not None


def _decode_pending(data: bytes) -> AsyncPending | None:
    try:
        return async_pending.decode(data)
    except async_pending.AsyncPendingFormatError:
        return None


class _MemoryChangeLog:
    """containerd_/changes.py's ``ChangeLog`` in dicts."""

    def __init__(self) -> None:
        self._seq = 0
        self._changes: dict[bytes, dict[bytes, int]] = {}  # cid → name → its newest seq
        self._sync: dict[tuple[bytes, bytes], int] = {}
        self._id: bytes | None = None

    def note(self, cid: bytes, name: bytes) -> None:
        self._seq += 1
        self._changes.setdefault(cid, {})[name] = self._seq

    def forget(self, cid: bytes, name: bytes) -> None:
        self._changes.get(cid, {}).pop(name, None)

    def last(self, cid: bytes) -> int:
        return max(self._changes.get(cid, {}).values(), default=0)

    def since(self, cid: bytes, after: int, limit: int) -> list[tuple[int, bytes]]:
        found = sorted((s, n) for n, s in self._changes.get(cid, {}).items() if s > after)
        return found[:limit]

    def replica_id(self, *, create: bool) -> bytes | None:
        if self._id is None and create:
            self._id = os.urandom(16)
        return self._id

    def get_sync_point(self, cid: bytes, sender: bytes) -> int | None:
        return self._sync.get((cid, sender))

    def put_sync_point(self, cid: bytes, sender: bytes, seq: int) -> None:
        self._sync[(cid, sender)] = seq

    def drop(self, cid: bytes) -> None:
        self._changes.pop(cid, None)
        for key in [key for key in self._sync if key[0] == cid]:
            del self._sync[key]
