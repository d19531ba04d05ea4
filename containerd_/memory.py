"""The container broker's in-memory twin: the same API and semantics (both are
``ContainerBrokerBase``), rows in sorted lists, devices just names.

Tests take a device away with ``offline_devices`` (DeviceUnavailable) or fill it with
``full_devices`` (DiskFull on writes).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from service import async_pending
from service.async_pending import AsyncPending
from service.listing import RowView
from service.listing_tables import SortedCursor, SortedRows
from service.lmdb_devices import check_device_name

from .broker_base import ContainerBrokerBase, ContainerStore
from .errors import DeviceUnavailable, DiskFull
from .info import NO_TOTALS, ContainerInfo, Totals
from .rows import ObjectRow

T = TypeVar("T")
V = TypeVar("V")


class MemoryContainerBroker(ContainerBrokerBase):
    def __init__(self, hash_secret: bytes) -> None:
        super().__init__(hash_secret)
        self.offline_devices: set[str] = set()
        self.full_devices: set[str] = set()
        self._stores: dict[str, _MemoryStore] = {}
        self._pending: dict[str, dict[bytes, bytes]] = {}  # device → key → encoded record
        self._closed = False

    def _store(self, device: str) -> _MemoryStore:
        check_device_name(device)
        if self._closed:
            raise RuntimeError("the broker is closed")
        if device in self.offline_devices:
            raise DeviceUnavailable(device, "offline")
        return self._stores.setdefault(device, _MemoryStore())

    def _read(self, device: str, read: Callable[[ContainerStore], T]) -> T:
        return read(self._store(device))

    async def _write(self, device: str, write: Callable[[ContainerStore], T]) -> T:
        self._store(device)
        if device in self.full_devices:
            raise DiskFull(device, "full (simulated)")
        await asyncio.sleep(0)  # the LMDB broker's writes are never done on the spot either
        # Writes raise only before changing anything, so the store needs no rollback.
        return write(self._store(device))

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

    def close(self) -> None:
        self._closed = True


def _decode_pending(data: bytes) -> AsyncPending | None:
    try:
        return async_pending.decode(data)
    except async_pending.AsyncPendingFormatError:
        return None


class _MemoryStore:
    def __init__(self) -> None:
        self._infos: dict[bytes, ContainerInfo] = {}
        self._totals: dict[bytes, Totals] = {}
        self._objects: dict[bytes, SortedRows[ObjectRow]] = {}
        self._tombstones: dict[bytes, dict[bytes, ObjectRow]] = {}
        self.changes = _MemoryChangeLog()

    def get_info(self, cid: bytes) -> ContainerInfo | None:
        info = self._infos.get(cid)
        if info is None:
            return None
        object_count, bytes_used, stats_timestamp, stats_sum = self._totals.get(cid, NO_TOTALS)
        # A copy of the metadata, as the LMDB broker decodes a fresh one every time.
        return replace(
            info,
            object_count=object_count,
            bytes_used=bytes_used,
            stats_timestamp=stats_timestamp,
            stats_sum=stats_sum,
            metadata=dict(info.metadata),
        )

    def put_info(self, cid: bytes, info: ContainerInfo) -> None:
        self._infos[cid] = replace(info, metadata=dict(info.metadata))

    def get_totals(self, cid: bytes) -> Totals | None:
        return self._totals.get(cid)

    def put_totals(self, cid: bytes, totals: Totals) -> None:
        self._totals[cid] = totals

    def get_row(self, cid: bytes, name: bytes) -> ObjectRow | None:
        row = self._objects.setdefault(cid, SortedRows()).get(name)
        return row if row is not None else self._tombstones.setdefault(cid, {}).get(name)

    def put_row(self, cid: bytes, name: bytes, old: ObjectRow | None, new: ObjectRow) -> None:
        live = self._objects.setdefault(cid, SortedRows())
        dead = self._tombstones.setdefault(cid, {})
        if new.deleted:
            dead[name] = new
            live.delete(name)
        else:
            live.put(name, new)
            dead.pop(name, None)
        self.changes.note(cid, name)

    def cursor(self, cid: bytes, view: RowView[ObjectRow, V]) -> SortedCursor[V]:
        return self._objects.get(cid, SortedRows()).cursor(view.from_row)

    def rows_after(self, cid: bytes, after: bytes | None, limit: int) -> list[ObjectRow]:
        live = self._objects.get(cid, SortedRows())
        dead = self._tombstones.get(cid, {})
        names = sorted({*(n for n, _ in live.cursor().ascending(b"")), *dead})
        chosen = [n for n in names if after is None or n > after][:limit]
        return [row for n in chosen for row in (live.get(n) or dead[n],)]

    def container_ids(self, after: bytes, limit: int) -> list[bytes]:
        return sorted(cid for cid in self._infos if cid > after)[:limit]

    def drop(self, cid: bytes) -> None:
        for table in (self._infos, self._totals, self._objects, self._tombstones):
            table.pop(cid, None)  # type: ignore[attr-defined]
        self.changes.drop(cid)


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
